"""The learner as N Ray Train ranks (learner.num_processes > 1): a TorchTrainer whose workers each
run GRPO (TRL under accelerate: DDP over gloo on CPU, FSDP2 on GPU) or PPO (FSDP2) on their share
of every step. Ray Train V2 creates the process group before `rank_main` runs, so each rank loads
the model only once the group exists. A dead rank fails the group; FailureConfig restarts it, and
every rank resumes from the run directory's last complete checkpoint (rank 0 rewinds what came after
it), so no step is lost or repeated. Rank 0 alone writes the run directory and logs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from rlcoder.config import RunConfig
from rlcoder.run_dir import RunDir, StageDir

MAX_RANK_FAILURES = 3


def train_on_ranks(
    cfg: RunConfig, algo: str, model_path: str, stage: StageDir, fleet: Any, scorer: Any
) -> None:
    """Run the RL stage on learner.num_processes ranks; returns when every rank has finished."""
    import ray.train
    from ray.train.torch import TorchTrainer

    on_gpu = cfg.rollout.gpus_per_worker > 0
    trainer = TorchTrainer(
        rank_main,
        train_loop_config={
            # the ranks' working directory is Ray's: every path they get is absolute
            "cfg": cfg.model_copy(update={"run_dir": str(Path(cfg.run_dir).resolve())}).model_dump(
                mode="json"
            ),
            "algo": algo,
            "model_path": str(Path(model_path).resolve()) if Path(model_path).exists() else model_path,
            "stage": stage.root.name,
            "fleet": fleet.handle,
            "reward_url": scorer.url,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.learner.num_processes,
            use_gpu=on_gpu,
            resources_per_worker=None if on_gpu else {"CPU": 1},
        ),
        run_config=ray.train.RunConfig(
            name=f"learner-{stage.root.name}",
            storage_path=str(stage.ray_train.resolve()),
            failure_config=ray.train.FailureConfig(max_failures=MAX_RANK_FAILURES),
            # the ranks print their own progress (rank 0); the driver's log stays readable
            worker_runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}},
        ),
    )
    trainer.fit()


def rank_main(config: dict[str, Any]) -> None:
    """One learner rank: the RL stage's setup rebuilt from the config (the tokenizer, problems and
    prompts are cheap and deterministic), the fleet's controller actor and a reward client of its own."""
    import torch

    from rlcoder.console import log_stderr
    from rlcoder.data.problems import load_problems
    from rlcoder.data.prompts import prompts_for
    from rlcoder.learn import dist
    from rlcoder.learn.loader import load_tokenizer
    from rlcoder.learn.step import RLSetup
    from rlcoder.run.services import reward_client, rollout_source
    from rollout.fleet_host import FleetClient

    cfg = RunConfig.model_validate(config["cfg"])
    torch.set_num_threads(cfg.learner.torch_threads or 1)
    model_path = config["model_path"]
    tokenizer = load_tokenizer(cfg, model_path)
    problems = {p.problem_id: p for p in load_problems(cfg.data.train_source, limit=cfg.data.limit)}
    prompts, _ = prompts_for(problems.values(), tokenizer, cfg.data)
    main = dist.is_main()
    log = log_stderr if main else _quiet
    fleet = FleetClient(config["fleet"])
    scorer = reward_client(cfg, config["reward_url"])
    source = rollout_source(cfg, fleet, scorer, problems, tokenizer, log)
    stage = RunDir(cfg.run_dir).stage(config["stage"])
    rl = RLSetup(cfg, stage, tokenizer, problems, prompts, fleet, source, scorer, log)
    pids = dist.gather_to_main(os.getpid())
    if pids is not None:  # which process is which rank, per (re)start: diagnostics and fault tests
        stage.ranks.parent.mkdir(parents=True, exist_ok=True)
        with stage.ranks.open("a") as f:
            f.write(json.dumps({"started": time.time(), "pids": pids}) + "\n")
        log(f"[{config['algo']}] {dist.world_size()} learner ranks, pids {pids}")
    if config["algo"] == "ppo":
        from rlcoder.learn.ppo import train_ppo

        train_ppo(rl, model_path)
    else:
        from rlcoder.learn.grpo import train_grpo

        train_grpo(rl, model_path)


def _quiet(line: str) -> None:
    """Ranks other than 0 print nothing (rank 0's line covers the whole step)."""
