"""Weights for engine tests: perturbed state dicts, random PEFT-format LoRA adapters, and the merged
reference an adapter must reproduce."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save_file


def perturbed(model, seed: int, scale: float = 0.05) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: v + scale * torch.randn(v.shape, generator=gen) for k, v in model.named_parameters()}


def write_adapter(root, model, seed: int, r: int = 4, alpha: int = 8):
    """A random PEFT-format LoRA adapter on q_proj and v_proj of every layer."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, param in model.named_parameters():
        if name.endswith(("q_proj.weight", "v_proj.weight")):
            module = name.removesuffix(".weight")
            out_dim, in_dim = param.shape
            tensors[f"base_model.model.{module}.lora_A.weight"] = 0.3 * torch.randn(r, in_dim, generator=gen)
            tensors[f"base_model.model.{module}.lora_B.weight"] = 0.3 * torch.randn(out_dim, r, generator=gen)
    root.mkdir(parents=True)
    save_file(tensors, str(root / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": ["q_proj", "v_proj"]}
    config.update(bias="none", task_type="CAUSAL_LM")
    (root / "adapter_config.json").write_text(json.dumps(config))
    return root


def merged_reference(model, adapter_dir):
    """The same adapter applied by hand to a copy of the model (W + alpha/r * B @ A)."""
    import copy

    from safetensors.torch import load_file

    ref = copy.deepcopy(model)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    params = dict(ref.named_parameters())
    with torch.no_grad():
        for key, a in tensors.items():
            if ".lora_A." in key:
                module = key.removeprefix("base_model.model.").split(".lora_A.")[0]
                b = tensors[key.replace("lora_A", "lora_B")]
                params[f"{module}.weight"] += config["lora_alpha"] / config["r"] * b @ a
    return ref
