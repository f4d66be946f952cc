"""SFT data and config mapping, without training: prompt/completion rows end on exactly one end of turn,
over-long examples are dropped and counted, batch arithmetic divides or says why, our config maps onto
TRL's SFTConfig, bad stages and bad configs are one-line errors (exit 2 from the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlcoder.config import ConfigError, RunConfig, load_config, sft_batch_plan
from rlcoder.data.problems import load_problems
from rlcoder.data.prompts import build_prompt, render_sft_example
from rlcoder.learn.sft import load_stage, sft_dataset, trainer_args


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def test_rows_are_the_prompt_and_the_reference_solution_ending_on_one_eos(tokenizer) -> None:
    problems = load_problems("bundled:train", limit=5)
    assert isinstance(problems, list)
    ds, dropped = sft_dataset(problems, tokenizer, RunConfig())
    assert dropped == {"dropped_prompt_too_long": 0, "dropped_over_max_length": 0}
    assert ds.column_names == ["prompt", "completion"]
    assert len(ds) == 5
    for problem, row in zip(problems, ds, strict=True):
        assert row["prompt"] == build_prompt(problem, tokenizer).text
        assert problem.solution.strip() in row["completion"]
        assert row["completion"].startswith("```python\n")
        # TRL appends the eos unless the completion already ends with it: it must, exactly once
        assert row["completion"].endswith(tokenizer.eos_token)
        assert row["completion"].count(tokenizer.eos_token) == 1


def test_over_long_examples_and_prompts_are_dropped_and_counted(tokenizer) -> None:
    problems = load_problems("bundled:train", limit=6)
    assert isinstance(problems, list)
    lengths = sorted(render_sft_example(p, tokenizer).n_tokens for p in problems)
    cut = lengths[2]  # keeps the three shortest (up to equal lengths)
    cfg = load_config(overrides=[f"learner.sft.max_length={cut}"])
    ds, dropped = sft_dataset(problems, tokenizer, cfg)
    assert len(ds) == sum(n <= cut for n in lengths)
    assert dropped["dropped_over_max_length"] == 6 - len(ds)

    shortest_prompt = min(len(build_prompt(p, tokenizer).token_ids) for p in problems)
    cfg = load_config(overrides=[f"data.max_prompt_tokens={shortest_prompt - 1}"])
    ds, dropped = sft_dataset(problems, tokenizer, cfg)
    assert len(ds) == 0
    assert dropped["dropped_prompt_too_long"] == 6


def test_batch_plan_divides_or_shows_the_arithmetic() -> None:
    plan = sft_batch_plan(load_config(overrides=["learner.sft.batch_size=8"]))
    assert (plan.examples_per_device_batch, plan.gradient_accumulation_steps) == (8, 1)
    plan = sft_batch_plan(
        load_config(
            overrides=[
                "learner.sft.batch_size=32",
                "learner.sft.examples_per_device_batch=4",
                "learner.num_processes=2",
                "learner.completions_per_device_batch=4",
            ]
        )
    )
    assert (plan.examples_per_device_batch, plan.gradient_accumulation_steps) == (4, 4)
    with pytest.raises(ConfigError, match=r"batch_size = 12 .* 8 \* 1 = 8"):
        load_config(overrides=["learner.sft.batch_size=12", "learner.sft.examples_per_device_batch=8"])
    with pytest.raises(ConfigError, match=r"learner\.sft\.batch_size: 6 examples .*num_processes = 4$"):
        load_config(
            overrides=[
                "learner.sft.batch_size=6",
                "learner.num_processes=4",
                "learner.completions_per_device_batch=1",
            ]
        )


def test_config_maps_onto_trl_sft_config(tmp_path: Path) -> None:
    cfg = load_config(
        overrides=[
            "learner.sft.lr=0.003",
            "learner.sft.epochs=2.5",
            "learner.sft.batch_size=16",
            "learner.sft.examples_per_device_batch=4",
            "learner.sft.max_length=300",
            "learner.sft.warmup_ratio=0.1",
            "learner.sft.lr_scheduler=constant_with_warmup",
            "seed=7",
        ]
    )
    args = trainer_args(cfg, tmp_path, stage=1)
    assert args.learning_rate == 0.003
    assert args.num_train_epochs == 2.5
    assert args.per_device_train_batch_size == 4
    assert args.gradient_accumulation_steps == 4
    assert args.max_length == 300
    assert args.get_warmup_steps(100) == 10
    assert args.lr_scheduler_type == "constant_with_warmup"
    assert args.completion_only_loss is True
    assert args.bf16 is False and args.fp16 is False  # float32 weights: no mixed precision on CPU
    assert args.gradient_checkpointing is False
    assert args.seed == 8  # seed + stage, so stage 2 does not replay stage 1's shuffle
    assert args.save_strategy == "no"
    assert load_config(overrides=["model.dtype=bfloat16"]).model.dtype == "bfloat16"


def test_an_unreadable_stage_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"learner\.sft\.stages: .*no such file"):
        load_stage("/nonexistent/kodcode.parquet", RunConfig())
    with pytest.raises(ConfigError, match=r"learner\.sft\.stages: .*split"):
        load_stage("bundled:dev", RunConfig())


def test_sft_reports_to_tensorboard_unless_logging_is_off(tmp_path: Path) -> None:
    from rlcoder.learn.sft import trainer_args

    assert trainer_args(load_config(), tmp_path, 0).report_to == ["tensorboard"]
    assert trainer_args(load_config(overrides=["logging.tensorboard=false"]), tmp_path, 0).report_to in (
        [],
        "none",
    )
