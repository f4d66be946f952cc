"""SFT on multi-turn feedback conversations with the tiny model: TRL trains on the assistant tokens
only, and a short run over conversations built from bundled problems (real sandbox feedback) trains."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlcoder.config import load_config
from rlcoder.learn.sft import read_summary, run_sft, stage_dataset, trainer_args

pytestmark = pytest.mark.integration

STAGE = "conversations:feedback:bundled:train"
SHORT = [
    "data.limit=2",
    "learner.sft.batch_size=2",
    "learner.sft.epochs=3",
    "learner.sft.lr=0.003",
    "learner.sft.lr_scheduler=constant",
    "learner.sft.max_length=1024",
    "learner.torch_threads=1",
    f"learner.sft.stages=[{STAGE}]",
]


def test_trl_labels_only_the_assistant_turns(tiny_model_dir: Path, tmp_path: Path) -> None:
    from trl import SFTTrainer

    cfg = load_config(None, SHORT)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    dataset, _ = stage_dataset(STAGE, tokenizer, cfg)
    assert len(dataset) == 4  # 2 feedback conversations, then the 2 problems' single-turn ones
    assert len(dataset[0]["input_ids"]) > len(dataset[2]["input_ids"])
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
        args=trainer_args(cfg, tmp_path, 0),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    row = trainer.train_dataset[0]
    mask = dataset[0]["assistant_masks"]
    assert row["input_ids"] == dataset[0]["input_ids"]
    assert row["labels"] == [t if m else -100 for t, m in zip(row["input_ids"], mask, strict=True)]
    assert 0 < sum(mask) < len(mask)


def test_short_sft_run_on_feedback_conversations(tiny_model_dir: Path, tmp_path: Path) -> None:
    cfg = load_config(None, [*SHORT, f"run_dir={tmp_path}"])
    out = run_sft(cfg, str(tiny_model_dir), tmp_path / "sft")
    (stage,) = read_summary(out)["stages"]
    assert stage["source"] == STAGE and stage["examples"] == 4
    assert stage["losses"] and all(math.isfinite(x) for x in stage["losses"])
    assert stage["losses"][-1] < stage["losses"][0]
