"""Loading models from the hub (the ``full`` scale) or from local folders (offline), with clear
errors.

Hub names need network access; offline they fail with :class:`ModelUnavailableError`, which names
the model and says to use a network or a local folder. Whether the hub is reachable is checked once
per process (:func:`hub_reachable`, a few seconds at most); without it the loaders run in offline
mode, so weights already in the local Hugging Face cache still load and anything else fails in
seconds instead of after the hub client's retries. ``HF_HUB_OFFLINE=1`` skips the check. A name
that is not a valid hub repo id is a ``ValueError`` saying so. Local folders (``save_pretrained``
or :func:`save_timm_model`) always load offline; the tests use tiny models saved that way.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch


class ModelUnavailableError(OSError):
    """A hub model could not be loaded: it needs network access (or pass a local folder)."""


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch.device; ``None`` means CUDA if available, else CPU.

    Raises:
        ValueError: a device torch does not know (the message names it).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda'; got {device!r} "
                         f"({err})") from None


_REACHABLE: dict[str, bool] = {}  # hub host -> answered, checked once per process
PROBE_SECONDS = 3.0


def hub_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Whether the hub's host (``$HF_ENDPOINT`` or huggingface.co) accepts a TCP connection.

    Checked once per process and remembered. The probe runs in a daemon thread, so a hanging
    DNS resolver costs at most ``timeout`` + 1 seconds. With an HTTP(S) proxy configured the
    probe cannot see the hub, so the hub counts as reachable and the hub client decides.
    """
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return True
    if host not in _REACHABLE:
        port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
        answered: list[bool] = []

        def probe() -> None:
            try:
                socket.create_connection((host, port), timeout=timeout).close()
                answered.append(True)
            except OSError:
                answered.append(False)

        worker = threading.Thread(target=probe, daemon=True)
        worker.start()
        worker.join(timeout + 1.0)
        _REACHABLE[host] = bool(answered and answered[0])
    return _REACHABLE[host]


def _offline_error(kind: str, name: str, err: BaseException) -> ModelUnavailableError:
    cause = f"Underlying error: {type(err).__name__}: {str(err)[:300]}"
    if not _hub_offline() and hub_reachable() and not _is_network_error(err):
        return ModelUnavailableError(
            f"Could not load the {kind} model {name!r} from the hub, which is reachable: check "
            f"that the id exists and is public (gated models need `huggingface-cli login`). "
            f"{cause}")
    why = ("HF_HUB_OFFLINE is set" if _hub_offline()
           else "no network connection to the hub was found")
    return ModelUnavailableError(
        f"Could not load the {kind} model {name!r}: it needs network access to download from the "
        f"hub, but {why} and it is not in the local Hugging Face cache. Fix: run where the hub is "
        f"reachable (the `full` scale), download it there once into the cache (`huggingface-cli "
        f"download {name}`), or pass a local path (a save_pretrained / save_timm_model folder). "
        f"{cause}")


def check_repo_id(name: str) -> None:
    """``ValueError`` if ``name`` is not a valid hub repo id (``"gpt2"``, ``"org/model"``)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError as err:
        raise ValueError(f"{name!r} is not a valid hub repo id ({err}); pass 'name' or "
                         "'org/name', or an existing local folder") from None


def _hub_offline() -> bool:
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags)


@contextlib.contextmanager
def _offline_env_respected():
    """huggingface_hub reads HF_HUB_OFFLINE once at import; honour a value set later (hub
    weights already in the local HF cache still load, anything else fails fast)."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - transformers and timm depend on it
        yield
        return
    old = constants.HF_HUB_OFFLINE
    # Without a network, offline mode fails at once (cached weights still load) where the client
    # would otherwise retry with back-off for tens of seconds.
    constants.HF_HUB_OFFLINE = old or _hub_offline() or not hub_reachable()
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def save_timm_model(model: torch.nn.Module, directory: str | Path,
                    model_args: dict | None = None) -> Path:
    """Save a timm model to ``directory`` (``config.json`` + ``model.safetensors``), loadable
    offline with :func:`load_timm_model`. ``model_args`` are the ``create_model`` kwargs (e.g.
    depth)."""
    from timm.models import save_for_hf

    directory = Path(directory)
    save_for_hf(model, str(directory), model_args=model_args, safe_serialization=True)
    return directory


