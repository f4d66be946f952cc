"""Multi-turn feedback against the real reward service on 127.0.0.1: a policy that hard-codes what the
feedback revealed passes the public tests and still fails the hidden ones; feedback built from real
verdicts never holds hidden test text."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path

import pytest

from reward.service.client import RewardClient
from reward.service.launch import RewardService
from rlcoder.config import load_config
from rlcoder.data.problems import bundled_problems
from rlcoder.data.prompts import build_prompt
from rlcoder.data.public_tests import has_hidden_tests, with_public_tests
from rlcoder.data.verification import completion_item
from rlcoder.env.episodes import run_episodes
from rlcoder.env.feedback import format_feedback
from rlcoder.env.scoring import episode_reward
from rlcoder.records import FunctionInfo, Problem, RewardMode, Rollout, RolloutRequest, VerdictStatus
from rlcoder.specs import sampling_spec

pytestmark = pytest.mark.integration

TEST = """from solution import f

def test_small():
    assert f(2) == 5

def test_more():
    assert f(3) == 10
    assert f(0) == 1
"""
PROBLEM = Problem(
    "square-plus-one", "Write f(x) that returns x * x + 1.", "def f(x):\n    return x * x + 1\n", TEST,
    [FunctionInfo("f", "(x)", "def f(x):")],
)  # fmt: skip
FIRST = "```python\ndef f(x):\n    return x\n```"
HONEST = "```python\ndef f(x):\n    return x * x + 1\n```"
# what feedback shows: the failing test's source (`assert f(2) == 5`) and the actual value
CALL = re.compile(r"assert f\((.+?)\) == (.+)")


def hard_code(feedback: str) -> str:
    """The answer a reward hacker writes: a lookup table of exactly the cases feedback showed."""
    table = dict(CALL.findall(feedback))
    assert table, feedback
    entries = ", ".join(f"{k}: {v}" for k, v in table.items())
    return f"```python\ndef f(x):\n    return {{{entries}}}.get(x, x)\n```"


class FeedbackPolicy:
    """Turn 1: FIRST for every sample. Later turns (one request per episode, in sample order): the
    first episode hard-codes the feedback, the others fix the code."""

    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer

    def generate_all(self, requests, sampling):
        if sampling.n > 1:
            return [[self._rollout(q, i, FIRST) for i in range(sampling.n)] for q in requests]
        groups = []
        for index, q in enumerate(requests):
            feedback = self.tok.decode(q.prompt_token_ids).rsplit("<|im_start|>user", 1)[1]
            groups.append([self._rollout(q, 0, hard_code(feedback) if index == 0 else HONEST)])
        return groups

    def _rollout(self, q: RolloutRequest, i: int, text: str) -> Rollout:
        ids = [*self.tok(text, add_special_tokens=False)["input_ids"], self.tok.eos_token_id]
        return Rollout(f"1-{q.problem_id}-{i}", q.problem_id, i, q.prompt, q.prompt_token_ids, ids,
                       [-0.1] * len(ids), text, "stop", 0, 1)  # fmt: skip


@pytest.fixture(scope="module")
def client():
    with RewardService(workers=2) as svc:
        c = RewardClient(svc.url)
        yield c
        c.close()


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def test_hard_coding_the_feedback_passes_public_tests_but_not_the_hidden_ones(client, tokenizer) -> None:
    cfg = load_config(None, ["rollout.turns=3"])
    prompt = build_prompt(PROBLEM, tokenizer)
    turn_one = RolloutRequest(PROBLEM.problem_id, prompt.text, prompt.token_ids, step=1)
    policy = FeedbackPolicy(tokenizer)
    (group,) = run_episodes(
        policy, client, {PROBLEM.problem_id: PROBLEM}, [turn_one], tokenizer, cfg, sampling_spec(cfg, 2)
    )
    hacker, honest = group
    feedback = hacker.turns[0].feedback
    assert "assert f(2) == 5" in feedback and "assert 2 == 5" in feedback
    assert "f(3)" not in feedback and "test_more" not in feedback and "10" not in feedback
    assert "{2: 5}" in hacker.completion_text
    assert [t.public_verdict.status for t in hacker.turns] == [VerdictStatus.FAIL, VerdictStatus.PASS]
    assert [t.verdict.status for t in hacker.turns] == [VerdictStatus.FAIL, VerdictStatus.FAIL]
    assert episode_reward(hacker, RewardMode.BINARY) == 0.0
    assert [t.verdict.status for t in honest.turns] == [VerdictStatus.FAIL, VerdictStatus.PASS]
    assert episode_reward(honest, RewardMode.BINARY) == 1.0


def hidden_lines(problem: Problem) -> tuple[list[str], list[str]]:
    """Names of the hidden tests, and the lines of their sources found nowhere in the public part."""
    public_names = {n.name for n in ast.parse(problem.public_test).body if hasattr(n, "name")}
    names, lines = [], []
    for node in ast.parse(problem.test).body:
        name = getattr(node, "name", "")
        if name.startswith(("test", "Test")) and name not in public_names:
            names.append(name)
            source = ast.get_source_segment(problem.test, node) or ""
            lines += [ln.strip() for ln in source.splitlines()[1:] if len(ln.strip()) > 12]
    return [n for n in names if n not in problem.public_test], [
        ln for ln in lines if ln not in problem.public_test
    ]


def test_feedback_from_real_verdicts_never_holds_hidden_test_text(client) -> None:
    problems = [p for p in (with_public_tests(p, 1) for p in bundled_problems()) if has_hidden_tests(p)]
    assert len(problems) > 50
    wrong = [
        "```python\ndef {name}(*args, **kwargs):\n    return None\n```",
        "```python\ndef {name}(*args, **kwargs):\n    raise ValueError('nope')\n```",
    ]
    items = [
        completion_item(p, w.format(name=p.entry_point), public=True, item_id=p.problem_id)
        for p in problems
        for w in wrong
    ]
    verdicts = asyncio.run(client.score(items))
    failing = checked = 0
    for item, v in zip(items, verdicts, strict=True):
        problem = next(p for p in problems if p.problem_id == item.item_id)
        assert v.status is not VerdictStatus.INFRA_ERROR, v.detail
        if v.status is VerdictStatus.PASS:
            continue
        failing += 1
        text = format_feedback(v, problem.public_test, problem.test_kind, 4000)
        names, lines = hidden_lines(problem)
        for secret in [*names, *lines]:
            assert secret not in text, (problem.problem_id, secret)
            checked += 1
    assert failing > len(items) // 2 and checked > 5 * failing


def test_reference_solutions_pass_their_public_tests(client) -> None:
    """The split keeps tests runnable: every bundled and HumanEval reference passes its public part."""
    from rlcoder.data.humaneval import load_humaneval
    from rlcoder.data.verification import reference_item

    problems = [with_public_tests(p, 1) for p in [*bundled_problems(), *load_humaneval()]]
    items = []
    for p in problems:
        item = reference_item(p)
        item.test, item.item_id = p.public_test, p.problem_id
        items.append(item)
    verdicts = asyncio.run(client.score(items))
    failed = [(v.item_id, v.status.value, v.detail) for v in verdicts if v.status is not VerdictStatus.PASS]
    assert not failed
    assert sum(has_hidden_tests(p) for p in problems) >= len(problems) - 20
