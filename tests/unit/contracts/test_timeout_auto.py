"""`reward.timeout_s: auto`: each problem's limit is a multiple of its reference runtime within a floor and
a ceiling; a fixed timeout_s stays the limit of every problem."""

from __future__ import annotations

import pytest

from rlcoder.config import ConfigError, load_config
from rlcoder.data.verification import rollout_item
from rlcoder.records import Problem, Rollout


def test_auto_limits_scale_the_reference_runtime_within_floor_and_ceiling():
    reward = load_config(None, ["reward.timeout_s=auto", "reward.auto_timeout_multiple=10"]).reward
    assert reward.limit_s(0.01) == 1.0  # the floor
    assert reward.limit_s(0.25) == 2.5
    assert reward.limit_s(3.0) == 10.0  # the ceiling
    assert reward.limit_s(None) == 10.0  # unmeasured: the ceiling
    fixed = load_config(None, ["reward.timeout_s=4"]).reward
    assert fixed.limit_s(0.01) == fixed.limit_s(None) == 4.0
    with pytest.raises(ConfigError, match="timeout_s"):
        load_config(None, ["reward.timeout_s=0"])
    with pytest.raises(ConfigError, match="timeout_s"):
        load_config(None, ["reward.timeout_s=soon"])


def test_rollouts_are_scored_under_their_problems_limit():
    reward = load_config(None, ["reward.timeout_s=auto"]).reward
    fast = Problem("p", "q", "s", "t", reference_runtime_s=0.2)
    r = Rollout("1-p-0", "p", 0, "prompt", [1], [2], [0.0], "code", "stop", 0)
    assert rollout_item(fast, r, reward).timeout_s == 2.0
    assert rollout_item(Problem("u", "q", "s", "t"), r, reward).timeout_s == 10.0
