"""Multi-turn SFT data: conversation rows, per-turn tokenization with the loss on assistant tokens only
(the same token sequence a multi-turn rollout builds), and the SFT stage that reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlcoder.config import ConfigError, load_config
from rlcoder.data.problems import bundled_problems
from rlcoder.data.prompts import build_messages, build_prompt, render_chat
from rlcoder.env.episodes import run_episodes
from rlcoder.learn.conversations import (
    ConversationError,
    conversation_dataset,
    conversation_of,
    feedback_rows,
    plain_rows,
    stub_answer,
    tokenize_conversation,
    wrong_answers,
)
from rlcoder.learn.sft import stage_dataset
from rlcoder.records import Rollout, RolloutRequest, ScoreItem, Verdict, VerdictStatus
from rlcoder.specs import sampling_spec
from tests.helpers.fakes import ScriptedFleet, ScriptedScorer

CODE_FEEDBACK_ROW = {
    "id": 7,
    "messages": [
        {"role": "user", "content": "Write add(a, b)."},
        {"role": "assistant", "content": "```python\ndef add(a, b):\n    return a - b\n```"},
        {"role": "user", "content": "Execution result: assert add(1, 2) == 3 failed, got -1"},
        {"role": "assistant", "content": "```python\ndef add(a, b):\n    return a + b\n```"},
        {"role": "user", "content": "Thanks!"},
    ],
}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def test_rows_in_code_feedback_and_sharegpt_shapes() -> None:
    messages = conversation_of(CODE_FEEDBACK_ROW, 0)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]  # "Thanks!" dropped
    sharegpt = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    assert conversation_of(sharegpt, 0) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    with pytest.raises(ConversationError, match="row 3: no conversations or messages column"):
        conversation_of({"text": "x"}, 3)
    with pytest.raises(ConversationError, match=r"row 1: messages\[0\] needs a role"):
        conversation_of({"messages": [{"role": "robot", "content": "x"}]}, 1)
    with pytest.raises(ConversationError, match=r"row 4: messages\[1\] weight must be 0 or 1"):
        conversation_of(
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": "y", "weight": 2},
                ]
            },
            4,
        )
    with pytest.raises(ConversationError, match="row 2: needs a user turn followed by an assistant turn"):
        conversation_of({"messages": [{"role": "user", "content": "x"}]}, 2)


def test_loss_mask_covers_exactly_the_assistant_answers(tokenizer) -> None:
    messages = conversation_of(CODE_FEEDBACK_ROW, 0)
    t = tokenize_conversation(messages, tokenizer)
    assert len(t.input_ids) == len(t.assistant_masks)
    full = render_chat(tokenizer, messages, generation_prompt=False)
    assert tokenizer.decode(t.input_ids) == full.rstrip("\n")  # ends on the last end-of-turn token
    trained = tokenizer.decode([i for i, m in zip(t.input_ids, t.assistant_masks, strict=True) if m])
    answers = [m["content"] + tokenizer.eos_token for m in messages if m["role"] == "assistant"]
    assert trained == "".join(answers)
    runs = "".join(str(m) for m in t.assistant_masks)
    assert runs.count("01") == 2 and runs.endswith("1")  # two answers, the sequence ends on one


def test_sft_tokens_are_the_tokens_a_multiturn_rollout_builds(tokenizer) -> None:
    """SFT on a feedback conversation trains the exact sequence (and mask) an episode samples."""
    problem = bundled_problems("train")[0]
    wrong, right = stub_answer(problem), f"```python\n{problem.solution.strip()}\n```"

    def answer(q: RolloutRequest, i: int) -> Rollout:
        """Turn 1 (the group request) answers wrong; every later turn answers right."""
        text = wrong if len(fleet.asked) == 1 else right
        ids = [*tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
        return Rollout(
            "1-x-0", q.problem_id, 0, q.prompt, q.prompt_token_ids, ids, [0.0] * len(ids), text, "stop", 0, 1
        )

    def verdict(item: ScoreItem, i: int) -> Verdict:
        if item.completion == right:
            return Verdict(VerdictStatus.PASS, 1, 1)
        return Verdict(VerdictStatus.FAIL, 0, 1, detail="boom")

    fleet = ScriptedFleet(answer)
    cfg = load_config(None, ["rollout.turns=2"])
    prompt = build_prompt(problem, tokenizer)
    request = RolloutRequest(problem.problem_id, prompt.text, prompt.token_ids, step=1)
    ((episode,),) = run_episodes(
        fleet,
        ScriptedScorer(verdict),
        {problem.problem_id: problem},
        [request],
        tokenizer,
        cfg,
        sampling_spec(cfg, 1),
    )
    assert len(episode.turns) == 2
    messages = [
        *build_messages(problem),
        {"role": "assistant", "content": wrong},
        {"role": "user", "content": episode.turns[0].feedback},
        {"role": "assistant", "content": right},
    ]
    t = tokenize_conversation(messages, tokenizer)
    assert t.input_ids == episode.prompt_token_ids + episode.completion_token_ids
    assert t.assistant_masks == [0] * len(episode.prompt_token_ids) + episode.env_mask


def test_feedback_conversations_from_problems_and_the_sft_stage(tokenizer, tmp_path: Path) -> None:
    problems = bundled_problems("train")[:3]
    cfg = load_config(None, ["learner.sft.max_length=2048"])

    tests = {p.test for p in problems}
    asked: list[str] = []

    def scorer(items):
        assert not tests & {i.test for i in items}  # public tests only
        asked.extend(i.completion for i in items)
        # every candidate fails but the first mutant of the first problem, which passes (a mutant
        # that changes nothing observable): the next candidate is taken instead
        return [
            Verdict(VerdictStatus.PASS, 1, 1)
            if i == 0
            else Verdict(VerdictStatus.FAIL, 0, 1, detail="test_x: AssertionError: assert None == 1")
            for i in range(len(items))
        ]

    rows = feedback_rows(problems, cfg, scorer)
    assert len(rows) == 3
    roles = [m["role"] for m in rows[0]["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    first_answers = [r["messages"][2]["content"] for r in rows]
    assert first_answers[0] == asked[1] and first_answers[1] == wrong_answers(problems[1])[0]
    assert all(a != r["messages"][4]["content"] for a, r in zip(first_answers, rows, strict=True))
    assert stub_answer(problems[0]) == asked[len(wrong_answers(problems[0])) - 1]  # the stub comes last
    assert "assert None == 1" in rows[0]["messages"][3]["content"]
    # only the fix is trained on: a trained wrong first answer teaches the model to answer wrong first
    t = tokenize_conversation(conversation_of(rows[0], 0), tokenizer)
    trained = tokenizer.decode([i for i, m in zip(t.input_ids, t.assistant_masks, strict=True) if m])
    assert trained == rows[0]["messages"][4]["content"] + tokenizer.eos_token
    path = tmp_path / "feedback.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, CODE_FEEDBACK_ROW]))
    dataset, counts = stage_dataset(f"conversations:{path}", tokenizer, cfg)
    assert len(dataset) == 4 and counts["dropped_over_max_length"] == 0
    assert set(dataset.column_names) == {"input_ids", "assistant_masks"}
    short = load_config(None, ["learner.sft.max_length=60"])
    n_short = len(tokenize_conversation(conversation_of(CODE_FEEDBACK_ROW, 0), tokenizer).input_ids)
    dataset, counts = conversation_dataset([*rows, CODE_FEEDBACK_ROW], tokenizer, n_short)
    assert len(dataset) == 1 and counts["dropped_over_max_length"] == 3  # only the short one fits
    with pytest.raises(ConfigError, match=r"learner\.sft\.stages: conversations:/nope.jsonl: .*no such file"):
        stage_dataset("conversations:/nope.jsonl", tokenizer, short)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x"}) + "\n")
    with pytest.raises(ConfigError, match="row 0: no conversations or messages column"):
        stage_dataset(f"conversations:{bad}", tokenizer, short)


def test_plain_rows_are_single_turn_conversations_of_the_solution(tokenizer) -> None:
    from rlcoder.data.prompts import render_sft_example

    problems = bundled_problems("train")[:2]
    cfg = load_config(None, [])
    rows = plain_rows(problems, cfg)
    assert [r["id"] for r in rows] == [p.problem_id for p in problems]
    t = tokenize_conversation(conversation_of(rows[0], 0), tokenizer)
    example = render_sft_example(problems[0], tokenizer)  # the single-turn SFT example of the same problem
    trained = tokenizer.decode([i for i, m in zip(t.input_ids, t.assistant_masks, strict=True) if m])
    assert trained.strip() == example.completion.strip()
