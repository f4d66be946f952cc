"""The transformers engine on the tiny model, in process: sample shapes, logprobs that are the sampled
distribution's, stop strings, weight loads and LoRA adapters, each checked against an independent
computation with the plain transformers model."""

from __future__ import annotations

import pytest
import torch

from rlcoder.records import EngineSpec, SamplingSpec
from rollout.hf_engine import HfEngine
from rollout.sync import SyncCheck, WeightSyncError, completion_logprobs
from rollout.worker import RolloutWorker
from tests.helpers.engines import merged_reference, perturbed, write_adapter

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    eng = HfEngine(EngineSpec("transformers", str(tiny_model_dir)))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def prompts(engine):
    tok = engine.tokenizer
    return [tok.encode("def add(a, b):"), tok.encode("Write a function that reverses a list.")]


def test_generate_returns_n_samples_per_prompt_with_one_logprob_per_token(engine, prompts):
    groups = engine.generate(prompts, SamplingSpec(n=3, max_new_tokens=10, seed=0))
    assert [len(g) for g in groups] == [3, 3]
    for sample in (s for g in groups for s in g):
        assert 1 <= len(sample.token_ids) <= 10
        assert len(sample.logprobs) == len(sample.token_ids)
        assert all(lp <= 0.0 for lp in sample.logprobs)
        assert sample.finish_reason in ("stop", "length")
        assert sample.finish_reason == "stop" or len(sample.token_ids) == 10


def test_sampling_logprobs_are_the_models_at_temperature_one(engine, prompts):
    (group,) = engine.generate(prompts[:1], SamplingSpec(n=2, max_new_tokens=8, seed=1))
    for sample in group:
        scored = completion_logprobs(engine.model, prompts[0], sample.token_ids)
        assert sample.logprobs == pytest.approx(scored, abs=1e-4)


def test_temperature_changes_the_reported_logprobs(engine, prompts):
    spec = SamplingSpec(n=1, max_new_tokens=6, seed=2)
    (cold,) = engine.generate(prompts[:1], SamplingSpec(**{**spec.__dict__, "temperature": 0.5}))
    scored = completion_logprobs(engine.model, prompts[0], cold[0].token_ids)
    # under temperature 0.5 the sampled distribution is not the temperature-1 one
    assert cold[0].logprobs != pytest.approx(scored, abs=1e-3)


def test_stop_strings_end_the_sample_and_are_left_out_of_the_text(engine, prompts):
    groups = engine.generate(prompts, SamplingSpec(n=4, max_new_tokens=24, seed=3, stop=["e"]))
    samples = [s for g in groups for s in g]
    assert all("e" not in s.text for s in samples)
    stopped = [s for s in samples if s.finish_reason == "stop"]
    assert stopped, "24 random tokens without a single 'e' in 8 samples"
    for s in stopped:
        assert len(s.logprobs) == len(s.token_ids)


def test_load_weights_changes_scores_and_rejects_a_foreign_state_dict(tiny_model_dir, prompts):
    eng = HfEngine(EngineSpec("transformers", str(tiny_model_dir)))
    ids = list(range(5, 15))
    before = eng.score_logprobs(prompts[0], ids)
    new = perturbed(eng.model, seed=7)
    eng.load_weights(new)
    after = eng.score_logprobs(prompts[0], ids)
    assert after != pytest.approx(before, abs=1e-3)
    with pytest.raises(ValueError, match="unknown"):
        eng.load_weights({**new, "model.extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="missing"):
        eng.load_weights({k: v for k, v in new.items() if "layers.0." not in k})


def test_adapters_apply_to_the_base_weights_not_on_top_of_each_other(tiny_model_dir, prompts, tmp_path):
    eng = HfEngine(EngineSpec("transformers", str(tiny_model_dir)))
    base = __import__("copy").deepcopy(eng.model)
    ids = list(range(20, 32))
    for version in (1, 2):
        adapter = write_adapter(tmp_path / f"v{version}", base, seed=version)
        eng.load_adapter(str(adapter), version)
        expected = completion_logprobs(merged_reference(base, adapter), prompts[1], ids)
        assert eng.score_logprobs(prompts[1], ids) == pytest.approx(expected, abs=1e-4)


def test_worker_checks_every_sync_and_refuses_to_sample_after_a_failed_one(tiny_model_dir, prompts):
    spec = EngineSpec("transformers", str(tiny_model_dir))
    worker = RolloutWorker(spec, "w-test", sync_tolerance=0.05)
    learner = HfEngine(spec).model
    good = perturbed(learner, seed=11)
    learner.load_state_dict(good, strict=False)  # lm_head is tied to the embeddings
    ids = list(range(40, 52))
    check = SyncCheck(prompts[0], ids, completion_logprobs(learner, prompts[0], ids))
    report = worker.update_weights(good, version=1, check=check)
    assert report.policy_version == 1 and worker.policy_version() == 1
    assert report.gap.mean_abs < 1e-4

    with pytest.raises(WeightSyncError, match="not sampling from the weights"):
        worker.update_weights(perturbed(learner, seed=12), version=2, check=check)
    assert worker.policy_version() == 1
    with pytest.raises(WeightSyncError, match="refuses to sample"):
        worker.generate([], SamplingSpec())

    worker.update_weights(good, version=3, check=check)
    assert worker.policy_version() == 3
    worker.shutdown()
