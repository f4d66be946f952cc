"""Learner side of a weight sync: after an optimizer step the fleet gets the full weights or only
the LoRA adapter, plus a check sequence scored under the learner's new weights, which every engine
must reproduce (rollout/ raises WeightSyncError when it does not).

With N ranks every rank runs the check's forward and the gather of the shards (both collective
under FSDP); rank 0 alone sends, and no rank samples again until it has (a barrier)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlcoder.learn import dist
from rlcoder.learn.step import RLSetup, StepRecord, check_sequence
from rlcoder.seams import PolicyFleet
from rollout.sync import SyncCheck


def learner_logprobs(model: Any, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
    """The check sequence's logprobs under the learner's weights, with dropout off."""
    from rollout.sync import completion_logprobs

    was_training = model.training
    model.eval()
    try:
        return completion_logprobs(model, prompt_ids, completion_ids)
    finally:
        model.train(was_training)


def is_peft_model(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "save_pretrained")


class FleetSync:
    """Pushes the learner's current weights to the fleet as `policy_version` = optimizer steps
    taken. It also stands in for TRL's VLLMGeneration object, whose `sync_weights()` TRL calls
    before generating whenever an optimizer step happened since the last call."""

    def __init__(
        self,
        fleet: PolicyFleet,
        model_getter: Callable[[], Any],
        version_getter: Callable[[], int],
        check_ids: tuple[list[int], list[int]],
        adapter_dir: Path,
        on_synced: Callable[[int, float], None] = lambda version, seconds: None,
    ) -> None:
        self._fleet = fleet
        self._model = model_getter
        self._version = version_getter
        self._check_ids = check_ids
        self._adapter_dir = adapter_dir
        self._on_synced = on_synced

    def sync_weights(self) -> None:
        # SYNC
        t0 = time.perf_counter()
        model, version = self._model(), self._version()
        prompt_ids, completion_ids = self._check_ids
        check = SyncCheck(prompt_ids, completion_ids, learner_logprobs(model, prompt_ids, completion_ids))
        if dist.world_size() > 1:
            self._send_gathered(model, version, check)
            dist.barrier()
        elif is_peft_model(model):
            path = self._adapter_dir / f"v{version:06d}"
            model.save_pretrained(str(path))
            self._fleet.load_adapter(str(path), version, check)
        else:
            self._fleet.sync_weights(model.state_dict(), version, check)
        self._on_synced(version, time.perf_counter() - t0)

    def _send_gathered(self, model: Any, version: int, check: SyncCheck) -> None:
        """Gather the shards (all ranks, lockstep) and send from rank 0: the adapter's tensors only
        with LoRA, else the whole state dict, bucket by bucket into the fleet."""
        from rlcoder.learn import fsdp

        peft = is_peft_model(model)
        keep = fsdp.is_adapter_key if peft else None
        if not peft and hasattr(self._fleet, "sync_weight_buckets"):
            buckets = fsdp.gathered_buckets(model.state_dict(), keep=keep)
            if dist.is_main():
                self._fleet.sync_weight_buckets(buckets, version, check)
            else:
                for _ in buckets:  # take part in every gather
                    pass
            return
        state = fsdp.gather_full_state(model, keep=keep)
        if not dist.is_main():
            return
        if peft:
            path = self._adapter_dir / f"v{version:06d}"
            model.save_pretrained(str(path), state_dict=state)
            self._fleet.load_adapter(str(path), version, check)
        else:
            self._fleet.sync_weights(state, version, check)


def fleet_sync_for(
    rl: RLSetup, record: StepRecord, model_getter: Callable[[], Any], version_getter: Callable[[], int]
) -> FleetSync:
    """The stage's FleetSync: checked on the first train prompt with its reference solution, adapters
    under <stage>/adapters, sync time added to the step's record."""
    first = rl.prompts[0]
    return FleetSync(
        rl.fleet,
        model_getter=model_getter,
        version_getter=version_getter,
        check_ids=check_sequence(first, rl.problems[first.problem_id], rl.tokenizer),
        adapter_dir=rl.stage.root / "adapters",
        on_synced=lambda version, seconds: record.add_time("sync", seconds),
    )
