"""Records: JSON round trip, strict decoding, and the one verdict -> reward function."""

from __future__ import annotations

import json

import pytest

from rlcoder.records import (
    SCHEMA_VERSION,
    FunctionInfo,
    Problem,
    RecordError,
    RewardMode,
    Rollout,
    SamplingSpec,
    ScoredGroup,
    ScoreItem,
    TestKind,
    Verdict,
    VerdictStatus,
    from_dict,
    from_json,
    reward_from_verdict,
    to_dict,
    to_json,
)


def _rollout(i: int = 0) -> Rollout:
    return Rollout(
        rollout_id=f"3-p1-{i}",
        problem_id="p1",
        sample_index=i,
        prompt="<|im_start|>user\nwrite f<|im_end|>\n",
        prompt_token_ids=[1, 2, 3],
        completion_token_ids=[4, 5],
        completion_logprobs=[-0.5, -1.25],
        completion_text="```python\ndef f(): pass\n```",
        finish_reason="stop",
        policy_version=7,
        step=3,
        env_mask=[1, 1],
    )


EXAMPLES = [
    Problem(
        problem_id="p1",
        question="Write f.",
        solution="def f():\n    return 1\n",
        test="from solution import f\n\ndef test_f():\n    assert f() == 1\n",
        test_info=[FunctionInfo("f", "()", "def f():", "Return 1.")],
        test_kind=TestKind.CHECK,
        difficulty="easy",
    ),
    SamplingSpec(n=4, temperature=0.7, stop=["```\n"], seed=None),
    _rollout(),
    ScoreItem(completion="x", test="t", entry_point="f", timeout_s=2.5, item_id="3-p1-0"),
    Verdict(status=VerdictStatus.FAIL, passed=2, total=3, duration_ms=12.5, detail="assert 1 == 2"),
    ScoredGroup(
        problem_id="p1",
        rollouts=[_rollout(0), _rollout(1)],
        verdicts=[Verdict(VerdictStatus.PASS, 3, 3), Verdict(VerdictStatus.INFRA_ERROR)],
        rewards=[1.0, None],
        step=3,
    ),
]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
def test_json_round_trip_is_identity(record):
    text = to_json(record)
    json.loads(text)  # plain JSON, no custom objects
    assert from_json(type(record), text) == record


def test_enums_serialize_as_their_values():
    data = to_dict(Verdict(status=VerdictStatus.NO_CODE))
    assert data["status"] == "no_code"
    assert data["schema_version"] == SCHEMA_VERSION


def test_unknown_field_is_rejected_with_its_path():
    data = to_dict(_rollout())
    data["meta_info"] = {"flag": True}
    with pytest.raises(RecordError, match=r"Rollout: unknown field\(s\) meta_info"):
        from_dict(Rollout, data)


def test_wrong_type_names_the_nested_field():
    data = to_dict(EXAMPLES[-1])
    data["rollouts"][1]["completion_token_ids"] = [4, "five"]
    with pytest.raises(RecordError, match=r"ScoredGroup.rollouts\[1\].completion_token_ids\[1\]"):
        from_dict(ScoredGroup, data)


def test_bad_enum_value_lists_the_allowed_ones():
    with pytest.raises(RecordError, match="not one of pass, fail"):
        from_dict(Verdict, {"status": "passed"})


def test_missing_required_field_and_other_schema_version_are_rejected():
    with pytest.raises(RecordError, match="missing required field status"):
        from_dict(Verdict, {"passed": 1})
    with pytest.raises(RecordError, match="schema_version 99"):
        from_dict(Verdict, {"status": "pass", "schema_version": 99})


def test_bool_is_not_accepted_as_int():
    with pytest.raises(RecordError, match="passed"):
        from_dict(Verdict, {"status": "pass", "passed": True})


def test_entry_point_comes_from_test_info():
    assert EXAMPLES[0].entry_point == "f"
    assert Problem("p", "q", "s", "t").entry_point == ""


@pytest.mark.parametrize(
    ("status", "passed", "total", "mode", "expected"),
    [
        (VerdictStatus.PASS, 3, 3, RewardMode.BINARY, 1.0),
        (VerdictStatus.FAIL, 2, 3, RewardMode.BINARY, 0.0),
        (VerdictStatus.FAIL, 2, 4, RewardMode.PASS_FRACTION, 0.5),
        (VerdictStatus.TIMEOUT, 0, 0, RewardMode.PASS_FRACTION, 0.0),
        (VerdictStatus.NO_CODE, 0, 0, RewardMode.BINARY, 0.0),
        (VerdictStatus.INFRA_ERROR, 0, 0, RewardMode.BINARY, None),
        (VerdictStatus.INFRA_ERROR, 3, 3, RewardMode.PASS_FRACTION, None),
    ],
)
def test_reward_from_verdict(status, passed, total, mode, expected):
    assert reward_from_verdict(Verdict(status, passed, total), mode) == expected
