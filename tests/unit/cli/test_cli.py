"""The CLI validates config before heavy imports and reports bad input as one line, exit 2."""

from __future__ import annotations

import pytest

from rlcoder.cli.main import COMMANDS, build_parser, main


def test_help_lists_every_registered_command():
    text = build_parser().format_help()
    for path in COMMANDS:
        assert path[0] in text


def test_config_command_prints_the_resolved_config_and_batch_plan(capsys):
    assert main(["config", "--config", "configs/laptop.yaml", "learner.steps=2"]) == 0
    out = capsys.readouterr().out
    assert "steps: 2" in out
    assert "# batch: 8 prompts x 8 samples = 64 completions/step, 8 accumulation steps of 8" in out
    assert main(["config", "--config", "configs/laptop_ppo.yaml"]) == 0
    out = capsys.readouterr().out
    assert "64 completions/step, 2 minibatches of 32 x 2 epochs (up to 4 optimizer steps)" in out


def test_an_unexpected_error_is_one_line_unless_verbose(monkeypatch, capsys):
    import rlcoder.cli.main as cli

    def boom(args):
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(cli, "_resolve", lambda target: boom)
    monkeypatch.setenv("RLCODER_VERBOSE", "0")
    assert main(["config"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "rlcoder: error: OSError: [Errno 98] Address already in use (--verbose shows the traceback)\n"
    )
    with pytest.raises(OSError, match="Address already in use"):
        main(["config", "--verbose"])


def test_a_bad_row_found_late_is_a_data_error_exit_2(monkeypatch, capsys):
    import rlcoder.cli.main as cli
    from rlcoder.data.problems import ProblemLoadError

    def late(args):
        raise ProblemLoadError("train.jsonl: row 40 (q1): column 'test' is missing")

    monkeypatch.setattr(cli, "_resolve", lambda target: late)
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert err == "rlcoder: data error: train.jsonl: row 40 (q1): column 'test' is missing\n"
