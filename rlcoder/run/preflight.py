"""Checks that run before any work starts (no SFT, no sampling, no Ray): every data source a command will
read is opened and its first rows parsed, the model path or hub id resolved, eval's k <= n and a fixed
reward port free. Each failure is a ConfigError of one line naming the field, the file and the line.
"""

from __future__ import annotations

import errno
import socket

from rlcoder.config import ConfigError, RunConfig
from rlcoder.console import Log
from rlcoder.run.model_paths import checked_model_path
from rlcoder.run_dir import SFT_STAGE

FIRST_ROWS = 8  # rows of each source parsed up front (a bad row further down fails when it is read)


def check_source(source: str, field: str, rows: int = FIRST_ROWS) -> int:
    """Open a problem source and parse its first `rows` rows; how many parsed. ConfigError naming
    `field` when it cannot be opened, a row is not a problem, or it holds none."""
    from rlcoder.data.humaneval import HumanEvalMissing
    from rlcoder.data.problems import ProblemLoadError, load_problems

    try:
        found = len(list(load_problems(source, limit=rows)))
    except (ProblemLoadError, HumanEvalMissing) as exc:
        raise ConfigError(f"{field}: {_first_line(exc)}") from None
    if not found:
        raise ConfigError(f"{field}: {source} holds no problems (an empty file?)")
    return found


def check_stage_source(source: str, index: int, rows: int = FIRST_ROWS) -> int:
    """A learner.sft.stages entry: problems, conversations:<rows> or conversations:feedback:<problems>."""
    from rlcoder.data.problems import ProblemLoadError, open_rows
    from rlcoder.learn.conversations import FEEDBACK_PREFIX, PREFIX, ConversationError, conversation_of

    field = f"learner.sft.stages[{index}]"
    if not source.startswith(PREFIX):
        return check_source(source, field, rows)
    inner = source[len(PREFIX) :]
    if inner.startswith(FEEDBACK_PREFIX):
        return check_source(inner[len(FEEDBACK_PREFIX) :], field, rows)
    found = 0
    try:
        for i, row in enumerate(open_rows(inner, streaming=True)):
            if i >= rows:
                break
            conversation_of(row, i)
            found += 1
    except (ProblemLoadError, ConversationError) as exc:
        raise ConfigError(f"{field}: {source}: {_first_line(exc)}") from None
    if not found:
        raise ConfigError(f"{field}: {source} holds no conversations (an empty file?)")
    return found


def check_ks(ks: list[int], n: int) -> None:
    """pass@k needs k <= n samples per problem: refused before anything is sampled."""
    over = [k for k in ks if k > n]
    if over:
        raise ConfigError(
            f"--k: pass@{','.join(map(str, over))} needs at least {max(over)} samples per problem, but --n "
            f"(eval.samples_per_problem) is {n}; pass --n {max(over)} or leave those k out"
        )


def check_port(cfg: RunConfig) -> None:
    """A fixed reward.port for a service this run starts must be free (0 picks a free one)."""
    if cfg.reward.url is not None or cfg.reward.port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((cfg.reward.host, cfg.reward.port))
        except OSError as exc:
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            raise ConfigError(
                f"reward.port: {cfg.reward.host}:{cfg.reward.port} {why}; pick another or 0 (any free port)"
            ) from None


def check_train(cfg: RunConfig, log: Log) -> str:
    """Everything `rlcoder train` / `rlcoder sft` will read, checked before the first stage starts;
    returns the resolved model path."""
    rl = [s for s in cfg.stages if s != SFT_STAGE]
    if SFT_STAGE in cfg.stages:
        for i, source in enumerate(cfg.learner.sft.stages):
            check_stage_source(source, i)
    if rl:
        check_source(cfg.data.train_source, "data.train_source")
        check_port(cfg)
    check_source(cfg.data.eval_source, "data.eval_source")
    check_push(cfg)
    model_path = checked_model_path(cfg.model.name_or_path)
    log(f"[check] inputs ok: data sources opened, model {model_path}, stages {' -> '.join(cfg.stages)}")
    return model_path


def check_push(cfg: RunConfig) -> None:
    """A push to the hub cannot happen offline: refused now, not after hours of training."""
    from huggingface_hub import constants

    if cfg.model.push_to_hub and constants.HF_HUB_OFFLINE:
        raise ConfigError(
            f"model.push_to_hub: {cfg.model.push_to_hub} cannot be pushed with HF_HUB_OFFLINE set "
            "(unset it, or push_to_hub=null; the model card is written either way)"
        )


def check_sft(cfg: RunConfig) -> str:
    """`rlcoder sft` alone: its stages and the model."""
    for i, source in enumerate(cfg.learner.sft.stages):
        check_stage_source(source, i)
    return checked_model_path(cfg.model.name_or_path)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
