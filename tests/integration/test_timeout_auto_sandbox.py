"""`reward.timeout_s: auto` in the real sandbox: the reference runtime is measured by verification, a
correct but slower solution within the multiple still passes, and a looping program is stopped at the
problem's limit (about a second) instead of the global 10 s."""

from __future__ import annotations

import time

import pytest

from reward import score
from rlcoder.config import load_config
from rlcoder.data.verification import rollout_item, with_reference_runtimes
from rlcoder.records import FunctionInfo, Problem, Rollout, VerdictStatus

pytestmark = pytest.mark.integration

TEST = "from solution import f\n\ndef test_f():\n    assert f(1) == 2\n"
PROBLEM = Problem(
    "slowish", "f(x) = x + 1", "import time\n\ndef f(x):\n    time.sleep(0.05)\n    return x + 1\n", TEST,
    [FunctionInfo("f")],
)  # fmt: skip
SLOWER = "```python\nimport time\n\ndef f(x):\n    time.sleep(0.15)\n    return x + 1\n```"
LOOPS = "```python\ndef f(x):\n    while True:\n        pass\n```"


def sandbox(items):
    return score(items, workers=1)


def test_auto_limits_pass_slower_correct_code_and_stop_loops_early():
    (measured,), failed = with_reference_runtimes([PROBLEM], sandbox)
    assert failed == [] and 0.05 <= measured.reference_runtime_s < 1.0
    reward = load_config(
        None, ["reward.timeout_s=auto", "reward.auto_timeout_multiple=10", "reward.auto_timeout_floor_s=0.5"]
    ).reward
    limit = reward.limit_s(measured.reference_runtime_s)
    assert 0.5 <= limit < 10.0

    def run(text: str):
        r = Rollout(f"1-{PROBLEM.problem_id}-0", PROBLEM.problem_id, 0, "p", [1], [2], [0.0], text, "stop", 0)
        started = time.monotonic()
        (verdict,) = sandbox([rollout_item(measured, r, reward)])
        return verdict, time.monotonic() - started

    slower, _ = run(SLOWER)  # 3x the reference: within the multiple
    assert slower.status is VerdictStatus.PASS
    looped, took = run(LOOPS)
    assert looped.status is VerdictStatus.TIMEOUT and took < limit + 3.0 < 10.0
