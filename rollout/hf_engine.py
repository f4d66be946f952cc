"""`RolloutEngine` on transformers `generate`: the portable fallback (any laptop, no vLLM), and the
reference implementation of completion logprobs that the post-sync check compares against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlcoder.records import EngineSpec, SamplingSpec
from rollout.engine import Sample
from rollout.sync import completion_logprobs
from rollout.weights import merge_adapter, read_adapter, unpack_state


class HfEngine:
    """A transformers causal LM held in this process. LoRA adapters are merged into a copy of the
    targeted weights (fine for the small models this engine is for; vLLM keeps them unmerged)."""

    def __init__(self, spec: EngineSpec) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.spec = spec
        self.device = torch.device("cuda" if spec.on_gpu else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(
            spec.model_path, trust_remote_code=spec.trust_remote_code
        )
        model = AutoModelForCausalLM.from_pretrained(
            spec.model_path, dtype=getattr(torch, spec.dtype), trust_remote_code=spec.trust_remote_code
        )
        self.model: Any = model.to(self.device).eval()
        self._adapter_base: dict[str, Any] | None = None  # pre-adapter values of the targeted weights
        eos = self.model.generation_config.eos_token_id
        self._eos = set(eos if isinstance(eos, list) else [eos]) - {None}
        pad = self.tokenizer.pad_token_id
        self._pad = pad if pad is not None else next(iter(self._eos))

    # -- sampling -----------------------------------------------------------------------------

    def generate(self, prompts: list[list[int]], sampling: SamplingSpec) -> list[list[Sample]]:
        import torch

        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        width = max(len(p) for p in prompts)
        # Left padding: every prompt ends where generation starts.
        ids = torch.tensor([[self._pad] * (width - len(p)) + list(p) for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        greedy = sampling.temperature == 0.0
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=not greedy,
                temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p,
                top_k=None,
                max_new_tokens=sampling.max_new_tokens,
                num_return_sequences=sampling.n,
                stop_strings=list(sampling.stop) or None,
                tokenizer=self.tokenizer,
                pad_token_id=self._pad,
                output_scores=True,  # after temperature/top_p: the distribution actually sampled
                return_dict_in_generate=True,
            )
        new = out.sequences[:, width:]
        # [rows, steps] logprob of each generated token under the processed scores
        scores = torch.stack(out.scores, dim=1).float().log_softmax(-1)
        chosen = scores.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        rows = [self._finish(new[r].tolist(), chosen[r].tolist(), sampling.stop) for r in range(len(new))]
        return [rows[i * sampling.n : (i + 1) * sampling.n] for i in range(len(prompts))]

    def _finish(self, ids: list[int], logprobs: list[float], stop: list[str]) -> Sample:
        """Cut a generated row where it ended (EOS kept, as vLLM does; text without the stop string)."""
        reason = "length"
        for i, tok in enumerate(ids):
            if tok in self._eos:
                ids, reason = ids[: i + 1], "stop"
                break
        text = self._decode(ids)
        hits = [(text.find(s), s) for s in stop if s and s in text]
        if hits:
            at, _ = min(hits)
            cut = next(k for k in range(1, len(ids) + 1) if any(s in self._decode(ids[:k]) for _, s in hits))
            ids, text, reason = ids[:cut], text[:at], "stop"
        return Sample(ids, logprobs[: len(ids)], text, reason)

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def score_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        return completion_logprobs(self.model, prompt_ids, completion_ids)

    # -- weights --------------------------------------------------------------------------------

    def load_weights(self, state: Mapping[str, Any]) -> None:
        import torch

        tensors = unpack_state(state)
        known = set(self.model.state_dict())
        unknown = sorted(set(tensors) - known)
        # Tied weights (lm_head = embed_tokens) appear once in named_parameters.
        missing = sorted(set(dict(self.model.named_parameters())) - set(tensors))
        if unknown or missing:
            raise ValueError(
                f"state dict does not fit the model: unknown {unknown[:3]}, missing {missing[:3]}"
            )
        with torch.no_grad():
            self.model.load_state_dict(tensors, strict=False)
        self._adapter_base = None

    def load_adapter(self, path: str, version: int) -> None:
        import torch

        adapter = read_adapter(path)
        params = dict(self.model.named_parameters())
        if self._adapter_base is None:
            self._adapter_base = {n: params[n].detach().clone() for n in adapter.pairs if n in params}
        elif set(adapter.pairs) - set(self._adapter_base):
            # A new adapter targets other modules: restore, then keep the new targets' base values too.
            self._restore_base()
            self._adapter_base.update({n: params[n].detach().clone() for n in adapter.pairs if n in params})
        self._restore_base()
        merged = merge_adapter(self._adapter_base, adapter)
        with torch.no_grad():
            for name, value in merged.items():
                params[name].copy_(value)

    def _restore_base(self) -> None:
        import torch

        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in (self._adapter_base or {}).items():
                params[name].copy_(value)

    def close(self) -> None:
        self.model = None
