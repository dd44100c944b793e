"""Atomic on-disk cache shared by every chapter (features, trained weights, datasets).

Every entry is keyed by a dict of everything that determines its contents; the key is
hashed into the file name *and* stored inside the file, so a file whose stored key does not
match (or that cannot be read) is recomputed, never trusted. Writes go to a temporary file in
the same folder and are renamed into place, so an interrupted run never leaves a
half-written entry behind.

The cache root is ``$BOOK_CACHE`` if set, else ``.cache/`` at the repository root.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_root() -> Path:
    """The cache folder (``$BOOK_CACHE`` or ``<repo>/.cache``), created if missing."""
    root = Path(os.environ.get("BOOK_CACHE", REPO_ROOT / ".cache"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def key_digest(key: dict[str, Any]) -> str:
    """A stable short hash of a JSON-serialisable key."""
    blob = json.dumps(key, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def entry_path(namespace: str, key: dict[str, Any], suffix: str = ".pt") -> Path:
    """Where the entry for ``key`` lives: ``<root>/<namespace>/<hash><suffix>``."""
    folder = cache_root() / namespace
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key_digest(key)}{suffix}"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``.

    If ``write`` raises, the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_entry(namespace: str, key: dict[str, Any], value: Any) -> Path:
    """Store ``value`` (anything ``torch.save`` takes) under ``key``, atomically."""
    path = entry_path(namespace, key)
    atomic_write(path, lambda tmp: torch.save({"key": _normalise(key), "value": value}, tmp))
    return path


def load_entry(namespace: str, key: dict[str, Any]) -> Any | None:
    """The stored value for ``key``, or ``None`` if absent, unreadable or stored under another key."""
    path = entry_path(namespace, key)
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # corrupt or truncated: recompute
        return None
    if not isinstance(blob, dict) or blob.get("key") != _normalise(key):
        return None
    return blob["value"]


def cached(namespace: str, key: dict[str, Any], compute: Callable[[], Any]) -> Any:
    """Return the cached value for ``key``; compute, store and return it if missing or invalid."""
    value = load_entry(namespace, key)
    if value is None:
        value = compute()
        save_entry(namespace, key, value)
    return value


def _normalise(key: dict[str, Any]) -> Any:
    return json.loads(json.dumps(key, sort_keys=True, default=str))
