"""Reward service: extracts code from a completion, runs a problem's tests on it in a sandbox and
returns a `Verdict`. Imports no torch, Ray, vLLM, TRL or PEFT (ARCHITECTURE.md)."""
