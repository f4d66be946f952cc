"""The naive baseline KodCode-era harnesses use: one `python -m pytest` subprocess per completion, in a
temp dir, no sandbox. For the verdict-parity test and the benchmark only; never for untrusted code.
The verdict is read from pytest's exit code and JUnit XML with the same status rules as the harness.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

_FAILED_PREFIXES = (
    "assert",
    "AssertionError",
    "Failed:",
    "Failed ",
    "DID NOT RAISE",
    "Regex pattern did not match",
)


@dataclass(frozen=True)
class BaselineResult:
    status: str  # a VerdictStatus value
    passed: int
    total: int
    returncode: int
    wall_ms: float


def run_pytest(code: str, test: str, timeout_s: float = 30.0) -> BaselineResult:
    """Write solution.py and test_solution.py to a temp dir and run real pytest on them."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rlcoder-naive-") as tmp:
        with open(os.path.join(tmp, "solution.py"), "w", encoding="utf-8", errors="replace") as f:
            f.write(code)
        with open(os.path.join(tmp, "test_solution.py"), "w", encoding="utf-8") as f:
            f.write(test)
        with open(os.path.join(tmp, "pytest.ini"), "w") as f:
            f.write("[pytest]\n")
        report = os.path.join(tmp, "report.xml")
        args = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "test_solution.py",
        ]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        try:
            proc = subprocess.run(args, cwd=tmp, capture_output=True, timeout=timeout_s, env=env, check=False)
        except subprocess.TimeoutExpired:
            return BaselineResult("timeout", 0, 0, -9, (time.perf_counter() - started) * 1000)
        status, passed, total = verdict_from_junit(report, proc.returncode)
    return BaselineResult(status, passed, total, proc.returncode, (time.perf_counter() - started) * 1000)


def verdict_from_junit(path: str, returncode: int) -> tuple[str, int, int]:
    """(status, passed, total) from a JUnit XML report; total leaves out skipped and xfailed tests."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return "error", 0, 0
    passed = total = 0
    kinds: list[str] = []
    for case in root.iter("testcase"):
        children = {child.tag: child for child in case}
        if "skipped" in children and not ({"failure", "error"} & set(children)):
            continue
        if "error" in children and children["error"].get("message", "").startswith("collection failure"):
            return "error", 0, 0
        total += 1
        if "error" in children:
            kinds.append("error")
        elif "failure" in children:
            message = children["failure"].get("message", "")
            kinds.append("fail" if message.startswith(_FAILED_PREFIXES) else "error")
        else:
            passed += 1
    if returncode == 0 and total > 0:
        return "pass", passed, total
    if total == 0:
        return "error", 0, 0
    if any(k == "error" for k in kinds) or not kinds:
        return "error", passed, total
    return "fail", passed, total
