"""The multi-turn episode driver with a scripted engine (fixes its code only after seeing feedback), a
scripted scorer, and the tiny model's tokenizer and chat template."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlcoder.config import ConfigError, load_config
from rlcoder.data.prompts import build_messages, build_prompt, render_chat
from rlcoder.env.episodes import (
    feedback_token_ids,
    groups_after_turn,
    run_episodes,
    verdict_after_turn,
)
from rlcoder.env.scoring import episode_reward, final_verdict
from rlcoder.learn.step import loss_mask
from rlcoder.records import (
    FunctionInfo,
    Problem,
    RewardMode,
    Rollout,
    RolloutRequest,
    ScoreItem,
    Verdict,
    VerdictStatus,
    from_json,
    to_json,
)
from rlcoder.specs import sampling_spec
from tests.helpers.fakes import ScriptedFleet, ScriptedScorer

TEST = (
    "from solution import f\n\n"
    "def test_public():\n    assert f(2) == 3\n\n"
    "def test_hidden_secret():\n    assert f(10) == 11\n"
)
PROBLEM = Problem(
    "p1", "Write f(x) that returns x + 1.", "def f(x):\n    return x + 1\n", TEST, [FunctionInfo("f")]
)
WRONG = "```python\ndef f(x):\n    return x\n```"
RIGHT = "```python\ndef f(x):\n    return x + 1\n```"
FEEDBACK_MARK = "failed the tests"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def config(*overrides: str):
    return load_config(None, ["rollout.turns=3", "rollout.max_new_tokens=64", *overrides])


def scripted_fleet(tokenizer, always: str | None = None, close: bool = True, right_first: int = 0):
    """Answers wrong unless the conversation holds feedback (or `always` says otherwise); with
    `close=False` it never generates the end-of-turn token (a length-truncated answer); the first
    `right_first` samples of each group answer right on turn 1."""

    def answer(q: RolloutRequest, i: int) -> Rollout:
        seen = tokenizer.decode(q.prompt_token_ids)
        text = always or (RIGHT if FEEDBACK_MARK in seen or i < right_first else WRONG)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if close:
            ids = [*ids, tokenizer.eos_token_id]
        return Rollout(
            f"1-{q.problem_id}-{i}", q.problem_id, i, q.prompt, q.prompt_token_ids, ids,
            [-0.25] * len(ids), text, "stop" if close else "length", 7, 1,
        )  # fmt: skip

    return ScriptedFleet(answer)


def adds_one(item: ScoreItem, i: int) -> Verdict:
    """Passes an answer that computes x + 1; the failure detail names the test the item holds."""
    total = item.test.count("def test_")
    if "x + 1" in item.completion:
        return Verdict(VerdictStatus.PASS, total, total)
    detail = "test_public: AssertionError: assert 2 == 3 (test line 4)"
    return Verdict(VerdictStatus.FAIL, 0, total, detail=detail, output_tail=detail)


def sandbox_down(item: ScoreItem, i: int) -> Verdict:
    return Verdict(VerdictStatus.INFRA_ERROR, detail="sandbox down")


def episodes(tokenizer, cfg, fleet, scorer=None, n: int = 2):
    prompt = build_prompt(PROBLEM, tokenizer)
    request = RolloutRequest("p1", prompt.text, prompt.token_ids, step=1)
    scorer = scorer or ScriptedScorer(adds_one)
    (group,) = run_episodes(fleet, scorer, {"p1": PROBLEM}, [request], tokenizer, cfg, sampling_spec(cfg, n))
    assert all(s.max_new_tokens == 64 for _, s in fleet.asked)
    return prompt, group


def test_scripted_engine_fails_turn_one_and_passes_turn_two(tokenizer) -> None:
    fleet = scripted_fleet(tokenizer)
    _, group = episodes(tokenizer, config("rollout.turn_discount=0.5"), fleet)
    assert len(group) == 2 and [len(fleet.asked[0][0]), len(fleet.asked[1][0])] == [1, 2]
    for r in group:
        assert [t.verdict.status for t in r.turns] == [VerdictStatus.FAIL, VerdictStatus.PASS]
        assert [t.public_verdict.status for t in r.turns] == [VerdictStatus.FAIL, VerdictStatus.PASS]
        assert r.completion_text == RIGHT and final_verdict(r).status is VerdictStatus.PASS
        assert verdict_after_turn(r, 1).status is VerdictStatus.FAIL
        assert verdict_after_turn(r, 3).status is VerdictStatus.PASS  # ended at turn 2: its answer stands
        assert episode_reward(r, RewardMode.BINARY, 0.5) == 0.5
        assert r.turns[0].feedback and not r.turns[1].feedback
        assert r.rollout_id == f"1-p1-{r.sample_index}" and r.policy_version == 7
    assert from_json(Rollout, to_json(group[0])) == group[0]


def test_env_mask_covers_exactly_the_feedback_tokens(tokenizer) -> None:
    prompt, (r, _) = episodes(tokenizer, config(), scripted_fleet(tokenizer))
    wrong = [*tokenizer(WRONG, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    right = [*tokenizer(RIGHT, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    n_env = len(r.completion_token_ids) - len(wrong) - len(right)
    assert r.completion_token_ids[: len(wrong)] == wrong and r.completion_token_ids[-len(right) :] == right
    assert r.env_mask == [1] * len(wrong) + [0] * n_env + [1] * len(right)
    assert r.completion_logprobs == [-0.25] * len(wrong) + [0.0] * n_env + [-0.25] * len(right)
    inserted = tokenizer.decode(r.completion_token_ids[len(wrong) : len(wrong) + n_env])
    assert inserted == f"\n<|im_start|>user\n{r.turns[0].feedback}<|im_end|>\n<|im_start|>assistant\n"
    # what turn 2 was generated from is the chat template's rendering of the whole conversation
    messages = [
        *build_messages(PROBLEM),
        {"role": "assistant", "content": WRONG},
        {"role": "user", "content": r.turns[0].feedback},
    ]
    conversation = r.prompt_token_ids + r.completion_token_ids[: len(wrong) + n_env]
    assert tokenizer.decode(conversation) == render_chat(tokenizer, messages, generation_prompt=True)
    assert r.prompt_token_ids == prompt.token_ids


def test_an_unclosed_answer_gets_its_end_of_turn_from_the_environment(tokenizer) -> None:
    messages = build_messages(PROBLEM)
    answer_ids = tokenizer(WRONG, add_special_tokens=False)["input_ids"]
    open_ids = feedback_token_ids(tokenizer, messages, "try again", answer_ids)
    closed_ids = feedback_token_ids(tokenizer, messages, "try again", [*answer_ids, tokenizer.eos_token_id])
    assert (
        tokenizer.decode(open_ids)
        == "<|im_end|>\n<|im_start|>user\ntry again<|im_end|>\n<|im_start|>assistant\n"
    )
    assert open_ids == [tokenizer.eos_token_id, *closed_ids]
    _, (r, _) = episodes(tokenizer, config("rollout.turns=2"), scripted_fleet(tokenizer, close=False))
    inserted = feedback_token_ids(tokenizer, messages, r.turns[0].feedback, answer_ids)
    assert (
        r.env_mask.count(0) == len(inserted)
        and r.completion_token_ids[r.env_mask.index(0)] == tokenizer.eos_token_id
    )


def test_feedback_never_holds_the_hidden_tests(tokenizer) -> None:
    scorer = ScriptedScorer(adds_one)
    _, group = episodes(tokenizer, config(), scripted_fleet(tokenizer), scorer)
    public_items = [i for batch in scorer.batches for i in batch if "test_hidden_secret" not in i.test]
    assert public_items and all("f(10)" not in i.test for i in public_items)
    for r in group:
        text = tokenizer.decode(r.completion_token_ids)
        assert "test_hidden_secret" not in text and "f(10)" not in text and "11" not in r.turns[0].feedback
        assert "def test_public():\n    assert f(2) == 3" in r.turns[0].feedback


def test_episodes_stop_at_k_turns_and_passing_samples_stop_early(tokenizer) -> None:
    fleet = scripted_fleet(tokenizer, always=WRONG)
    _, group = episodes(tokenizer, config("rollout.turns=3"), fleet, n=3)
    assert [len(r.turns) for r in group] == [3, 3, 3] and len(fleet.asked) == 3
    assert all(r.turns[-1].feedback == "" and r.env_mask.count(0) > 0 for r in group)
    assert episode_reward(group[0], RewardMode.BINARY) == 0.0
    fleet = scripted_fleet(tokenizer, always=None, right_first=1)
    _, (first, second) = episodes(tokenizer, config(), fleet)
    assert len(first.turns) == 1 and first.env_mask == [1] * len(first.completion_token_ids)
    assert len(second.turns) == 2 and len(fleet.asked[1][0]) == 1


def test_an_episode_ends_when_the_next_turn_would_not_fit(tokenizer) -> None:
    prompt = build_prompt(PROBLEM, tokenizer)
    wrong = len(tokenizer(WRONG, add_special_tokens=False)["input_ids"]) + 1
    tight = len(prompt.token_ids) + wrong + 64 + 10  # room for a turn, not for feedback and another turn
    fleet = scripted_fleet(tokenizer)
    _, group = episodes(tokenizer, config(f"rollout.max_episode_tokens={tight}"), fleet)
    assert all(len(r.turns) == 1 and not r.turns[0].feedback for r in group)
    assert len(fleet.asked) == 1
    roomy = config("rollout.max_episode_tokens=400", "rollout.turns=10")
    _, group = episodes(tokenizer, roomy, scripted_fleet(tokenizer, always=WRONG))
    for r in group:
        assert len(r.prompt_token_ids) + len(r.completion_token_ids) <= 400
        assert 1 < len(r.turns) < 10  # stopped by the token limit, not by K


def test_infra_errors_get_no_feedback_and_drop_the_sample(tokenizer) -> None:
    _, group = episodes(tokenizer, config(), scripted_fleet(tokenizer), ScriptedScorer(sandbox_down))
    assert all(len(r.turns) == 1 for r in group)
    assert episode_reward(group[0], RewardMode.BINARY) is None


def test_helpers_for_single_turn_rollouts_and_config_limits() -> None:
    r = Rollout("0-a-0", "a", 0, "p", [1], [2, 3], [0.0, 0.0], "t", "stop", 0)
    assert loss_mask(r) == [1, 1] and final_verdict(r) is None and verdict_after_turn(r, 1) is None
    with pytest.raises(ValueError, match="not a multi-turn episode"):
        episode_reward(r, RewardMode.BINARY)
    with pytest.raises(ConfigError, match="max_episode_tokens"):
        load_config(None, ["rollout.max_episode_tokens=4096"])
    with pytest.raises(ConfigError, match=r"rollout\.turns"):
        load_config(None, ["rollout.turns=0"])
    with pytest.raises(ConfigError, match=r"rollout\.feedback_max_chars"):
        load_config(None, ["rollout.feedback_max_chars=100"])
    with pytest.raises(ConfigError, match=r"rollout\.turn_discount"):
        load_config(None, ["rollout.turn_discount=1.5"])
    with pytest.raises(ConfigError, match=r"data\.public_tests"):
        load_config(None, ["data.public_tests=0"])


def test_per_turn_pass_rates_for_eval(tokenizer) -> None:
    from rlcoder.eval.pass_at_k import PassCounts

    fleet = scripted_fleet(tokenizer, right_first=1)
    _, group = episodes(tokenizer, config(), fleet, n=4)
    rates = [PassCounts.from_groups(groups_after_turn([group], t)).pass_rate for t in (1, 2, 3)]
    assert rates == [0.25, 1.0, 1.0]
    with pytest.raises(ValueError, match="without turn verdicts"):
        groups_after_turn([[Rollout("0-a-0", "a", 0, "p", [1], [2], [0.0], "t", "stop", 0)]], 1)
