"""The sharded weight sync (rlcoder/learn/weight_sync.py + fsdp.py) on 2 gloo ranks: FSDP2-sharded
full weights reach the fleet as exactly the unsharded state dict (names, dtypes, values), LoRA sends
the adapter's tensors only (equal to the unsharded adapter's), only rank 0 sends, and the check's
logprobs are the unsharded model's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.fakes import ScriptedFleet
from tests.helpers.ranks import run_ranks

pytestmark = pytest.mark.integration
CHECK = ([3, 4, 5], [6, 7, 8, 9])


def sync_once(model_dir: str, lora: bool, adapter_dir: str) -> tuple[list, dict, list[float]]:
    """On every rank: load (seeded), shard when there are 2 ranks, sync; returns what this rank's
    fleet got, the unsharded reference (state and adapter keys), and the reference check logprobs."""
    from peft import get_peft_model_state_dict

    from rlcoder.config import load_config
    from rlcoder.learn import dist, fsdp
    from rlcoder.learn.loader import load_causal_lm, with_lora
    from rlcoder.learn.weight_sync import FleetSync, learner_logprobs

    torch.manual_seed(0)
    cfg = load_config(None, ["lora.enabled=true", "lora.r=4"] if lora else [])
    model = with_lora(load_causal_lm(cfg, model_dir), cfg)
    if lora:  # a non-zero adapter, so equality is not between two zero B matrices
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.data.normal_(generator=torch.Generator().manual_seed(len(name)))
        reference = {k: v.clone() for k, v in get_peft_model_state_dict(model).items()}
    else:
        reference = {k: v.clone() for k, v in model.state_dict().items()}
    expected = learner_logprobs(model, *CHECK)
    if dist.world_size() > 1:
        fsdp.shard(model)
    fleet = ScriptedFleet()
    FleetSync(fleet, lambda: model, lambda: 1, CHECK, Path(adapter_dir) / f"rank{dist.rank()}").sync_weights()
    return fleet.synced, reference, expected


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_sharded_sync_delivers_the_unsharded_weights(
    tiny_model_dir: Path, tmp_path: Path, lora: bool
) -> None:
    (sent0, reference, expected), (sent1, _, _) = run_ranks(
        2, sync_once, str(tiny_model_dir), lora, str(tmp_path)
    )
    assert sent1 == []  # only rank 0 sends
    [(kind, payload, version, check)] = sent0
    assert version == 1 and kind == ("adapter" if lora else "weights")
    assert check.expected_logprobs == pytest.approx(expected, abs=1e-5)
    if lora:
        assert payload and all("lora_" in k for k in payload)  # the adapter only, no base weight
        # peft drops the adapter name on save; the tensors are the unsharded adapter's exactly
        assert set(payload) == set(reference)
    else:
        assert len(payload) > 40
        assert list(payload) == list(reference)
    for name, want in reference.items():
        got = payload[name]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert torch.equal(got, want), name
