"""Pure parts of rollout/: the post-sync check, chunking, record stamping, weights on the wire, LoRA
merge arithmetic, engine spec from config, NCCL rank offsets, and pid bookkeeping."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from rlcoder.config import load_config
from rlcoder.records import EngineSpec, Rollout, RolloutRequest, from_json, to_json
from rlcoder.specs import engine_spec, fleet_spec, sampling_spec
from rollout.engine import Sample
from rollout.nccl import FleetNcclClient
from rollout.procs import alive, child_pids, proc_identity, reap
from rollout.scheduling import FleetError, split_chunks, worker_env
from rollout.sync import SyncCheck, WeightSyncError, logprob_gap, verify_check
from rollout.weights import WireState, merge_adapter, pack_state, read_adapter, unpack_state
from rollout.worker import to_rollouts


class ScoresFixed:
    """A RolloutEngine stand-in that scores every sequence with fixed logprobs."""

    def __init__(self, logprobs: list[float]) -> None:
        self.logprobs = logprobs

    def score_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        return self.logprobs[: len(completion_ids)]


def test_logprob_gap_mean_and_max():
    gap = logprob_gap([-1.0, -2.0, -3.0], [-1.0, -2.5, -2.0])
    assert gap.mean_abs == pytest.approx(0.5)
    assert gap.max_abs == pytest.approx(1.0)
    assert gap.tokens == 3


def test_logprob_gap_nan_is_infinite_and_lengths_must_match():
    assert math.isinf(logprob_gap([-1.0], [float("nan")]).mean_abs)
    with pytest.raises(WeightSyncError, match="scored 1 tokens, expected 2"):
        logprob_gap([-1.0, -2.0], [-1.0])
    with pytest.raises(WeightSyncError, match="no completion tokens"):
        logprob_gap([], [])


def test_verify_check_passes_within_tolerance_and_raises_beyond():
    check = SyncCheck([1, 2], [3, 4], [-1.0, -2.0])
    gap = verify_check(ScoresFixed([-1.01, -2.01]), check, tolerance=0.05, what="w0")
    assert gap.mean_abs == pytest.approx(0.01)
    with pytest.raises(WeightSyncError, match="not sampling from the weights"):
        verify_check(ScoresFixed([-1.5, -2.5]), check, tolerance=0.05, what="w0")
    # a NaN score must fail, however large the tolerance
    with pytest.raises(WeightSyncError):
        verify_check(ScoresFixed([float("nan"), -2.0]), tuple(check), tolerance=1e9, what="w0")


@pytest.mark.parametrize(("items", "workers", "size"), [(0, 2, None), (1, 2, None), (7, 2, None), (8, 3, 3)])
def test_split_chunks_covers_every_item_once(items, workers, size):
    chunks = split_chunks(items, workers, size)
    assert [i for c in chunks for i in c] == list(range(items))
    if items and size is None:
        assert len(chunks) <= 2 * workers
    if size:
        assert all(len(c) <= size for c in chunks)


def test_to_rollouts_stamps_version_worker_and_ids():
    requests = [RolloutRequest("p1", "prompt one", [1, 2], step=3), RolloutRequest("p2", "two", [4], step=3)]
    groups = [
        [Sample([5, 6], [-0.1, -0.2], "ab", "stop"), Sample([7], [-0.3], "c", "length")],
        [Sample([8], [-0.4], "d", "length"), Sample([9, 10], [-0.5, -0.6], "ef", "stop")],
    ]
    rollouts = to_rollouts(requests, groups, policy_version=7, worker_id="w1")
    assert [r.rollout_id for r in rollouts] == ["3-p1-0", "3-p1-1", "3-p2-0", "3-p2-1"]
    assert {(r.policy_version, r.worker_id, r.step) for r in rollouts} == {(7, "w1", 3)}
    assert rollouts[3].prompt_token_ids == [4] and rollouts[3].completion_token_ids == [9, 10]
    assert rollouts[0].prompt == "prompt one" and rollouts[1].sample_index == 1
    assert from_json(Rollout, to_json(rollouts[0])) == rollouts[0]
    with pytest.raises(ValueError, match="2 groups for 1 prompts"):
        to_rollouts(requests[:1], groups, 0, "w0")


def test_wire_state_round_trip_keeps_dtypes_and_values():
    state = {
        "a": torch.randn(3, 4),
        "b": torch.randn(5, dtype=torch.float64).to(torch.bfloat16),
        "c": torch.arange(6, dtype=torch.float16).reshape(2, 3),
    }
    wire = pack_state(state)
    assert all(isinstance(a, np.ndarray) for a in wire.arrays.values())
    assert wire.torch_dtypes == {"b": "bfloat16"}
    assert wire.nbytes == 3 * 4 * 4 + 5 * 2 + 6 * 2
    back = unpack_state(wire)
    for name, tensor in state.items():
        assert back[name].dtype == tensor.dtype
        assert torch.equal(back[name], tensor)
    assert pack_state(wire) is wire


def test_unpack_of_numpy_shares_memory_and_accepts_read_only_arrays():
    array = np.arange(4, dtype=np.float32)
    array.setflags(write=False)  # as Ray's object store hands them out
    tensor = unpack_state(WireState({"x": array}))["x"]
    assert tensor.data_ptr() == array.ctypes.data


def _write_adapter(root, pairs, r=2, alpha=4, **extra):
    root.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for module, (a, b) in pairs.items():
        tensors[f"base_model.model.{module}.lora_A.weight"] = a
        tensors[f"base_model.model.{module}.lora_B.weight"] = b
    save_file(tensors, str(root / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": ["q_proj"], **extra}
    (root / "adapter_config.json").write_text(json.dumps(config))
    return root


def test_merge_adapter_adds_scaled_b_times_a(tmp_path):
    a = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])  # [r=2, in=3]
    b = torch.tensor([[1.0, 1.0], [0.0, 2.0]])  # [out=2, r=2]
    path = _write_adapter(tmp_path / "ad", {"model.layers.0.self_attn.q_proj": (a, b)}, r=2, alpha=4)
    adapter = read_adapter(path)
    assert adapter.scale == 2.0 and adapter.rank == 2
    base = {"model.layers.0.self_attn.q_proj.weight": torch.zeros(2, 3), "other.weight": torch.ones(1)}
    merged = merge_adapter(base, adapter)
    # B @ A = [[1, 1, 2], [0, 2, 0]], times alpha / r = 2
    expected = torch.tensor([[2.0, 2.0, 4.0], [0.0, 4.0, 0.0]])
    assert torch.equal(merged["model.layers.0.self_attn.q_proj.weight"], expected)
    assert set(merged) == {"model.layers.0.self_attn.q_proj.weight"}
    with pytest.raises(ValueError, match="does not have"):
        merge_adapter({"x.weight": torch.zeros(1)}, adapter)


def test_read_adapter_rejects_variants_it_cannot_apply(tmp_path):
    pair = {"m.q_proj": (torch.zeros(2, 3), torch.zeros(3, 2))}
    with pytest.raises(ValueError, match="use_dora"):
        read_adapter(_write_adapter(tmp_path / "dora", pair, use_dora=True))
    with pytest.raises(ValueError, match="peft_type"):
        read_adapter(_write_adapter(tmp_path / "ia3", pair, peft_type="IA3"))


def test_engine_and_fleet_specs_from_config():
    cfg = load_config(
        None,
        ["rollout.engine=transformers", "lora.enabled=true", "lora.r=8", "model.max_model_len=300", "seed=5"],
    )
    spec = engine_spec(cfg, "/m")
    assert (spec.kind, spec.model_path, spec.max_model_len, spec.seed) == ("transformers", "/m", 300, 5)
    assert spec.enable_lora and spec.max_lora_rank == 8
    assert not spec.on_gpu and spec.enforce_eager
    gpu = engine_spec(load_config(None, ["rollout.gpus_per_worker=1"]), "/m", kind="vllm")
    assert gpu.on_gpu and not gpu.enforce_eager and gpu.kind == "vllm"
    with pytest.raises(ValueError, match="not one of"):
        EngineSpec("sglang", "/m")
    fleet = fleet_spec(load_config(None, ["rollout.num_workers=2", "rollout.samples_per_prompt=4"]), "/m")
    assert fleet.num_workers == 2 and fleet.engine.model_path == "/m"
    assert fleet.sampling == sampling_spec(load_config(None, ["rollout.samples_per_prompt=4"]))
    assert fleet.sampling.n == 4


def test_the_fleet_never_starts_ray_itself():
    ray = pytest.importorskip("ray")
    from rollout.fleet import RolloutFleet

    assert not ray.is_initialized()
    with pytest.raises(FleetError, match="Ray session"):
        RolloutFleet(fleet_spec(load_config(None), "/m"))
    assert not ray.is_initialized()


def test_worker_env_runs_vllm_cpu_in_process_only_on_cpu():
    assert worker_env(on_gpu=False)["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in worker_env(on_gpu=True)


def test_nccl_ranks_of_separate_engines_do_not_overlap():
    client = FleetNcclClient(handles=[object(), object(), object()], tensor_parallel_size=2)
    infos = client.worker_init_infos(
        {"master_address": "10.0.0.1", "master_port": 1, "rank_offset": 1, "world_size": 7}
    )
    assert [i["rank_offset"] for i in infos] == [1, 3, 5]
    assert all(i["world_size"] == 7 and i["master_address"] == "10.0.0.1" for i in infos)


def test_reap_ends_only_the_recorded_process_and_finds_children():
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(60)']); time.sleep(60)",
        ]
    )
    try:
        deadline = time.monotonic() + 10
        while not child_pids(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        kids = child_pids(parent.pid)
        assert len(kids) == 1
        procs = [(p, proc_identity(p)) for p in [parent.pid, *kids]]
        assert all(alive(p, ident) for p, ident in procs)
        # a stale identity (same pid, other start time) is never killed
        assert not alive(parent.pid, f"{parent.pid}:0")
        assert reap(procs, grace_s=0.0) == []
        assert not any(alive(p, ident) for p, ident in procs)
    finally:
        parent.kill()
        parent.wait()
