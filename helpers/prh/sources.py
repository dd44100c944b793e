"""Data and model sources of the PRH out-of-distribution chapter at ``full`` scale.

One function per source; each takes a hub name *or* a local path, so the same code runs on the
published models and data (with network access) and on local fixtures (offline, in tests):

* :func:`load_wit` - the PRH image-caption set (``minhuh/prh``, revision ``wit_1024``), the
  in-distribution side; a local image folder with ``metadata.jsonl`` (``file_name``, ``text``)
  works too.
* :func:`load_imagenet_o` - ImageNet-O (``cais/imagenet-o``, split ``test``), the OOD side,
  captioned from its labels ("a photo of a <label>"); a local folder of class sub-folders works
  too.
* :func:`vit_features` - per-block CLS features ``[N, L, D]`` of a timm ViT with its own
  preprocessing.
* :func:`random_init_copy` - the same architecture with fresh random weights (the random-init
  control).
* :func:`param_count` - parameters of a model, the competence proxy at ``full`` scale.
* :func:`language_features` - per-layer token-mean features ``[N, L+1, D]`` of a Hugging Face
  model.

The model lists are PRH's ``val`` sets (``tasks.py``).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Sequence

import torch

PRH_VISION_MODELS = (
    "vit_tiny_patch16_224.augreg_in21k", "vit_small_patch16_224.augreg_in21k",
    "vit_base_patch16_224.augreg_in21k", "vit_large_patch16_224.augreg_in21k",
    "vit_base_patch16_224.mae", "vit_large_patch16_224.mae", "vit_huge_patch14_224.mae",
    "vit_small_patch14_dinov2.lvd142m", "vit_base_patch14_dinov2.lvd142m",
    "vit_large_patch14_dinov2.lvd142m", "vit_giant_patch14_dinov2.lvd142m",
    "vit_base_patch16_clip_224.laion2b", "vit_large_patch14_clip_224.laion2b",
    "vit_huge_patch14_clip_224.laion2b",
    "vit_base_patch16_clip_224.laion2b_ft_in12k", "vit_large_patch14_clip_224.laion2b_ft_in12k",
    "vit_huge_patch14_clip_224.laion2b_ft_in12k",
)
"""The 17 ViTs of PRH's ``val`` set."""
PRH_LANGUAGE_MODELS = (
    "bigscience/bloomz-560m", "bigscience/bloomz-1b1", "bigscience/bloomz-1b7",
    "bigscience/bloomz-3b",
    "bigscience/bloomz-7b1", "openlm-research/open_llama_3b", "openlm-research/open_llama_7b",
    "openlm-research/open_llama_13b", "huggyllama/llama-7b", "huggyllama/llama-13b",
    "huggyllama/llama-30b", "huggyllama/llama-65b",
)
"""The 12 language models of PRH's ``val`` set."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DatasetUnavailableError(OSError):
    """A hub dataset could not be loaded: it needs network access (or pass a local folder)."""


def _hub_dataset(name: str, **kwargs):
    try:
        from datasets import load_dataset

        return load_dataset(name, **kwargs)
    except Exception as err:  # datasets raises many types when offline
        raise DatasetUnavailableError(
            f"Could not load the dataset {name!r} ({kwargs}): it needs network access to the "
            f"Hugging Face hub (the `full` scale), or pass a local folder instead. Underlying "
            f"error: {type(err).__name__}: {err}"
        ) from err


def _check_n(n: int | None, available: int, what: str) -> int:
    if n is None:
        return available
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer or None (all), got {n!r}")
    if n > available:
        raise ValueError(f"asked for n={n} {what} images but only {available} exist; lower n")
    return n


def load_image_folder(path: str | Path, n: int | None = None) -> list:
    """The first ``n`` images (sorted by relative path) under ``path``, as RGB PIL images.

    Raises:
        ValueError: ``path`` not an existing folder, no images in it, a bad ``n``, or a file with
            an image suffix that is not a readable image (the message names the file).
    """
    from PIL import Image

    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a folder path (str or Path); got {type(path).__name__}")
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"No image folder at {str(path)!r}; pass an existing folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{root} holds no images with suffixes {IMAGE_SUFFIXES}")
    n = _check_n(n, len(files), str(root))
    images = []
    for f in files[:n]:
        try:
            images.append(Image.open(f).convert("RGB"))
        except (OSError, ValueError) as err:  # truncated or not an image despite its suffix
            raise ValueError(f"{f} is not a readable image ({type(err).__name__}: {err}); remove "
                             f"or replace it") from err
    return images


def load_wit(source: str | Path = "minhuh/prh", n: int | None = None,
             revision: str = "wit_1024") -> tuple[list, list[str]]:
    """PRH's WIT images and captions (caption = ``text[0]``): ``(images, captions)``.

    ``source`` is the hub dataset (with ``revision``, a git branch) or a local folder of images
    plus ``metadata.jsonl`` lines ``{"file_name": ..., "text": [caption, ...]}``.
    """
    from PIL import Image

    path = Path(source)
    if path.is_dir():
        meta = path / "metadata.jsonl"
        if not meta.is_file():
            raise ValueError(f"{path} has no metadata.jsonl with file_name and text; write one or "
                             f"pass the hub name")
        rows = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
        n = _check_n(n, len(rows), str(path))
        images = [Image.open(path / r["file_name"]).convert("RGB") for r in rows[:n]]
        texts = [r["text"][0] if isinstance(r["text"], list) else r["text"] for r in rows[:n]]
        return images, texts
    ds = _hub_dataset(str(source), revision=revision, split="train")
    n = _check_n(n, len(ds), str(source))
    ds = ds.select(range(n))
    return [im.convert("RGB") for im in ds["image"]], [t[0] for t in ds["text"]]


def load_imagenet_o(source: str | Path = "cais/imagenet-o",
                    n: int | None = None) -> tuple[list, list[str]]:
    """ImageNet-O images and label captions ``("a photo of a <label>")``: ``(images, captions)``.

    ``source`` is the hub dataset (split ``test``) or a local folder whose sub-folders are labels.
    """
    path = Path(source)
    if path.is_dir():
        from PIL import Image

        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path} holds no images with suffixes {IMAGE_SUFFIXES}")
        n = _check_n(n, len(files), str(path))
        caps = [f"a photo of a {f.parent.name.replace('_', ' ')}" for f in files[:n]]
        return [Image.open(f).convert("RGB") for f in files[:n]], caps
    ds = _hub_dataset(str(source), split="test")
    n = _check_n(n, len(ds), str(source))
    ds = ds.select(range(n))
    names = getattr(ds.features.get("label"), "names", None)
    caps = [f"a photo of a {names[y] if names else y}" for y in ds["label"]]
    return [im.convert("RGB") for im in ds["image"]], caps


def vit_features(model_or_name: torch.nn.Module | str | Path, images: Sequence,
                 batch_size: int = 32,
                 device=None) -> torch.Tensor:
    """Per-block CLS features ``[N, L, D]`` of a timm ViT (a model, hub name or local folder),
    with the model's own preprocessing."""
    from helpers.features import extract_vision_features, load_timm_model

    model = (model_or_name if isinstance(model_or_name, torch.nn.Module)
             else load_timm_model(model_or_name, pretrained=True))
    return extract_vision_features(model, images, pool="cls", batch_size=batch_size, device=device,
                                   transform=None, progress=False)


