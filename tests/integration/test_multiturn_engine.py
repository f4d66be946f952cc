"""Multi-turn episodes with a real engine (the tiny model on transformers, in process) and the real
reward service: the token bookkeeping holds for whatever the model samples (answers cut at the length
limit, special tokens mid-answer), and episodes respect K and the token limit."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from reward.service.client import RewardClient
from reward.service.launch import RewardService
from rlcoder.config import load_config
from rlcoder.data.problems import bundled_problems
from rlcoder.data.prompts import build_prompt
from rlcoder.env.episodes import run_episodes
from rlcoder.records import EngineSpec
from rlcoder.specs import sampling_spec
from rollout.worker import RolloutWorker

pytestmark = pytest.mark.integration


class InProcessFleet:
    """One RolloutWorker, called directly: `generate_all` as the Ray fleet has it."""

    def __init__(self, worker: RolloutWorker) -> None:
        self.worker = worker
        self.calls = 0

    def generate_all(self, requests, sampling):
        self.calls += 1
        flat = self.worker.generate(list(requests), sampling)
        return [flat[i * sampling.n : (i + 1) * sampling.n] for i in range(len(requests))]


def test_episodes_with_the_tiny_model_keep_tokens_masks_and_limits(tiny_model_dir) -> None:
    cfg = load_config(
        None,
        ["rollout.turns=3", "rollout.max_new_tokens=24", "rollout.max_episode_tokens=700", "seed=0"],
    )
    worker = RolloutWorker(EngineSpec("transformers", str(tiny_model_dir)), "w-mt", sync_tolerance=0.05)
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    problems = {p.problem_id: p for p in bundled_problems("eval")[:3]}
    prompts = [build_prompt(p, tok) for p in problems.values()]
    requests = [p.request(step=1) for p in prompts]
    fleet = InProcessFleet(worker)
    with RewardService(workers=2) as svc:
        client = RewardClient(svc.url)
        groups = run_episodes(fleet, client, problems, requests, tok, cfg, sampling_spec(cfg, 2))
        client.close()
    assert [len(g) for g in groups] == [2, 2, 2] and fleet.calls <= 3
    end = tok.convert_ids_to_tokens(tok.eos_token_id)
    # a random model fails its public tests: feedback turns happen
    assert sum(len(r.turns) > 1 for g in groups for r in g) >= 3
    for r in (r for g in groups for r in g):
        assert 1 <= len(r.turns) <= 3
        assert len(r.prompt_token_ids) + len(r.completion_token_ids) <= 700
        assert len(r.env_mask) == len(r.completion_token_ids) == len(r.completion_logprobs)
        assert sum(r.env_mask) == sum(t.n_tokens for t in r.turns)
        assert all(t.n_tokens <= 24 for t in r.turns)
        assert r.completion_text == r.turns[-1].completion_text
        # walk the episode: answer tokens (mask 1), then the feedback turn (mask 0), and so on
        pos = 0
        for t in r.turns:
            assert r.env_mask[pos : pos + t.n_tokens] == [1] * t.n_tokens
            pos += t.n_tokens
            if not t.feedback:
                continue
            n_env = r.env_mask[pos:].index(1)
            inserted = tok.decode(r.completion_token_ids[pos : pos + n_env])
            tail = f"\n<|im_start|>user\n{t.feedback}{end}\n<|im_start|>assistant\n"
            assert inserted in (tail, end + tail), inserted
            assert all(lp == 0.0 for lp in r.completion_logprobs[pos : pos + n_env])
            pos += n_env
        assert pos == len(r.completion_token_ids)
        assert all(t.verdict is not None and t.public_verdict is not None for t in r.turns)
