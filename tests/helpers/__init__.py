"""Shared test helpers: scripted fakes of the seams (tests/helpers/fakes.py) and engine fixtures."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