def random_init_copy(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A deep copy of ``model`` with freshly initialised weights: the random-init control.

    Uses the model's own ``init_weights`` (timm ViTs) when it has one, else every submodule's
    ``reset_parameters``; preprocessing config (``pretrained_cfg``) is kept, so the control sees
    the same inputs as the trained model.
    """
    import copy

    ctrl = copy.deepcopy(model)
    torch.manual_seed(seed)
    if hasattr(ctrl, "init_weights"):
        ctrl.init_weights()
    else:
        for mod in ctrl.modules():
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
    return ctrl.eval()


def param_count(model: torch.nn.Module) -> int:
    """Number of parameters of ``model`` (the ``full``-scale competence proxy: PRH's models get
    better with size within each family)."""
    return int(sum(p.numel() for p in model.parameters()))


def language_features(name_or_path: str | Path, texts: Sequence[str], batch_size: int = 16,
                      device=None) -> torch.Tensor:
    """Per-layer token-mean features ``[N, L+1, D]`` of a Hugging Face language model."""
    from helpers.features import extract_language_features, load_language_model

    model, tok = load_language_model(name_or_path, device=device)
    return extract_language_features(model, tok, list(texts), batch_size=batch_size, device=device,
                                     progress=False)


@dataclasses.dataclass
class PretrainedMember:
    """A pretrained ViT in the role of a zoo member (``full`` scale): step 1 is the pretrained
    model, step 0 (when listed) its random-init copy."""

    name: str  # short name (the timm name, or the folder name)
    source: str  # timm hub name or local folder
    objective: str  # training family read from the name (augreg, mae, dinov2, clip, clip_ft)
    steps: list  # [0, 1] with a random-init control, else [1]
    arch: str = "vit"
    seed: int = 0
    history: list = dataclasses.field(default_factory=list)


def vit_family(name: str) -> str:
    """PRH's training family of a timm ViT name: ``augreg``, ``mae``, ``dinov2``, ``clip``
    (laion2b), ``clip_ft`` (laion2b fine-tuned on in12k) or ``other``.

    Example:
        >>> vit_family("vit_base_patch16_clip_224.laion2b_ft_in12k"), vit_family("vit_tiny")
        ('clip_ft', 'other')
    """
    tag = name.split(".")[-1]
    for key in ("ft_in12k", "laion2b", "dinov2", "mae", "augreg"):
        if key in tag or key in name:
            return {"ft_in12k": "clip_ft", "laion2b": "clip"}.get(key, key)
    return "other"


def pretrained_members(models: Sequence[str | Path],
                       n_init_controls: int) -> list[PretrainedMember]:
    """One :class:`PretrainedMember` per ViT (name from the hub id or folder); the first
    ``n_init_controls`` also get a random-init control (step 0)."""
    return [PretrainedMember(name=str(v).rstrip("/").split("/")[-1], source=str(v),
                             objective=vit_family(str(v)),
                             steps=[0, 1] if i < n_init_controls else [1])
            for i, v in enumerate(models)]