def load_timm_model(name_or_path: str | Path, pretrained: bool = True,
                    **kwargs: Any) -> torch.nn.Module:
    """A timm model in eval mode, from a hub name or a local folder.

    Args:
        name_or_path: a timm name (``"vit_base_patch16_224.augreg_in21k"``; with ``pretrained``
            this downloads weights, so it needs network access) or a folder written by
            :func:`save_timm_model` / ``timm.models.save_for_hf`` (works offline).
        pretrained: load pretrained weights (ignored for a folder, which always has weights).
        **kwargs: passed to ``timm.create_model`` (e.g. ``num_classes=0``).

    Raises:
        ValueError: unknown architecture name, or a path that is not a model folder.
        ModelUnavailableError: (an OSError) the weights could not be fetched (no network).
    """
    import timm

    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"{path} is not a timm model folder (no config.json); save one with "
                             f"save_timm_model.")
        return timm.create_model(f"local-dir:{path.resolve()}", pretrained=True, **kwargs).eval()
    if _looks_like_path(name):
        raise ValueError(f"No model folder at {name!r}; pass an existing folder or a timm model "
                         f"name.")
    arch = name.split(".")[0].removeprefix("hf-hub:").removeprefix("hf_hub:")
    if name.startswith(("hf-hub:", "hf_hub:")):
        check_repo_id(name.split(":", 1)[1].split("@")[0])
    elif not timm.is_model(arch):
        raise ValueError(f"Unknown timm model {name!r}; see timm.list_models('{arch[:8]}*').")
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs).eval()
    try:
        with _offline_env_respected():
            return timm.create_model(name, pretrained=True, **kwargs).eval()
    except (OSError, ConnectionError, RuntimeError, ValueError) as err:
        if isinstance(err, ModelUnavailableError):
            raise
        if isinstance(err, (RuntimeError, ValueError)) and not _is_network_error(err):
            raise
        raise _offline_error("timm", name, err) from err


def _is_network_error(err: BaseException) -> bool:
    """True if ``err`` (or its cause chain) looks like a download/connection failure."""
    seen = 0
    while err is not None and seen < 10:
        text = f"{type(err).__name__} {err}".lower()
        if any(w in text for w in ("connect", "offline", "network", "resolve", "timeout", "hub",
                                   "download",
                                   "localentrynotfound", "max retries", "name or service")):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def load_language_model(
    name_or_path: str | Path,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    causal_lm: bool = False,
):
    """A Hugging Face model (``AutoModel``, no LM head) and its tokenizer, from a hub name or
    folder.

    Args:
        name_or_path: a hub id (``"gpt2"``, ``"huggyllama/llama-7b"``: needs network access, the
            ``full`` scale) or a ``save_pretrained`` folder holding model and tokenizer (offline).
        dtype: weight dtype (None: as stored).
        device: where to put the model (None: CUDA if available, else CPU).
        causal_lm: load ``AutoModelForCausalLM`` (with its LM head, for training and
            log-probabilities) instead of the bare ``AutoModel``.

    Returns:
        ``(model, tokenizer)``, the model in eval mode; a missing pad token is set to EOS.

    Raises:
        ValueError: a path-like name that is not a folder.
        ModelUnavailableError: (an OSError) a hub model could not be fetched (no network).
    """
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    model_class = AutoModelForCausalLM if causal_lm else AutoModel
    name = str(name_or_path)
    path = Path(name).expanduser()
    kwargs: dict[str, Any] = {} if dtype is None else {"dtype": dtype}
    if path.is_dir():
        model = model_class.from_pretrained(path, local_files_only=True, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    else:
        if _looks_like_path(name):
            raise ValueError(f"No model folder at {name!r}; pass an existing save_pretrained "
                             f"folder or a hub id.")
        check_repo_id(name)
        try:
            with _offline_env_respected():
                model = model_class.from_pretrained(name, **kwargs)
                tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ConnectionError, ValueError) as err:
            if isinstance(err, ValueError) and not _is_network_error(err):
                raise
            raise _offline_error("language", name, err) from err
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(resolve_device(device)).eval(), tokenizer
