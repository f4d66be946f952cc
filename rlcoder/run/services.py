"""Infrastructure a run and an eval share: Ray (local or a cluster), the reward service (a URL, a
local subprocess, or a Ray actor on the cluster) and the rollout fleet, as context managers that
end only what they started."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rlcoder.config import RunConfig
from rlcoder.console import Log, is_verbose


@contextmanager
def ray_session(cfg: RunConfig) -> Iterator[None]:
    """Join the configured cluster (or the one a `ray job submit` runs in), else start a local
    Ray on loopback; shut down only a Ray we started."""
    import ray

    if ray.is_initialized():
        yield
        return
    # Ray's own INFO/WARNING lines (the token-auth notice, "Started a local Ray instance") only with --verbose
    level = logging.INFO if is_verbose() else logging.ERROR
    if joins_cluster(cfg):
        address = cfg.ray.address or os.environ["RAY_ADDRESS"]
        ray.init(address=address, log_to_driver=True, logging_level=level)
    else:
        ray.init(
            num_cpus=cfg.ray.num_cpus,
            include_dashboard=cfg.ray.include_dashboard,
            _node_ip_address="127.0.0.1",
            log_to_driver=True,
            logging_level=level,
        )
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def reward_scorer(cfg: RunConfig) -> Iterator[Any]:
    """A RewardClient for the configured service URL; else for a service this run starts: on this
    machine when Ray is local (or not used at all: replay), as a Ray actor on the cluster when the
    run joined one."""
    r = cfg.reward

    def client(url: str) -> Any:
        return reward_client(cfg, url)

    if r.url:
        yield client(r.url)
    elif joins_cluster(cfg):
        import ray

        from rlcoder.run.reward_actor import start_reward_actor

        actor, url = start_reward_actor(r.workers, r.port, num_cpus=r.actor_cpus)
        try:
            yield client(url)
        finally:
            ray.get(actor.stop.remote())
            ray.kill(actor)
    else:
        from reward.service.launch import RewardService

        with RewardService(host=r.host, port=r.port, workers=r.workers) as service:
            yield client(service.url)


def reward_client(cfg: RunConfig, url: str) -> Any:
    """A client of the reward service at `url`, as the config says (each learner rank makes its own)."""
    from reward.service.client import RewardClient

    r = cfg.reward
    return RewardClient(
        url, max_concurrency=r.max_concurrency, retries=r.retries, request_timeout_s=r.request_timeout_s
    )


def joins_cluster(cfg: RunConfig) -> bool:
    """True when the run joins an existing Ray cluster (configured, or a `ray job submit`)."""
    return bool(cfg.ray.address or os.environ.get("RAY_ADDRESS"))


@contextmanager
def rollout_fleet(cfg: RunConfig, model_path: str) -> Iterator[Any]:
    """The fleet in this process (one learner process), or behind one controller actor that every
    learner rank reaches (learner.num_processes > 1: a FleetClient, whose `handle` the ranks get)."""
    from rlcoder.specs import fleet_spec

    if cfg.learner.num_processes > 1:
        from rollout.fleet_host import FleetClient, start_fleet_host, stop_fleet_host

        handle = start_fleet_host(fleet_spec(cfg, model_path))
        try:
            yield FleetClient(handle)
        finally:
            stop_fleet_host(handle)
        return
    from rollout.fleet import RolloutFleet

    fleet = RolloutFleet(fleet_spec(cfg, model_path))
    try:
        yield fleet
    finally:
        fleet.shutdown()


def rollout_source(
    cfg: RunConfig, fleet: Any, scorer: Any, problems: dict[str, Any], tokenizer: Any, log: Log | None = None
) -> Any:
    """What the RL step and eval sample from: the fleet itself, or (rollout.turns > 1) multi-turn
    episodes with execution feedback over it."""
    if cfg.rollout.turns == 1:
        return fleet
    from rlcoder.env.episodes import FeedbackEpisodes

    return FeedbackEpisodes(fleet, scorer, problems, tokenizer, cfg, log)
