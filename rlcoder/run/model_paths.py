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


def checked_model_path(name_or_path: str) -> str:
    """resolve_model_path, and a hub id checked to be loadable (check_hub_model): the preflight's form."""
    resolved = resolve_model_path(name_or_path)
    if resolved == name_or_path and not Path(resolved).expanduser().exists():
        check_hub_model(resolved)
    return resolved


def check_hub_model(repo: str, timeout_s: float = 10.0) -> None:
    """A hub id must be in the local cache or answer on the hub, checked in seconds (transformers
    would retry for a minute, then fail with a long traceback). Offline (HF_HUB_OFFLINE) a model that
    is not cached is refused at once."""
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo, "config.json"), str):
        return
    if constants.HF_HUB_OFFLINE:
        raise ConfigError(
            f"model.name_or_path: {repo} is not in the Hugging Face cache and HF_HUB_OFFLINE is set "
            "(download it first, or use a local model directory or 'tiny')"
        )
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(repo, timeout=timeout_s)
    except Exception as exc:  # network, auth and not-found errors all end the same way
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(
            f"model.name_or_path: {repo} cannot be reached on the Hugging Face hub ({type(exc).__name__}: "
            f"{first}); without a network use a local model directory or 'tiny'"
        ) from None
