"""Where a run's model comes from: `model.name_or_path` resolved to something transformers and vLLM
can load ("tiny" is built offline once and cached; a local directory; or a hub id)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from rlcoder.config import ConfigError

TINY = "tiny"


def cache_root() -> Path:
    return Path(os.environ.get("RLCODER_CACHE", Path.home() / ".cache" / "rlcoder"))


def _tiny_key() -> str:
    """Changes when the builder or its corpus changes, so a stale cached build is never reused."""
    from rlcoder.run import tiny_model

    digest = hashlib.sha256(Path(tiny_model.__file__).read_bytes())
    for text in tiny_model.corpus():
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def ensure_tiny_model(root: Path | None = None) -> Path:
    """Build the tiny model into the cache once (atomically: a crash leaves no half-built model)."""
    from rlcoder.run.tiny_model import build_tiny_model

    target = (root or cache_root()) / f"tiny-{_tiny_key()}"
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    try:
        build_tiny_model(staging)
        try:
            staging.rename(target)
        except OSError:  # built concurrently by another process: theirs is as good as ours
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model_path(name_or_path: str) -> str:
    """A path or hub id to load; ConfigError naming model.name_or_path when it cannot be."""
    if name_or_path == TINY:
        return str(ensure_tiny_model())
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.name_or_path: {path} has no config.json (not a Hugging Face model dir)")
        return str(path)
    looks_local = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1
    if looks_local:
        raise ConfigError(f"model.name_or_path: {name_or_path} does not exist")
    return name_or_path  # a hub id: transformers/vLLM resolve it (cached, or downloaded where allowed)
