"""Atomic on-disk cache shared by every chapter (features, trained weights, datasets).

Every entry is keyed by a dict of everything that determines its contents; the key is
hashed into the file name *and* stored inside the file, so a file whose stored key does not
match (or that cannot be read) is recomputed, never trusted. Writes go to a temporary file in
the same folder and are renamed into place, so an interrupted run never leaves a
half-written entry behind.

Keys are hashed exactly: tensors and arrays by their dtype, shape and bytes (never through
``str()``, which abbreviates large ones), and a dict with non-string keys keeps ``1`` apart from
``"1"``. Plain JSON keys (strings, numbers, lists, dicts of strings) hash as they always have.
A key holding a type the hash cannot represent exactly is a ``ValueError``.

The cache root is ``$BOOK_CACHE`` if set, else ``.cache/`` at the repository root; an empty
``BOOK_CACHE`` is an error (it would make the current directory the cache). Temporary files of
writers that were killed are removed by the next write to the same folder once they are an hour
old (:data:`STALE_TMP_SECONDS`).
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
from pathlib import Path, PurePath
from typing import Any, Callable

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


STALE_TMP_SECONDS = 3600
"""A writer's temporary file untouched this long is a leftover of a killed run (one entry is
written in seconds), and the next write to its folder removes it."""

_TAG = "__cache_"  # prefix of the tagged forms below; reserved, so no user key can mimic them


def cache_root() -> Path:
    """The cache folder (``$BOOK_CACHE`` or ``<repo>/.cache``), created if missing.

    Raises:
        ValueError: ``BOOK_CACHE`` is set but empty (which would make the current directory
            the cache root).
    """
    value = os.environ.get("BOOK_CACHE")
    if value is not None and not value.strip():
        raise ValueError(
            "BOOK_CACHE is set but empty, which would make the current directory the cache; "
            f"unset it to use {REPO_ROOT / '.cache'}, or set it to a folder (e.g. "
            f"BOOK_CACHE=/tmp/bookcache)"
        )
    root = Path(value) if value is not None else REPO_ROOT / ".cache"
    if root.exists() and not root.is_dir():
        raise ValueError(f"the cache root {root} (BOOK_CACHE) is a file, not a folder; point "
                         f"BOOK_CACHE at a folder")
    root.mkdir(parents=True, exist_ok=True)
    return root


def key_digest(key: dict[str, Any]) -> str:
    """A stable short hash of ``key``, exact in every value (see the module docstring).

    Raises:
        ValueError: ``key`` is not a dict, or holds a value the hash cannot represent exactly
            (the message names where in the key it sits).
    """
    return hashlib.sha256(_canonical_json(key).encode()).hexdigest()[:16]


def _canonical_json(key: dict[str, Any]) -> str:
    if not isinstance(key, dict):
        raise ValueError(f"key must be a dict naming everything that determines the entry; got "
                         f"{type(key).__name__}")
    return json.dumps(_canonical(key, "key"), sort_keys=True)


def _digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Any, where: str) -> Any:
    """``value`` as plain JSON that identifies it exactly (plain JSON values are unchanged)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()  # the exact Python number (np.int64(3) is 3, not the string "3")
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            reserved = [k for k in value if k.startswith(_TAG)]
            if reserved:
                raise ValueError(f"{where} uses the reserved key {reserved[0]!r}; rename it")
            return {k: _canonical(v, f"{where}[{k!r}]") for k, v in value.items()}
        # Non-string keys are kept with their type, so {1: ...} and {"1": ...} differ.
        items = [[_canonical(k, f"{where} key {k!r}"), _canonical(v, f"{where}[{k!r}]")]
                 for k, v in value.items()]
        return {f"{_TAG}items__": sorted(items, key=lambda kv: json.dumps(kv[0], sort_keys=True))}
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        return {f"{_TAG}tensor__": [str(t.dtype), list(t.shape), _digest_bytes(data)]}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise ValueError(f"{where} is an object array, which the cache key cannot hash "
                             f"exactly; "
                             "pass a list or a numeric array")
        a = np.ascontiguousarray(value)
        return {f"{_TAG}ndarray__": [a.dtype.str, list(a.shape), _digest_bytes(a.tobytes())]}
    if isinstance(value, (PurePath, torch.dtype, torch.device, np.dtype)):
        return str(value)  # exact and as before: a path and its string name the same entry
    hint = "sorted(...)" if isinstance(value, (set, frozenset)) else "a str, number, list or dict"
    raise ValueError(
        f"{where} is a {type(value).__name__}, which the cache key cannot hash exactly; convert "
        f"it to {hint} (dataclasses.asdict for a dataclass)"
    )


