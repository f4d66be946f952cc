"""The pytest-compatible fast path and the other runners (HumanEval, STDIO, real pytest), fixtures,
hardened comparisons and test plans; run inside the sandboxed child."""
