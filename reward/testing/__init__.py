"""Test and bench data, not the service: hostile samples, parity pairs, the naive baseline."""
