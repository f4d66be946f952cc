"""The isolated judge: the test runs in a judge process, the program in a sandboxed process of its own;
they talk through a framed channel carrying plain data by value (codec), proxies and remote handles."""
