"""Per-layer features from real model families, the way PRH extracts them.

* Vision (timm ViTs): :func:`extract_vision_features` -> ``[N, L, D]``, the CLS token (or the mean
  of patch tokens) of every block's output (the residual stream after the block, before the final
  norm, as PRH's ``blocks.{i}.add_1``), with the model's own preprocessing.
* Any model: :func:`extract_module_outputs` -> a list of ``[N, D_l]`` (forward hooks on named
  modules; CNN maps are global-average pooled).
* Language (Hugging Face): :func:`extract_language_features` -> ``[N, L+1, D]``, every hidden
  state (embeddings first) averaged over non-padding tokens.
* Loading (re-exported from :mod:`helpers.hub`): :func:`load_timm_model`,
  :func:`load_language_model` (hub names need network: the ``full`` scale; local folders work
  offline) and :func:`load_text_encoder` (offline encoders installed from PyPI, see
  :mod:`helpers.text_encoders`).
* :func:`cached_features`: features stored in the shared atomic cache, validated on load.

Layer selection follows timm's ``indices`` convention: ``None`` = all blocks, an int ``n`` = the
last ``n``, a list = those blocks (negative counts from the end).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from helpers import cache
from helpers.hub import (ModelUnavailableError, load_language_model, load_timm_model,
                         resolve_device, save_timm_model)
from helpers.text_encoders import (TEXT_ENCODERS, TextEncoderNotInstalledError, load_text_encoder,
                                   text_encoder_dir)

__all__ = [
    "ModelUnavailableError",
    "TEXT_ENCODERS",
    "TextEncoderNotInstalledError",
    "cached_features",
    "extract_language_features",
    "extract_module_outputs",
    "extract_vision_features",
    "load_language_model",
    "load_text_encoder",
    "load_timm_model",
    "masked_mean",
    "normalize_indices",
    "preprocess_images",
    "resolve_device",
    "save_timm_model",
    "text_encoder_dir",
    "vision_data_config",
]

VISION_POOLS = ("cls", "mean", "both")
MODULE_POOLS = ("auto", "gap", "cls", "mean", "flatten", "none")


# --------------------------------------------------------------------------- small utilities
def normalize_indices(indices: int | Sequence[int] | None, num_blocks: int) -> list[int]:
    """Block indices in timm's convention, as sorted non-negative ints.

    ``None`` = all ``num_blocks``; an int ``n`` = the last ``n``; a list = those blocks, negatives
    counting from the end. Raises ValueError for an index out of ``[-num_blocks, num_blocks)``.
    """
    if indices is None:
        return list(range(num_blocks))
    if isinstance(indices, bool) or not isinstance(indices, (int, Sequence)):
        raise ValueError(f"indices must be None, an int or a list of ints, got "
                         f"{type(indices).__name__}.")
    if isinstance(indices, int):
        if not 1 <= indices <= num_blocks:
            raise ValueError(f"indices={indices} asks for the last {indices} blocks; pass "
                             f"1..{num_blocks}.")
        return list(range(num_blocks - indices, num_blocks))
    out = []
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, int):
            raise ValueError(f"indices must hold ints, got {i!r}.")
        if not -num_blocks <= i < num_blocks:
            raise ValueError(f"Block index {i} is out of range; this model has {num_blocks} "
                             f"blocks (valid: {-num_blocks}..{num_blocks - 1}).")
        out.append(i % num_blocks)
    if not out:
        raise ValueError("indices is an empty list; pass None for all blocks.")
    return sorted(set(out))


def _batches(n: int, batch_size: int):
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


class _StopForward(Exception):
    """Raised by a hook after the deepest requested block, to skip the rest of the forward."""


# --------------------------------------------------------------------------- vision preprocessing
def vision_data_config(model: torch.nn.Module) -> dict[str, Any]:
    """The model's own eval preprocessing: timm ``resolve_data_config(model=model)``.

    If the model was built with a fixed ``img_size`` other than its pretrained config's (e.g. a
    tiny test ViT at 32 px), the input size is set to what the model accepts.
    """
    from timm.data import resolve_data_config

    cfg = dict(resolve_data_config(model=model))
    pe = getattr(model, "patch_embed", None)
    img_size = getattr(pe, "img_size", None)
    dynamic = getattr(pe, "dynamic_img_size", False) or getattr(model, "dynamic_img_size", False)
    if img_size is not None and not dynamic and tuple(cfg["input_size"][1:]) != tuple(img_size):
        cfg["input_size"] = (cfg["input_size"][0], *img_size)
    return cfg


def preprocess_images(images: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
    """timm's eval transform in torch, batched: ``[N, 3, H, W]`` in [0, 1] -> ``[N, 3, h, w]``
    normalised.

    Mirrors ``timm.data.transforms_imagenet_eval``: resize (shorter side to ``size / crop_pct``
    for ``crop_mode="center"``, both sides for ``"squash"``) with the config's interpolation
    (antialiased), centre crop to ``input_size``, then ``(x - mean) / std``.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    _check_image_tensor(images)
    _, h, w = config["input_size"]
    crop_pct = config.get("crop_pct") or 0.875
    mode = config.get("crop_mode") or "center"
    interp = InterpolationMode(config.get("interpolation", "bilinear"))
    scale = (math.floor(h / crop_pct), math.floor(w / crop_pct))
    x = images.float()
    if mode == "squash":
        x = TF.resize(x, list(scale), interpolation=interp, antialias=True)
    elif mode == "center":
        if scale[0] == scale[1]:  # torchvision: an int resizes the shorter side
            x = TF.resize(x, scale[0], interpolation=interp, antialias=True)
        else:  # timm ResizeKeepRatio: scale so both sides cover the target, keep the ratio
            ratio = max(scale[0] / x.shape[-2], scale[1] / x.shape[-1])
            size = [round(x.shape[-2] * ratio), round(x.shape[-1] * ratio)]
            x = TF.resize(x, size, interpolation=interp, antialias=True)
    else:
        raise ValueError(f"crop_mode={mode!r} is not implemented for tensors; pass PIL images "
                         "(timm's own transform) or transform=False with preprocessed tensors.")
    x = TF.center_crop(x, [h, w])
    mean = torch.tensor(config["mean"], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(config["std"], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


def _check_image_tensor(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be a float tensor [N, 3, H, W], got shape "
                         f"{tuple(images.shape)}.")
    if not images.is_floating_point():
        raise ValueError(f"images must be float in [0, 1], got dtype {images.dtype}; divide uint8 "
                         f"images by 255.")
    if images.numel() and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
        raise ValueError(
            f"images must lie in [0, 1] (got min {images.min().item():.3g}, max "
            f"{images.max().item():.3g}); "
            "pass transform=False if they are already normalised for the model.")


def _image_batches(images, model, transform, batch_size: int):
    """Yield preprocessed batches ``[B, 3, h, w]`` from a tensor or a list of PIL images."""
    if isinstance(images, torch.Tensor):
        if transform is False:
            if images.ndim != 4:
                raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}.")
        else:
            _check_image_tensor(images)
        cfg = vision_data_config(model) if transform is None else None
        for s, e in _batches(len(images), batch_size):
            x = images[s:e]
            if transform is None:
                x = preprocess_images(x, cfg)
            elif transform is not False:
                x = torch.stack([transform(img) for img in x])
            yield x
        return
    if isinstance(images, (list, tuple)):
        from PIL import Image

        bad = [type(im).__name__ for im in images if not isinstance(im, Image.Image)]
        if bad:
            raise ValueError("images must be a tensor [N, 3, H, W] or a list of PIL images; "
                             f"found {bad[0]}.")
        if transform is None:
            from timm.data import create_transform

            tf = create_transform(**vision_data_config(model))
        elif transform is False:
            from torchvision.transforms.functional import to_tensor as tf
        else:
            tf = transform
        for s, e in _batches(len(images), batch_size):
            yield torch.stack([tf(im.convert("RGB")) for im in images[s:e]])
        return
    raise ValueError("images must be a tensor [N, 3, H, W] in [0, 1] or a list of PIL images, "
                     f"got {type(images).__name__}.")


# --------------------------------------------------------------------------- vision features
def _pool_tokens(x: torch.Tensor, pool: str, num_prefix: int) -> torch.Tensor:
    if pool == "cls":
        return x[:, 0]
    if pool == "mean":
        return x[:, num_prefix:].mean(dim=1)
    raise ValueError(f"pool must be one of {VISION_POOLS}, got {pool!r}.")


def extract_vision_features(
    model: torch.nn.Module,
    images,
    pool: str = "cls",
    batch_size: int = 64,
    device: str | torch.device | None = None,
    transform: Callable | bool | None = None,
    progress: bool = True,
    indices: int | Sequence[int] | None = None,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Every block's output of a timm ViT, pooled per image.

    The feature of block ``i`` is its output (the residual stream after the block, before the
    final norm; PRH's ``blocks.{i}.add_1``), pooled as the CLS token (token 0) or the mean of the
    patch tokens (prefix tokens, i.e. CLS and registers, excluded).

    Args:
        model: a timm ViT-like model with ``model.blocks`` (a sequence of blocks giving ``[B, T,
        D]``).
        images: float tensor ``[N, 3, H, W]`` in [0, 1], or a list of PIL images.
        pool: "cls", "mean" (patch tokens only) or "both" (a dict with both).
        batch_size: images per forward pass.
        device: where to run (None: CUDA if available, else CPU); the model is moved there.
        transform: None = the model's own preprocessing (timm data config; done in torch for
            tensors, timm's transform for PIL); False = feed tensors as they are; a callable =
            applied to each image, giving ``[3, h, w]``.
        progress: show a tqdm bar.
        indices: blocks to return (timm convention: None all, int last n, list with negatives).

    Returns:
        ``[N, L, D]`` float32 on CPU (L = number of selected blocks, in block order); for
        ``pool="both"`` a dict ``{"cls": [N, L, D], "mean": [N, L, D]}``.

    Raises:
        ValueError: bad images, pool, indices or batch size, or a model without ``blocks`` or
            without a class token when ``pool`` needs one.
    """
    if pool not in VISION_POOLS:
        raise ValueError(f"pool must be one of {VISION_POOLS}, got {pool!r}.")
    blocks = getattr(model, "blocks", None)
    if blocks is None or not hasattr(blocks, "__getitem__"):
        raise ValueError(f"{type(model).__name__} has no `blocks` list; use "
                         f"extract_module_outputs for non-ViT models.")
    idx = normalize_indices(indices, len(blocks))
    num_prefix = int(getattr(model, "num_prefix_tokens", 1))
    has_cls = bool(getattr(model, "has_class_token",
                           getattr(model, "cls_token", None) is not None))
    if pool in ("cls", "both") and not has_cls:
        raise ValueError(f"{type(model).__name__} has no class token; use pool='mean'.")
    pools = ["cls", "mean"] if pool == "both" else [pool]
    dev = resolve_device(device)
    n = len(images)
    if n == 0:
        raise ValueError("images is empty; pass at least one image.")

    outs: dict[int, torch.Tensor] = {}
    last = idx[-1]

    def make_hook(i: int):
        def hook(_module, _inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            if out.ndim != 3:
                raise ValueError(f"blocks[{i}] gave shape {tuple(out.shape)}; expected tokens [B, "
                                 f"T, D].")
            outs[i] = out
            if i == last:
                raise _StopForward
        return hook

    was_training = model.training
    model.eval().to(dev)
    handles = [blocks[i].register_forward_hook(make_hook(i)) for i in idx]
    result = {p: [] for p in pools}
    try:
        with torch.inference_mode():
            bar = tqdm(total=n, desc=f"vision features ({type(model).__name__})",
                       disable=not progress, unit="img")
            for x in _image_batches(images, model, transform, batch_size):
                outs.clear()
                try:
                    model(x.to(dev))
                except _StopForward:  # deeper blocks and the head are not needed
                    pass
                for p in pools:
                    feats = [_pool_tokens(outs[i], p, num_prefix) for i in idx]
                    result[p].append(torch.stack(feats, dim=1).float().cpu())
                bar.update(len(x))
            bar.close()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    stacked = {p: torch.cat(v) for p, v in result.items()}
    return stacked if pool == "both" else stacked[pool]


# --------------------------------------------------------------------------- generic hooks
def _pool_module_output(out, pool: str, name: str, num_prefix_tokens: int) -> torch.Tensor:
    if isinstance(out, (tuple, list)):  # e.g. HF layers return (hidden, attn, ...)
        out = out[0]
    if hasattr(out, "last_hidden_state"):
        out = out.last_hidden_state
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"Module {name!r} returned {type(out).__name__}, not a tensor.")
    if pool == "none":
        return out
    if pool == "flatten":
        return out.flatten(1)
    if pool == "auto":
        if out.ndim == 2:
            return out
        if out.ndim == 4:
            return out.mean(dim=(2, 3))
        raise ValueError(f"Module {name!r} gives shape {tuple(out.shape)}; pool='auto' handles "
                         f"[B, D] and "
                         "[B, C, H, W] only: choose pool='cls', 'mean', 'gap' or 'flatten'.")
    if pool == "gap":
        if out.ndim < 3:
            raise ValueError(f"pool='gap' needs spatial dims, but module {name!r} gives "
                             f"{tuple(out.shape)}.")
        return out.flatten(2).mean(dim=2)
    if pool == "mean" and out.ndim in (2, 4):  # mean over whatever is not batch or channel
        return out if out.ndim == 2 else out.mean(dim=(2, 3))
    if out.ndim != 3:
        raise ValueError(f"pool={pool!r} needs tokens [B, T, D], but module {name!r} gives "
                         f"{tuple(out.shape)}.")
    return out[:, 0] if pool == "cls" else out[:, num_prefix_tokens:].mean(dim=1)


def extract_module_outputs(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    module_names: Sequence[str],
    pool: str = "auto",
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = True,
    num_prefix_tokens: int = 0,
) -> list[torch.Tensor]:
    """Outputs of named modules for every input, via forward hooks (CNNs, MLPs, anything).

    Args:
        model: any module; ``module_names`` come from ``model.named_modules()``.
        inputs: tensor ``[N, ...]``, fed to ``model`` in batches along dim 0.
        module_names: which modules to record, e.g. ``["layer1", "layer2", "fc"]``.
        pool: "auto" (``[B, D]`` as is, ``[B, C, H, W]`` global-average pooled), "gap" (mean
            over all dims after the 2nd), "cls" (token 0 of ``[B, T, D]``), "mean" (tokens
            ``[B, T, D]`` averaged after ``num_prefix_tokens``; ``[B, C, H, W]`` averaged over
            space; ``[B, D]`` as is: one setting for mixed ViT/CNN/MLP layers), "flatten", or
            "none" (keep the full output).
        batch_size, device, progress: as in :func:`extract_vision_features`.
        num_prefix_tokens: tokens skipped by pool="mean".

    Returns:
        A list with one float32 CPU tensor ``[N, D_l]`` per module name, in the given order
        (widths may differ between modules).
    """
    if pool not in MODULE_POOLS:
        raise ValueError(f"pool must be one of {MODULE_POOLS}, got {pool!r}.")
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 1 or len(inputs) == 0:
        raise ValueError("inputs must be a non-empty tensor [N, ...] batched along dim 0.")
    if isinstance(module_names, str) or not module_names:
        raise ValueError("module_names must be a non-empty list of module names, e.g. ['layer1', "
                         "'fc'].")
    modules = dict(model.named_modules())
    missing = [m for m in module_names if m not in modules]
    if missing:
        names = [k for k in modules if k][:12]
        raise ValueError(f"No module named {missing[0]!r} in {type(model).__name__}; some valid "
                         f"names: {names}.")
    dev = resolve_device(device)
    outs: dict[str, torch.Tensor] = {}

    def make_hook(name: str):
        def hook(_module, _inputs, output):
            outs[name] = _pool_module_output(output, pool, name, num_prefix_tokens).float().cpu()
        return hook

    was_training = model.training
    model.eval().to(dev)
    handles = [modules[m].register_forward_hook(make_hook(m)) for m in dict.fromkeys(module_names)]
    result: dict[str, list[torch.Tensor]] = {m: [] for m in module_names}
    try:
        with torch.inference_mode():
            for s, e in tqdm(_batches(len(inputs), batch_size), desc="module outputs",
                             disable=not progress):
                outs.clear()
                model(inputs[s:e].to(dev))
                for m in module_names:
                    if m not in outs:
                        raise ValueError(f"Module {m!r} did not run in the forward pass; pick a "
                                         f"module on the forward path.")
                    result[m].append(outs[m])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return [torch.cat(result[m]) for m in module_names]


# --------------------------------------------------------------------------- language features
def extract_language_features(
    model: torch.nn.Module,
    tokenizer,
    texts: Sequence[str],
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = True,
    max_length: int | None = 512,
    padding_side: str | None = "right",
) -> torch.Tensor:
    """Every hidden state of a Hugging Face model, averaged over each text's non-padding tokens.

    Args:
        model: an encoder (BERT, MPNet, ...) or decoder (GPT-2, Llama, ...) ``transformers`` model.
        tokenizer: its tokenizer; a missing pad token is set to the EOS token.
        texts: N strings.
        batch_size: texts per forward pass (texts are sorted by length to cut padding; the
            output keeps the input order).
        device: where to run (None: CUDA if available, else CPU); the model is moved there.
        progress: show a tqdm bar.
        max_length: truncate longer texts to this many tokens (None: no truncation).
        padding_side: "right" (default: padding never shifts a decoder's positions) or "left"
            (PRH's choice; it shifts absolute positions, e.g. GPT-2's, but not rotary ones);
            None keeps the tokenizer's setting. Either way the mean uses the attention mask.

    Returns:
        ``[N, L+1, D]`` float32 on CPU: index 0 is the embedding output, then each layer.

    Raises:
        ValueError: empty or non-string texts, bad batch size or padding side, or a tokenizer
            without pad and EOS tokens.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or len(texts) == 0:
        raise ValueError("texts must be a non-empty list of strings.")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise ValueError(f"texts must all be strings; found a {bad[0]}.")
    if padding_side not in ("right", "left", None):
        raise ValueError(f"padding_side must be 'right', 'left' or None, got {padding_side!r}.")
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("The tokenizer has neither a pad nor an EOS token; set "
                             "tokenizer.pad_token first.")
        tokenizer.pad_token = tokenizer.eos_token  # as PRH does for decoders
    dev = resolve_device(device)
    # sort by length so each batch pads little; results are put back in input order
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    old_side = tokenizer.padding_side
    was_training = model.training
    model.eval().to(dev)
    chunks: list[torch.Tensor] = []
    try:
        if padding_side is not None:
            tokenizer.padding_side = padding_side
        with torch.inference_mode():
            for s, e in tqdm(_batches(len(texts), batch_size),
                             desc=f"language features ({type(model).__name__})",
                             disable=not progress):
                batch = [texts[i] for i in order[s:e]]
                enc = tokenizer(batch, padding=True, truncation=max_length is not None,
                                max_length=max_length,
                                return_tensors="pt")
                mask = enc["attention_mask"].to(dev)
                out = model(input_ids=enc["input_ids"].to(dev), attention_mask=mask,
                            output_hidden_states=True)
                hidden = getattr(out, "hidden_states", None)
                if hidden is None:
                    raise ValueError(f"{type(model).__name__} returned no hidden_states; pass a "
                                     f"plain "
                                     "transformers encoder or decoder model.")
                # pool layer by layer: stacking all L+1 states first costs L+1 times the memory
                chunks.append(torch.stack([masked_mean(h, mask) for h in hidden], dim=1).cpu())
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    feats = torch.cat(chunks)
    result = torch.empty_like(feats)
    result[torch.tensor(order)] = feats
    return result


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over tokens where ``mask`` is 1: ``[B, L, T, D]`` (or ``[B, T, D]``) and ``[B, T]`` ->
    ``[B, L, D]`` (``[B, D]``).

    Computed in float32; a row with no valid token raises ValueError (it has no mean).
    """
    if mask.ndim != 2 or mask.shape[0] != hidden.shape[0] or mask.shape[1] != hidden.shape[-2]:
        raise ValueError(f"mask must be [B, T] matching hidden {tuple(hidden.shape)}, got "
                         f"{tuple(mask.shape)}.")
    m = mask.to(torch.float32)
    counts = m.sum(dim=1)
    if (counts == 0).any():
        raise ValueError("A text has no non-padding tokens; drop empty texts or check the "
                         "tokenizer.")
    if hidden.ndim == 4:
        m = m[:, None, :, None]
        counts = counts[:, None, None]
    else:
        m = m[:, :, None]
        counts = counts[:, None]
    return (hidden.to(torch.float32) * m).sum(dim=-2) / counts


# --------------------------------------------------------------------------- cache
def cached_features(key: dict[str, Any], compute: Callable[[], Any], namespace: str = "features"):
    """Features from the shared on-disk cache, computed and stored on a miss.

    Args:
        key: everything that determines the features (model, data, options), JSON-serialisable.
        compute: returns a tensor (e.g. ``[N, L, D]``), a list of tensors, or a dict of tensors.
        namespace: sub-folder of the cache root.

    Returns:
        The (CPU) features. A stored entry is used only if its key matches and every tensor has
        the stored shape and dtype and is finite; otherwise (corrupt, truncated, mismatched) it is
        recomputed and overwritten atomically.

    Raises:
        ValueError: ``key`` not a dict, or ``compute`` returned non-tensors or non-finite values.
    """
    if not isinstance(key, dict) or not key:
        raise ValueError("key must be a non-empty dict naming the model, data and options.")
    # a stored entry of the wrong structure (validation raises or fails) counts as missing
    stored = cache.load_entry(namespace, key, validate=lambda v: _validated(v) is not None)
    value = _validated(stored)
    if value is not None:
        return value
    value = compute()
    tensors = _flatten(value)
    if tensors is None:
        raise ValueError(f"compute() must return a tensor, a list or a dict of tensors, got "
                         f"{type(value).__name__}.")
    for t in tensors:
        if not torch.isfinite(t).all():
            raise ValueError(f"compute() returned non-finite features for key {key}; not caching "
                             f"them.")
    value = _to_cpu(value)
    meta = [[list(t.shape), str(t.dtype)] for t in _flatten(value)]
    cache.save_entry(namespace, key, {"meta": meta, "value": value})
    return value


def _flatten(value) -> list[torch.Tensor] | None:
    if isinstance(value, torch.Tensor):
        return [value]
    items = (list(value.values()) if isinstance(value, dict) else value
             if isinstance(value, (list, tuple)) else None)
    if not items or not all(isinstance(t, torch.Tensor) for t in items):
        return None
    return list(items)


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().contiguous()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return [_to_cpu(v) for v in value]


def _validated(stored):
    """The stored value if it passes every check, else None (recompute)."""
    if not isinstance(stored, dict) or "meta" not in stored or "value" not in stored:
        return None
    tensors = _flatten(stored["value"])
    meta = stored["meta"]
    if tensors is None or not isinstance(meta, list) or len(meta) != len(tensors):
        return None
    for t, (shape, dtype) in zip(tensors, meta):
        if list(t.shape) != shape or str(t.dtype) != dtype or not torch.isfinite(t).all():
            return None
    return stored["value"]
