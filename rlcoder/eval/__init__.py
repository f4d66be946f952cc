"""Measuring policies and stored runs: eval sampling, pass@k, reports, replay, export."""
