"""Command handlers: one module per command group; they parse arguments, call the library and print."""
