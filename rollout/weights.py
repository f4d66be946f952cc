"""Weights on the wire: a state dict as numpy arrays (Ray's object store shares them zero-copy between
processes on a node; torch tensors would be pickled), and LoRA adapters in PEFT's file format read
and merged without peft.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# numpy has no bfloat16: such tensors travel as their raw 16 bits and are viewed back on arrival.
_VIEW_AS_INT16 = ("bfloat16",)


@dataclass
class WireState:
    """A state dict that crosses a Ray call: name -> array, plus the torch dtype of any array whose
    numpy dtype is only a carrier (bfloat16 travels as int16)."""

    arrays: dict[str, np.ndarray]
    torch_dtypes: dict[str, str] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


def pack_state(state: Mapping[str, Any]) -> WireState:
    """torch tensors (any device) or numpy arrays -> WireState."""
    if isinstance(state, WireState):
        return state
    arrays: dict[str, np.ndarray] = {}
    torch_dtypes: dict[str, str] = {}
    for name, value in state.items():
        if isinstance(value, np.ndarray):
            arrays[name] = value
            continue
        tensor = value.detach().to("cpu").contiguous()
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype in _VIEW_AS_INT16:
            import torch

            arrays[name] = tensor.view(torch.int16).numpy()
            torch_dtypes[name] = dtype
        else:
            arrays[name] = tensor.numpy()
    return WireState(arrays, torch_dtypes)


def unpack_state(state: WireState | Mapping[str, Any]) -> dict[str, Any]:
    """WireState (or a plain mapping) -> name -> torch tensor, without copying where possible."""
    import torch

    if not isinstance(state, WireState):
        return {k: v if isinstance(v, torch.Tensor) else _from_numpy(v) for k, v in state.items()}
    out = {}
    for name, array in state.arrays.items():
        tensor = _from_numpy(array)
        dtype = state.torch_dtypes.get(name)
        out[name] = tensor.view(getattr(torch, dtype)) if dtype else tensor
    return out


def _from_numpy(array: np.ndarray) -> Any:
    import torch

    with warnings.catch_warnings():
        # Arrays from Ray's object store are read-only; the engine copies them into its own
        # parameters and never writes to these views.
        warnings.filterwarnings("ignore", message=".*not writable.*")
        return torch.from_numpy(array)


# ---------------------------------------------------------------------------------------------
# LoRA adapters (PEFT layout: adapter_config.json + adapter_model.safetensors)


@dataclass
class LoraAdapter:
    """A LoRA adapter as deltas to apply: target parameter name -> (A [r, in], B [out, r])."""

    scale: float  # lora_alpha / r
    pairs: dict[str, tuple[Any, Any]]
    rank: int


def read_adapter(path: str | Path) -> LoraAdapter:
    """Read a PEFT LoRA adapter directory; unsupported variants are an error, not a silent skip."""
    from safetensors.torch import load_file

    root = Path(path)
    config = json.loads((root / "adapter_config.json").read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{root}: peft_type {config.get('peft_type')!r} is not LORA")
    for flag in ("use_dora", "use_rslora"):
        if config.get(flag):
            raise ValueError(f"{root}: {flag} adapters are not supported")
    rank = int(config["r"])
    scale = float(config.get("lora_alpha", rank)) / rank
    tensors = load_file(str(root / "adapter_model.safetensors"))
    halves: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        for half in ("lora_A", "lora_B"):
            marker = f".{half}."
            if marker in key:
                module = key.split(marker)[0].removeprefix("base_model.model.")
                halves.setdefault(module, {})[half] = tensor
    pairs = {}
    for module, ab in halves.items():
        if set(ab) != {"lora_A", "lora_B"}:
            raise ValueError(f"{root}: {module} has only {sorted(ab)}")
        pairs[f"{module}.weight"] = (ab["lora_A"], ab["lora_B"])
    if not pairs:
        raise ValueError(f"{root}: no lora_A/lora_B tensors in adapter_model.safetensors")
    return LoraAdapter(scale, pairs, rank)


def merge_adapter(base: Mapping[str, Any], adapter: LoraAdapter) -> dict[str, Any]:
    """Base weights with W + scale * B @ A applied to every targeted parameter (new tensors)."""
    missing = sorted(set(adapter.pairs) - set(base))
    if missing:
        raise ValueError(f"adapter targets parameters the model does not have: {missing[:3]}")
    merged = {}
    for name, (a, b) in adapter.pairs.items():
        weight = base[name]
        delta = (
            b.to(weight.device, dtype=weight.dtype) @ a.to(weight.device, dtype=weight.dtype)
        ) * adapter.scale
        merged[name] = weight + delta
    return merged
