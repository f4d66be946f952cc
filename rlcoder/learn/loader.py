"""The one place models, tokenizers and LoRA adapters are loaded for training and evaluation. Every
load honours model.dtype and model.trust_remote_code, so SFT, GRPO, PPO, the RL stage and eval all
read a model the same way (rollout engines get the same fields through their EngineSpec)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcoder.config import RunConfig


def load_tokenizer(cfg: RunConfig, path: str | Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), trust_remote_code=cfg.model.trust_remote_code)


def _model_kwargs(cfg: RunConfig) -> dict[str, Any]:
    import torch

    return {"dtype": getattr(torch, cfg.model.dtype), "trust_remote_code": cfg.model.trust_remote_code}


def load_causal_lm(cfg: RunConfig, path: str | Path) -> Any:
    """The policy (or a reference copy of it) as a causal LM, full weights."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), **_model_kwargs(cfg))


def load_backbone(cfg: RunConfig, path: str | Path) -> Any:
    """The model without its LM head (a separate critic's body)."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(path), **_model_kwargs(cfg))


def lora_config(cfg: RunConfig, task_type: str | None = "CAUSAL_LM") -> Any:
    """peft's LoraConfig from our lora section, or None when LoRA is off."""
    if not cfg.lora.enabled:
        return None
    from peft import LoraConfig

    lc = cfg.lora
    return LoraConfig(
        r=lc.r,
        lora_alpha=lc.alpha,
        lora_dropout=lc.dropout,
        target_modules=list(lc.target_modules),
        task_type=task_type,
    )


def with_lora(model: Any, cfg: RunConfig, task_type: str | None = "CAUSAL_LM") -> Any:
    """`model` with a fresh trainable LoRA adapter when LoRA is on, else `model` itself."""
    if not cfg.lora.enabled:
        return model
    from peft import get_peft_model

    return get_peft_model(model, lora_config(cfg, task_type))


def load_adapter(base: Any, path: str | Path) -> Any:
    """`base` with the trainable LoRA adapter saved in `path` (a resumed run)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(path), is_trainable=True)
