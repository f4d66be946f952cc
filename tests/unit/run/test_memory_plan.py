"""The memory plan: hand-computed bytes for a small shape, sharding, refusal with the arithmetic, and
the 8B configs fitting the cluster they state."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlcoder.config import ConfigError, load_config
from rlcoder.run.memory_plan import GB, ModelShape, check_fits, memory_plan, model_shape

CONFIGS = Path(__file__).parents[3] / "configs"
# 10 vocab x 4 hidden, tied; one layer: q 4x4, k/v 4x2, o 4x4, biases 4+2+2, MLP 3 x 4x8, 2 norms
SHAPE = ModelShape(10, 4, 8, 1, 2, 1, 2, True)


def test_param_count_by_hand():
    layer = 16 + 8 + 8 + 16 + 8 + 96 + 8
    assert SHAPE.layer_params() == layer
    assert SHAPE.params() == 40 + layer + 4


def test_full_weights_shard_over_ranks_on_gpu():
    base = ["rollout.gpus_per_worker=1", "model.dtype=bfloat16", "learner.completions_per_device_batch=1"]
    one = memory_plan(load_config(None, base), SHAPE)
    eight = memory_plan(load_config(None, [*base, "learner.num_processes=4"]), SHAPE)
    p = SHAPE.params()
    assert (one.params_b, one.grads_b, one.optimizer_b) == (2 * p, 2 * p, 4 * p)
    assert (eight.params_b, eight.grads_b, eight.optimizer_b) == (2 * p / 4, 2 * p / 4, 4 * p / 4)
    assert eight.sharded_over == 4 and one.sharded_over == 1
    assert eight.working_b == 3 * SHAPE.layer_params() * 2
    assert (eight.learner_gpus, eight.rollout_gpus, eight.nodes) == (4, 1, 1)


def test_grpo_on_cpu_is_replicated_ppo_is_sharded():
    grpo = memory_plan(load_config(None, ["learner.num_processes=2"]), SHAPE)
    ppo = memory_plan(
        load_config(None, ["learner.num_processes=2", "stages=[ppo]", "learner.algo=ppo"]), SHAPE
    )
    assert grpo.sharded_over == 1 and ppo.sharded_over == 2
    assert ppo.optimizer_b == grpo.optimizer_b / 2


def test_lora_keeps_only_adapter_state():
    cfg = load_config(None, ["lora.enabled=true", "lora.r=2", "lora.target_modules=[q_proj]"])
    plan = memory_plan(cfg, SHAPE)
    adapter = 2 * (4 + 4)  # r * (in + out) of q_proj, one layer
    assert plan.grads_b == 4 * adapter and plan.optimizer_b == 8 * adapter
    assert plan.params_b == 4 * SHAPE.params() + 4 * adapter


def test_a_config_that_cannot_fit_is_refused_with_the_arithmetic():
    cfg = load_config(CONFIGS / "grpo_8b.yaml", ["learner.num_processes=1", "rollout.num_workers=1"])
    with pytest.raises(
        ConfigError, match=r"learner: \d+\.\d GB per GPU \(params .*> cluster.gpu_memory_gb = 80"
    ):
        check_fits(memory_plan(cfg, model_shape(cfg.model.name_or_path)), cfg)
    cfg = load_config(CONFIGS / "grpo_8b.yaml", ["rollout.num_workers=16"])
    with pytest.raises(ConfigError, match=r"8 learner \+ 16 rollout = 24 GPUs need ceil\(24 / 8\) = 3 nodes"):
        check_fits(memory_plan(cfg, model_shape(cfg.model.name_or_path)), cfg)


@pytest.mark.parametrize("name", ["grpo_8b.yaml", "ppo_8b.yaml"])
def test_8b_configs_fit_their_stated_cluster(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.cluster.nodes is not None
    plan = memory_plan(cfg, model_shape(cfg.model.name_or_path))
    check_fits(plan, cfg)
    assert plan.learner_b < cfg.cluster.gpu_memory_gb * GB
    assert plan.sharded_over == cfg.learner.num_processes > 1
    assert plan.nodes <= cfg.cluster.nodes


def test_prompts_must_split_into_whole_groups_per_rank():
    with pytest.raises(ConfigError, match=r"6 prompts do not split .*num_processes = 4 ranks \(6 % 4 = 2\)"):
        load_config(None, ["learner.prompts_per_step=6", "learner.num_processes=4",
                           "learner.completions_per_device_batch=1"])  # fmt: skip
