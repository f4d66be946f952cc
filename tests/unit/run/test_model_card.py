"""The final model's card names the base model, the data, the recipe and the results; a push cannot
be asked for offline."""

from __future__ import annotations

import pytest

from rlcoder.config import ConfigError, load_config
from rlcoder.run.model_card import CARD, write_card
from rlcoder.run.preflight import check_push


def test_the_card_names_base_model_data_and_results(tmp_path):
    cfg = load_config(
        "configs/laptop.yaml",
        ["model.name_or_path=Qwen/Qwen3-8B", "learner.sft.stages=[bundled:train, x.jsonl]"],
    )
    results = {"before": {"pass_rate": 0.508, "solved": 2, "problems": 8}, "after": {"pass_rate": 0.859}}
    card = write_card(tmp_path, cfg, results)
    assert card == tmp_path / CARD
    text = card.read_text()
    assert text.startswith("---\nbase_model: Qwen/Qwen3-8B\n")
    assert "- SFT stages: `bundled:train`, `x.jsonl` (80 epochs, lr 0.003)" in text
    assert "- RL (grpo): `bundled:train`, 10 steps of 8 prompts x 8 samples, lr 0.0001" in text
    assert "| before RL | 50.8% | 2/8 |" in text and "| after RL | 85.9% | -/- |" in text
    assert "16 samples per problem, temperature 1.0" in text


def test_a_card_without_evaluations_says_so(tmp_path):
    text = write_card(tmp_path, load_config(None, ["stages=[sft]"]), {}).read_text()
    assert "No evaluation was run" in text and "RL (" not in text


def test_push_to_hub_is_refused_offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    check_push(load_config(None, []))
    with pytest.raises(
        ConfigError, match=r"^model\.push_to_hub: me/model cannot be pushed with HF_HUB_OFFLINE"
    ):
        check_push(load_config(None, ["model.push_to_hub=me/model"]))