def entry_path(namespace: str, key: dict[str, Any], suffix: str = ".pt") -> Path:
    """Where the entry for ``key`` lives: ``<root>/<namespace>/<hash><suffix>``.

    Raises:
        ValueError: ``namespace`` not one plain folder name, ``suffix`` not like ``".pt"``, or a
            key :func:`key_digest` rejects.
    """
    if not isinstance(namespace, str) or not namespace or namespace in (".", "..") or any(
            c in namespace for c in "/\\\0"):
        raise ValueError(f"namespace must be one plain folder name such as 'features'; got "
                         f"{namespace!r}")
    if (not isinstance(suffix, str) or not suffix.startswith(".")
        or any(c in suffix for c in "/\\\0")):
        raise ValueError(f"suffix must be a file extension such as '.pt'; got {suffix!r}")
    digest = key_digest(key)
    folder = cache_root() / namespace
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{digest}{suffix}"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``.

    If ``write`` raises, the temporary file is removed and ``path`` is left untouched.
    """
    if not callable(write):
        raise ValueError(f"write must be a function of the temporary path; got "
                         f"{type(write).__name__}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path {path} is a folder; atomic_write replaces a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path, older_than: float = STALE_TMP_SECONDS) -> list[Path]:
    """Remove the ``.<name>.*.tmp`` files and folders of killed writers from ``folder``.

    Only temporaries untouched for ``older_than`` seconds (a folder counts from its newest
    content) are removed, so a writer still at work in another process keeps its file.

    Returns:
        The paths removed.
    """
    removed = []
    now = time.time()
    for tmp in Path(folder).glob(".*.tmp"):
        try:
            touched = tmp.lstat().st_mtime
            if tmp.is_dir() and not tmp.is_symlink():
                touched = max([touched] + [p.lstat().st_mtime for p in tmp.rglob("*")])
            if now - touched < older_than:
                continue
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
            removed.append(tmp)
        except OSError:  # removed by another process meanwhile, or not ours to remove
            continue
    return removed


def save_entry(namespace: str, key: dict[str, Any], value: Any) -> Path:
    """Store ``value`` (anything ``torch.save`` takes) under ``key``, atomically."""
    path = entry_path(namespace, key)
    try:
        atomic_write(path, lambda tmp: torch.save({"key": _normalise(key), "value": value}, tmp))
    except (pickle.PicklingError, AttributeError, TypeError) as err:  # nothing was stored
        raise ValueError(f"value for cache namespace {namespace!r} cannot be saved with "
                         f"torch.save ({type(err).__name__}: {err}); store tensors, numbers, "
                         "lists or dicts") from err
    return path


def load_entry(namespace: str, key: dict[str, Any],
               validate: Callable[[Any], bool] | None = None) -> Any | None:
    """The stored value for ``key``, or ``None`` if absent, unreadable, stored under another key,
    not of the ``{"key", "value"}`` structure :func:`save_entry` writes, or rejected by
    ``validate`` (a function of the value that returns False or raises for a value of the wrong
    structure)."""
    entry = _load(namespace, key, validate)
    return None if entry is _MISSING else entry


_MISSING = object()


def _load(namespace: str, key: dict[str, Any], validate: Callable[[Any], bool] | None) -> Any:
    path = entry_path(namespace, key)
    if not path.exists():
        return _MISSING
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # corrupt or truncated: recompute
        return _MISSING
    try:
        if not isinstance(blob, dict) or set(blob) != {"key", "value"}:
            return _MISSING
        if json.dumps(blob["key"], sort_keys=True) != _canonical_json(key):
            return _MISSING
        if validate is not None and not validate(blob["value"]):
            return _MISSING
    except Exception:  # a stored key or value of the wrong structure: recompute, never trust
        return _MISSING
    return blob["value"]


def cached(namespace: str, key: dict[str, Any], compute: Callable[[], Any],
           validate: Callable[[Any], bool] | None = None) -> Any:
    """Return the cached value for ``key``; compute, store and return it if missing or invalid.

    Args:
        namespace: sub-folder of the cache root.
        key: everything that determines the value (see :func:`key_digest`).
        compute: makes the value on a miss.
        validate: optional check of a value's structure (e.g. ``lambda v: "weights" in v``); a
            stored value that fails it (returns False or raises) is recomputed.

    Raises:
        ValueError: a key the hash cannot represent, or a freshly computed value that fails
            ``validate``.
    """
    if not callable(compute):
        raise ValueError(f"compute must be a function that makes the value; got "
                         f"{type(compute).__name__}")
    if validate is not None and not callable(validate):
        raise ValueError(f"validate must be None or a function of the value; got "
                         f"{type(validate).__name__}")
    value = _load(namespace, key, validate)
    if value is _MISSING:
        value = compute()
        if validate is not None:
            try:
                valid = bool(validate(value))
            except Exception as err:
                valid, why = False, f" ({type(err).__name__}: {err})"
            else:
                why = ""
            if not valid:
                raise ValueError(f"compute() for cache namespace {namespace!r} returned a value "
                                 f"that fails validate{why}; fix compute or the check (nothing "
                                 f"was stored)")
        save_entry(namespace, key, value)
    return value


def _normalise(key: dict[str, Any]) -> Any:
    return json.loads(_canonical_json(key))
