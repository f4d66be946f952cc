"""The model card of a run's final model (README.md in its folder, the Hugging Face convention): the base
model, the data, the recipe and the measured results; and the push of that folder to the hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcoder.config import RunConfig
from rlcoder.console import pct

CARD = "README.md"


def model_card(cfg: RunConfig, results: dict[str, Any]) -> str:
    """Markdown with a YAML header (base_model, tags) that the hub reads, then what trained the model."""
    rl = [s for s in cfg.stages if s != "sft"]
    lines = [
        "---",
        f"base_model: {cfg.model.name_or_path}",
        "library_name: transformers",
        "tags: [rlcoder, code, reinforcement-learning, " + ", ".join(cfg.stages) + "]",
        "---",
        "",
        f"# {Path(cfg.run_dir).name}",
        "",
        f"Post-trained from `{cfg.model.name_or_path}` by rlcoder: stages {' -> '.join(cfg.stages)}.",
        "",
        "## Data",
        "",
    ]
    if "sft" in cfg.stages:
        stages = ", ".join(f"`{s}`" for s in cfg.learner.sft.stages)
        lines.append(f"- SFT stages: {stages} ({cfg.learner.sft.epochs:g} epochs, lr {cfg.learner.sft.lr:g})")
    if rl:
        lines.append(
            f"- RL ({rl[0]}): `{cfg.data.train_source}`, {cfg.learner.steps} steps of "
            f"{cfg.learner.prompts_per_step} prompts x {cfg.rollout.samples_per_prompt} samples, "
            f"lr {cfg.learner.lr:g}, reward from executed unit tests ({cfg.reward.mode})"
        )
    if cfg.data.limit:
        lines.append(f"- only the first {cfg.data.limit} problems of each source (data.limit)")
    lines += ["", "## Results", ""]
    before, after = results.get("before") or {}, results.get("after") or {}
    if before and after:
        lines += [
            f"Pass rate on the train problems ({cfg.eval.samples_per_problem} samples per problem, "
            f"temperature {cfg.rollout.temperature}):",
            "",
            "| | pass rate | solved |",
            "|---|---|---|",
            *(
                f"| {when} | {pct(r['pass_rate'])} | {r.get('solved', '-')}/{r.get('problems', '-')} |"
                for when, r in (("before RL", before), ("after RL", after))
            ),
        ]
    else:
        lines.append("No evaluation was run (eval.around_rl is off, or no RL stage).")
    lines += ["", "The run's resolved config is `config.resolved.yaml` in its run directory.", ""]
    return "\n".join(lines)


def write_card(folder: Path, cfg: RunConfig, results: dict[str, Any]) -> Path:
    path = Path(folder) / CARD
    path.write_text(model_card(cfg, results), encoding="utf-8")
    return path


def push_to_hub(folder: Path, repo_id: str) -> str:
    """Upload the final model folder (with its card) to `repo_id`; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="rlcoder: final model")
    return str(info)
