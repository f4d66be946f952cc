"""The config schema: every shipped config loads, overrides apply, bad input is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlcoder.config import ConfigError, RunConfig, batch_plan, load_config
from rlcoder.run_dir import write_resolved

CONFIGS = sorted((Path(__file__).parents[3] / "configs").glob("*.yaml"))


def test_every_shipped_config_loads():
    assert len(CONFIGS) == 5, [p.name for p in CONFIGS]  # update when a config is added
    for path in CONFIGS:
        cfg = load_config(path)
        assert batch_plan(cfg).completions_per_step > 0


def test_defaults_need_no_file():
    cfg = load_config()
    assert cfg == RunConfig()


def test_dotted_overrides_apply_with_yaml_types(tmp_path):
    cfg = load_config(None, ["learner.lr=1e-6", "rollout.samples_per_prompt=8", "ray.address=auto"])
    assert cfg.learner.lr == 1e-6
    assert cfg.rollout.samples_per_prompt == 8
    assert cfg.ray.address == "auto"


def test_batch_plan_arithmetic():
    cfg = load_config(
        None,
        [
            "learner.prompts_per_step=6",
            "rollout.samples_per_prompt=4",
            "learner.completions_per_device_batch=4",
            "learner.num_processes=2",
        ],
    )
    plan = batch_plan(cfg)
    assert plan.completions_per_step == 24
    assert plan.gradient_accumulation_steps == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["learner.bogus=1"], "learner.bogus: unknown key"),
        (["rollout.samples_per_promt=4"], "rollout.samples_per_promt: unknown key"),
        (["learner.lr=fast"], "learner.lr: Input should be a valid number"),
        (["learner.lr=-1"], "learner.lr: Input should be greater than 0"),
        (["learner.prompts_per_step=3"], "3 * 4 = 12 completions per step, which does not divide"),
        (["rollout.samples_per_prompt=1"], "GRPO needs groups of at least 2"),
        (["learner"], "expected key.sub=value"),
        (["data.shuffle_seed=1"], "data.shuffle_seed: unknown key"),  # read by nothing: removed
    ],
)
def test_bad_input_is_one_line_naming_the_field(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("learner: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(bad)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(CONFIGS[0], ["learner.steps=3"])
    path = write_resolved(cfg, tmp_path)
    assert path.name == "config.resolved.yaml"
    again = load_config(path)
    assert again == cfg
    assert yaml.safe_load(path.read_text())["learner"]["steps"] == 3
