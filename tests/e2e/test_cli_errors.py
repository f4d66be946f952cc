"""Bad configs through the CLI in a subprocess: one line on stderr naming the field, exit 2."""

from __future__ import annotations

import pytest

from tests.helpers.cli import rlcoder_cli

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["config", "--config", "configs/laptop.yaml", "learner.nope=1"], "learner.nope: unknown key"),
        (["config", "--config", "configs/missing.yaml"], "config file not found"),
        (["config", "learner.prompts_per_step=3"], "does not divide"),
        (["config", "rollout.max_new_tokens=many"], "rollout.max_new_tokens"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(args, needle):
    proc = rlcoder_cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rlcoder: config error:")
    assert needle in lines[0]


def test_unknown_command_fails():
    proc = rlcoder_cli("frobnicate")
    assert proc.returncode != 0
    assert "invalid choice" in proc.stderr


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["learner.sft.nope=1"], "learner.sft.nope: unknown key"),
        (["learner.sft.stages=[]"], "learner.sft.stages"),
        (["learner.sft.lr=0"], "learner.sft.lr"),
        (["learner.sft.batch_size=6", "learner.sft.examples_per_device_batch=4"], "does not divide"),
    ],
)
def test_sft_cli_rejects_a_bad_config_with_exit_2(overrides: list[str], needle: str) -> None:
    proc = rlcoder_cli("sft", "--config", "configs/laptop.yaml", *overrides)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rlcoder: config error:")
    assert needle in lines[0]
