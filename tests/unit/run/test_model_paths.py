"""Model path resolution: 'tiny' builds once into the cache; bad paths are config errors."""

from __future__ import annotations

import pytest

from rlcoder.config import ConfigError
from rlcoder.run.model_paths import ensure_tiny_model, resolve_model_path
from rlcoder.run.tiny_model import fingerprint


def test_tiny_is_built_once_and_reused(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("RLCODER_CACHE", str(tmp_path))
    first = resolve_model_path("tiny")
    assert fingerprint(first) == fingerprint(tiny_model_dir)
    mtime = (tmp_path / first.split("/")[-1] / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model(tmp_path) == ensure_tiny_model()
    assert (tmp_path / first.split("/")[-1] / "model.safetensors").stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tiny-")]  # no staging left


def test_paths_and_hub_ids(tmp_path, tiny_model_dir):
    assert resolve_model_path(str(tiny_model_dir)) == str(tiny_model_dir)
    assert resolve_model_path("Qwen/Qwen3-8B") == "Qwen/Qwen3-8B"
    with pytest.raises(ConfigError, match=r"model\.name_or_path: \./nope does not exist"):
        resolve_model_path("./nope")
    with pytest.raises(ConfigError, match=r"has no config\.json"):
        resolve_model_path(str(tmp_path))
