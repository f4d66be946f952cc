"""Short real SFT runs of the tiny model: `rlcoder sft` through the CLI over two stages (full weights),
and LoRA saved merged or as an adapter. Each checks that training happened (finite, falling loss;
weights changed) and that the output loads with transformers (and peft for an adapter)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlcoder.config import load_config
from rlcoder.data.problems import load_problems, problem_to_row
from rlcoder.learn.sft import SUMMARY_FILE, read_summary, run_sft, sft_complete

pytestmark = pytest.mark.integration

LAPTOP = Path(__file__).resolve().parents[2] / "configs" / "laptop.yaml"
# A few steps on the same two examples with a high, constant lr: the loss must fall from random init.
SHORT = [
    "data.limit=2",
    "learner.sft.batch_size=2",
    "learner.sft.epochs=4",
    "learner.sft.lr=0.003",
    "learner.sft.lr_scheduler=constant",
    "learner.sft.warmup_ratio=0",
    "learner.torch_threads=1",
    "learner.sft.mutants_per_problem=0",  # reference solutions only: the step counts below
]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    model = AutoModelForCausalLM.from_pretrained(str(path))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_cli_sft_two_stages_full_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    stage2 = tmp_path / "stage2.jsonl"
    eval_problems = load_problems("bundled:eval", limit=2)
    stage2.write_text("".join(json.dumps(problem_to_row(p)) + "\n" for p in eval_problems))
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcoder",
            "sft",
            "--config",
            str(LAPTOP),
            f"run_dir={run_dir}",
            f"model.name_or_path={tiny_model_dir}",
            f"learner.sft.stages=[bundled:train, {stage2}]",
            *SHORT,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = run_dir / "sft"
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert "sft stage 2/2 step 4/4 loss" in proc.stderr  # progress goes to stderr
    assert (run_dir / "config.resolved.yaml").is_file()
    assert sft_complete(out)
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []  # no work dirs left

    summary = read_summary(out)
    assert [s["source"] for s in summary["stages"]] == ["bundled:train", str(stage2)]
    for stage in summary["stages"]:
        assert stage["examples"] == 2
        assert stage["steps"] == 4
        assert len(stage["losses"]) == 4
        assert all(math.isfinite(x) for x in stage["losses"])
    first = summary["stages"][0]["losses"]
    assert first[-1] < first[0]
    assert summary["lora"] is False

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    base_tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    assert tokenizer.chat_template == base_tokenizer.chat_template
    assert tokenizer.eos_token == base_tokenizer.eos_token
    before, after = _weights(tiny_model_dir), _weights(out)
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "model.embed_tokens.weight" in changed
    assert any("mlp" in k for k in changed)


def test_lora_merged_then_kept_as_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import PeftModel

    out = tmp_path / "sft"
    base = _weights(tiny_model_dir)
    lora = ["lora.enabled=true", "lora.r=4", "lora.alpha=8", "learner.sft.lr=0.01"]

    cfg = load_config(LAPTOP, [*SHORT, *lora, "learner.sft.merge_lora=true"])
    assert run_sft(cfg, str(tiny_model_dir), out) == out
    assert not (out / "adapter_config.json").exists()
    merged = _weights(out)
    assert merged.keys() == base.keys()  # a plain model again: no lora_ weights left
    # Only the adapted projections moved; everything else is the base model's.
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    assert changed and all(
        k.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight")) for k in changed
    )
    assert read_summary(out)["merged"] is True

    cfg = load_config(LAPTOP, [*SHORT, *lora, "learner.sft.merge_lora=false"])
    run_sft(cfg, str(tiny_model_dir), out)  # replaces the merged checkpoint
    assert (out / "adapter_config.json").is_file()
    assert not (out / "model.safetensors").exists()
    assert json.loads((out / SUMMARY_FILE).read_text())["merged"] is False
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(out))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: nonzero means trained
    assert AutoTokenizer.from_pretrained(str(out)).eos_token == "<|im_end|>"
