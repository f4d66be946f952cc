"""The learner alone on synthetic rollouts: PPO updates (the rollout-time pass, then minibatch epochs
under FSDP2 with N > 1 ranks) for one global batch of given prompt/completion lengths, at each world
size in --ranks, in one run: tokens/s per rank, the throughput ratio against 1 rank, and each rank's
peak memory against the memory plan's prediction (rlcoder/run/memory_plan.py) for the same config.

    PYTHONPATH=. python bench/learner_bench.py --ranks 1,2                    # tiny model, CPU, gloo
    PYTHONPATH=. python bench/learner_bench.py --ranks 1 --model qwen2-0.5b   # random-init shape, GPU

Ranks are torch.multiprocessing processes on this machine (gloo on CPU, nccl on GPU), as Ray Train
starts them; no fleet and no reward service. CPU peak memory is the rise of the process's peak RSS
(VmHWM, reset after the imports) over its RSS before the model is built; GPU peak memory is
torch.cuda.max_memory_allocated. MFU (GPU only) counts 6 x params x tokens per update pass and
2 x params x tokens for the rollout-time pass, against --peak-tflops.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

SHAPES = {  # random-init Qwen2 shapes for a GPU
    "qwen2-0.5b": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                   "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936},
    "qwen2-1.5b": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                   "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936},
}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--ranks", default="1,2", help="world sizes to run, comma-separated (the first is the base)"
    )
    p.add_argument("--model", default="tiny", help="'tiny', a model dir, or " + ", ".join(SHAPES))
    p.add_argument("--completions", type=int, default=16, help="completions in the global batch")
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--completion-tokens", type=int, default=128)
    p.add_argument("--device-batch", type=int, default=2, help="completions per forward/backward")
    p.add_argument("--epochs", type=int, default=1, help="PPO epochs per batch")
    p.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    p.add_argument("--dtype", default=None, help="float32 on CPU, bfloat16 on GPU by default")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="GPU dense bf16 peak (H100/H200: 989)")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    return p.parse_args(argv)


def overrides(args: argparse.Namespace, world: int, on_gpu: bool) -> list[str]:
    return [
        "stages=[ppo]",
        "learner.algo=ppo",
        f"learner.num_processes={world}",
        f"learner.prompts_per_step={args.completions}",
        "rollout.samples_per_prompt=1",
        f"learner.completions_per_device_batch={args.device_batch}",
        f"learner.ppo.epochs={args.epochs}",
        "learner.ppo.kl_coef=0",
        f"data.max_prompt_tokens={args.prompt_tokens}",
        f"rollout.max_new_tokens={args.completion_tokens}",
        f"model.dtype={args.dtype or ('bfloat16' if on_gpu else 'float32')}",
        f"model.max_model_len={args.prompt_tokens + args.completion_tokens}",
        f"rollout.gpus_per_worker={1 if on_gpu else 0}",
    ]


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _synthetic(args: argparse.Namespace, vocab: int) -> list:
    import torch

    from rlcoder.records import Rollout

    gen = torch.Generator().manual_seed(0)
    out = []
    for i in range(args.completions):
        prompt = torch.randint(10, vocab, (args.prompt_tokens,), generator=gen).tolist()
        completion = torch.randint(10, vocab, (args.completion_tokens,), generator=gen).tolist()
        lps = [-5.0] * args.completion_tokens
        out.append(Rollout(f"1-p{i}-0", f"p{i}", 0, "", prompt, completion, lps, "", "length", 0))
    return out


def _model_dir(args: argparse.Namespace, root: Path) -> str:
    if args.model == "tiny":
        from rlcoder.run.model_paths import ensure_tiny_model

        return str(ensure_tiny_model())
    if args.model not in SHAPES:
        return args.model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    target = root / args.model
    if not target.is_dir():
        config = Qwen2Config(**SHAPES[args.model], tie_word_embeddings=True, max_position_embeddings=8192)
        Qwen2ForCausalLM(config).save_pretrained(target)
    return str(target)


def _warm_imports() -> None:
    """Import (and touch) what the learner uses, so the memory baseline holds the libraries' code and
    the measured rise is the learner's tensors and the allocator's slack."""
    import peft  # noqa: F401
    import torch
    from torch.distributed.fsdp import fully_shard  # noqa: F401
    from transformers import AutoModelForCausalLM, Qwen2ForCausalLM, get_scheduler  # noqa: F401

    x = torch.randn(64, 64, requires_grad=True)
    (x @ x).log_softmax(-1).sum().backward()


def rank_body(rank: int, world: int, port: int, args: argparse.Namespace, model_dir: str, out: str) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    on_gpu = torch.cuda.is_available()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))  # fmt: skip
    if on_gpu:
        torch.cuda.set_device(rank)
    if world > 1:
        dist.init_process_group("nccl" if on_gpu else "gloo", rank=rank, world_size=world)
    from rlcoder.config import load_config
    from rlcoder.learn.dist import local_slice
    from rlcoder.learn.ppo import make_experience, ppo_update
    from rlcoder.learn.ppo_model import load_learner

    cfg = load_config(None, overrides(args, world, on_gpu))
    _warm_imports()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    base_kb = _rss_kb("VmRSS")
    learner = load_learner(cfg, model_dir, None, pad_id=0)
    vocab = learner.policy.config.vocab_size
    rollouts = local_slice(_synthetic(args, vocab))
    rewards = local_slice([float(i % 2) for i in range(args.completions)])
    times = []
    for step in range(args.steps + 1):
        if on_gpu:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        exp, _ = make_experience(learner, rollouts, rewards)
        ppo_update(learner, exp, step=step + 1)
        if on_gpu:
            torch.cuda.synchronize()
        if step:  # the first step warms up
            times.append(time.perf_counter() - t0)
    tokens = len(rollouts) * (args.prompt_tokens + args.completion_tokens)
    seconds = sum(times) / len(times)
    peak = torch.cuda.max_memory_allocated() if on_gpu else (_rss_kb("VmHWM") - base_kb) * 1024
    params = sum(p.numel() for p in learner.policy.parameters()) * (world if world > 1 else 1)
    flops = (2 + 6 * args.epochs) * params * tokens / seconds  # a sharded numel is 1/world of it
    result = {"rank": rank, "tokens_per_s": tokens / seconds, "step_s": seconds, "peak_bytes": peak,
              "mfu": flops / (args.peak_tflops * 1e12) if on_gpu else None}  # fmt: skip
    Path(out, f"{rank}.json").write_text(json.dumps(result))
    if world > 1:
        dist.destroy_process_group()


# The CPU memory pass: large blocks straight from mmap and back to the OS when freed, so the peak RSS
# follows the live tensors rather than glibc's arena cache (slower: the timed pass runs without it).
MEMORY_PASS_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def run_world(
    args: argparse.Namespace, world: int, model_dir: str, env: dict[str, str] | None = None
) -> list[dict]:
    import torch.multiprocessing as mp

    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})  # the ranks inherit it at spawn
    try:
        return _spawn(mp, args, world, model_dir)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _spawn(mp: object, args: argparse.Namespace, world: int, model_dir: str) -> list[dict]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(rank_body, args=(world, port, args, model_dir, out), nprocs=world, join=True)  # type: ignore[attr-defined]
        return [json.loads(Path(out, f"{r}.json").read_text()) for r in range(world)]


def planned_bytes(args: argparse.Namespace, world: int, model_dir: str, on_gpu: bool) -> float:
    from rlcoder.config import load_config
    from rlcoder.run.memory_plan import memory_plan, model_shape

    cfg = load_config(None, overrides(args, world, on_gpu))
    shape = model_shape("tiny" if args.model == "tiny" else model_dir)
    assert shape is not None
    return memory_plan(cfg, shape).learner_b


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    worlds = [int(w) for w in args.ranks.split(",")]
    on_gpu = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = _model_dir(args, Path(tmp))
        figures = {}
        for world in worlds:
            ranks = run_world(args, world, model_dir)
            if not on_gpu:
                memory_args = argparse.Namespace(**{**vars(args), "steps": 1})
                for r, m in zip(
                    ranks, run_world(memory_args, world, model_dir, MEMORY_PASS_ENV), strict=True
                ):
                    r["peak_bytes"] = m["peak_bytes"]
            plan = planned_bytes(args, world, model_dir, on_gpu)
            per_rank = sum(r["tokens_per_s"] for r in ranks) / world
            peak = max(r["peak_bytes"] for r in ranks)
            figures[world] = {"tokens_per_s_per_rank": per_rank, "tokens_per_s": per_rank * world,
                              "step_s": max(r["step_s"] for r in ranks), "peak_bytes": peak,
                              "planned_bytes": plan, "peak_over_plan": peak / plan,
                              "mfu": ranks[0]["mfu"]}  # fmt: skip
            mfu = f", MFU {ranks[0]['mfu']:.1%}" if ranks[0]["mfu"] is not None else ""
            print(
                f"learner bench: {world} rank(s): {per_rank:.0f} tokens/s per rank, "
                f"{per_rank * world:.0f} in all, "
                f"step {figures[world]['step_s']:.2f}s; peak {peak / 1e6:.0f} MB per rank vs plan "
                f"{plan / 1e6:.0f} MB ({peak / plan:.0%}){mfu}"
            )
    base = worlds[0]
    for world in worlds[1:]:
        ratio = figures[world]["tokens_per_s"] / figures[base]["tokens_per_s"]
        per_rank = figures[world]["tokens_per_s_per_rank"] / figures[base]["tokens_per_s_per_rank"]
        print(
            f"learner bench: ratio {world} ranks / {base} rank(s) = {ratio:.2f}x tokens/s "
            f"(per rank {per_rank:.2f}x)"
        )
        figures[world]["ratio"] = ratio
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "figures": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
