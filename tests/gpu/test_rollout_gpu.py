"""The fleet on a GPU: a vLLM worker with a GPU, new weights broadcast from the learner through vLLM's
NCCL weight transfer (the learner is NCCL rank 0), the post-sync check, and the in-place reload path.
Skipped without CUDA (tests/conftest.py). Needs the CUDA `vllm` build (the `gpu` extra)."""

from __future__ import annotations

import socket

import pytest

from rlcoder.config import load_config
from rlcoder.records import RolloutRequest, SamplingSpec
from rlcoder.run.services import ray_session
from rlcoder.specs import fleet_spec
from rollout.fleet import RolloutFleet
from rollout.sync import SyncCheck, WeightSyncError, completion_logprobs

pytestmark = [pytest.mark.gpu, pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gpu_fleet(tiny_model_dir):
    pytest.importorskip("ray")
    cfg = load_config(
        None,
        [
            "rollout.num_workers=1",
            "rollout.gpus_per_worker=1",
            "rollout.gpu_memory_utilization=0.3",  # the learner shares the GPU in this test
            "model.max_model_len=512",
        ],
    )
    with ray_session(cfg):
        fleet = RolloutFleet(fleet_spec(cfg, tiny_model_dir))
        yield fleet
        fleet.shutdown()


@pytest.fixture(scope="module")
def learner(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).cuda().eval()


def _perturb(model, seed: int) -> None:
    import torch

    gen = torch.Generator(device="cuda").manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, device="cuda"))


def _check(model, prompt, ids) -> SyncCheck:
    return SyncCheck(prompt, ids, completion_logprobs(model, prompt, ids))


def test_nccl_broadcast_from_the_learner_lands_in_the_engine(gpu_fleet, learner):
    from vllm.distributed.weight_transfer.base import ModuleSource
    from vllm.distributed.weight_transfer.nccl_engine import (
        NCCLTrainerInitInfo,
        NCCLTrainerWeightTransferEngine,
    )

    prompt, ids = [5, 6, 7, 8], list(range(30, 42))
    base = _check(learner, prompt, ids)
    world = 1 + len(gpu_fleet.worker_ids) * gpu_fleet.spec.tensor_parallel_size
    trainer = NCCLTrainerWeightTransferEngine.trainer_init(
        NCCLTrainerInitInfo(master_address="127.0.0.1", master_port=_free_port(), world_size=world, rank=0),
        client=gpu_fleet.nccl_client(),
        source=ModuleSource(learner),
    )
    _perturb(learner, seed=1)
    trainer.send_weights()
    new = _check(learner, prompt, ids)
    assert new.expected_logprobs != pytest.approx(base.expected_logprobs, abs=1e-3)
    reports = gpu_fleet.finish_nccl_sync(version=1, check=new)
    assert all(r.gap.mean_abs < gpu_fleet.cfg.rollout.sync_check_tolerance for r in reports)
    rollouts = gpu_fleet.generate_all([RolloutRequest("p", "x", prompt)], SamplingSpec(n=2, max_new_tokens=8))
    assert {r.policy_version for r in rollouts[0]} == {1}
    trainer.shutdown()


def test_reload_path_and_a_wrong_state_dict_on_gpu(gpu_fleet, learner):
    prompt, ids = [9, 10, 11], list(range(40, 52))
    _perturb(learner, seed=2)
    state = {k: v.detach() for k, v in learner.named_parameters()}
    reports = gpu_fleet.sync_weights(state, version=2, check=_check(learner, prompt, ids))
    assert reports and gpu_fleet.policy_version == 2
    wrong = {k: v + 0.1 for k, v in state.items()}
    with pytest.raises(WeightSyncError):
        gpu_fleet.sync_weights(wrong, version=3, check=_check(learner, prompt, ids))
