"""The one model/tokenizer/LoRA loader: model.dtype and model.trust_remote_code reach every load, and no
other module of rlcoder loads a model or tokenizer itself (so SFT, GRPO, PPO, the RL stage and eval
cannot drift apart again)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rlcoder.config import load_config
from rlcoder.learn import loader
from tests.helpers import REPO


@pytest.fixture
def calls(monkeypatch):
    import transformers

    seen: list[tuple[str, str, dict]] = []
    for cls in ("AutoTokenizer", "AutoModelForCausalLM", "AutoModel"):

        def record(path, _cls=cls, **kwargs):
            seen.append((_cls, path, kwargs))
            return object()

        monkeypatch.setattr(getattr(transformers, cls), "from_pretrained", record)
    return seen


def test_trust_remote_code_and_dtype_reach_every_load(calls):
    import torch

    cfg = load_config(None, ["model.trust_remote_code=true", "model.dtype=bfloat16"])
    loader.load_tokenizer(cfg, "/m")
    loader.load_causal_lm(cfg, Path("/m"))
    loader.load_backbone(cfg, "/m")
    assert [c[0] for c in calls] == ["AutoTokenizer", "AutoModelForCausalLM", "AutoModel"]
    assert all(c[1] == "/m" and c[2]["trust_remote_code"] is True for c in calls)
    assert calls[1][2]["dtype"] is torch.bfloat16 and calls[2][2]["dtype"] is torch.bfloat16


def test_lora_is_added_only_when_enabled():
    cfg = load_config(None, ["lora.enabled=false"])
    model = object()
    assert loader.with_lora(model, cfg) is model and loader.lora_config(cfg) is None
    on = loader.lora_config(load_config(None, ["lora.enabled=true", "lora.r=4"]))
    assert on.r == 4 and on.task_type == "CAUSAL_LM"


def test_no_other_module_loads_models_or_tokenizers():
    offenders = []
    for path in sorted((REPO / "rlcoder").rglob("*.py")):
        if path == REPO / "rlcoder" / "learn" / "loader.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "from_pretrained":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, f"load through rlcoder/learn/loader.py instead: {offenders}"
