"""A zoo of tiny vision models trained on the shapes world, with checkpoints and caching.

Every member is one (architecture, objective, seed):

* architectures: ``"vit"`` (a timm ViT from scratch, 16 patch tokens on 64x64 images),
  ``"cnn"`` (timm ``resnet10t`` at reduced width, on 2x average-pooled images) and ``"mlp"``;
* objectives: ``"supervised"`` (classify all seven factors), ``"autoencoder"`` (reconstruct
  a 16x16 thumbnail), ``"simclr"`` (contrastive between two augmented views) and
  ``"caption"`` (CLIP-style contrastive against frozen all-MiniLM-L6-v2 caption embeddings).

Training saves the weights at step 0 (the random-init control) and at ``n_checkpoints``
evenly spaced steps (the competence axis). Everything is cached with :mod:`helpers.cache`
under a key of every training knob, so a second run, and other chapters, load instead of
train. :func:`member_features` returns raw per-layer features ``[N, D_l]`` for alignment.

Example:
    >>> cfg = ZooConfig.for_scale("smoke")
    >>> cfg.archs, cfg.objectives  # doctest: +ELLIPSIS
    (('vit', 'cnn', 'mlp'), ('supervised', 'autoencoder', 'simclr', 'caption'))
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from helpers import cache, parallel
from helpers.prh.shapes_world import FACTOR_CLASSES, FACTORS, ShapesData, make_dataset

ARCHS = ("vit", "cnn", "mlp")
OBJECTIVES = ("supervised", "autoencoder", "simclr", "caption")
SCALES = ("smoke", "book", "full")
_VERSION = 2  # bump when training code changes, so stale cached weights are not reused


@dataclass(frozen=True)
class ZooConfig:
    """Every knob of the zoo. Each field changes the cache key of the trained weights."""

    archs: tuple[str, ...] = ARCHS  # subset of ARCHS
    objectives: tuple[str, ...] = OBJECTIVES  # subset of OBJECTIVES
    seeds: tuple[int, ...] = (0,)  # one member per (arch, objective, seed); one seed fits 2 cores
    n_train: int = 4000  # training images from the "id" split
    data_seed: int = 1000  # seed of the training images (evaluation sets use other seeds)
    image_size: int = 64  # pixels per side of the rendered images
    # 8 epochs of batch 64 (496 steps; was 3 x 128 = 93, shape accuracy 0.34): the resnet
    # reaches shape accuracy ~0.74, the ViT and MLP ~0.45 (about 280 CPU s for 12 members)
    epochs: int = 8  # passes over the training images
    batch_size: int = 64  # images per step (SimCLR sees two views of each)
    lr: float = 2e-3  # AdamW peak learning rate (cosine decay to 5% after 5% warmup)
    weight_decay: float = 0.05  # AdamW weight decay
    n_checkpoints: int = 3  # saved checkpoints besides step 0, evenly spaced to the end
    vit_dim: int = 64  # ViT width
    vit_depth: int = 4  # ViT blocks (one feature layer each)
    vit_heads: int = 4  # ViT attention heads
    vit_patch: int = 16  # ViT patch side in pixels (64/16 -> 16 tokens)
    cnn_channels: tuple[int, ...] = (16, 32, 64, 128)  # resnet10t stage widths
    mlp_hidden: tuple[int, ...] = (512, 256, 128)  # MLP hidden widths (one feature layer each)
    temperature: float = 0.2  # softmax temperature of the SimCLR and caption losses
    text_encoder: str = "all-MiniLM-L6-v2"  # frozen text tower of the caption objective

    @classmethod
    def for_scale(cls, scale: str) -> "ZooConfig":
        """The zoo of a book scale: ``"smoke"`` (seconds, CI), ``"book"`` or ``"full"`` (same as
        book)."""
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        if scale == "smoke":
            return cls(seeds=(0,), n_train=256, epochs=1, batch_size=64, n_checkpoints=2)
        return cls()

    def __post_init__(self) -> None:
        bad = [a for a in self.archs if a not in ARCHS]
        if bad:
            raise ValueError(f"archs must be drawn from {ARCHS}, got unknown {bad}")
        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad:
            raise ValueError(f"objectives must be drawn from {OBJECTIVES}, got unknown {bad}")
        if self.n_train < self.batch_size:
            raise ValueError(
                f"n_train ({self.n_train}) must be at least batch_size ({self.batch_size}); "
                "lower batch_size or raise n_train"
            )
        if self.n_checkpoints < 1:
            raise ValueError(f"n_checkpoints must be >= 1, got {self.n_checkpoints}")

    @property
    def total_steps(self) -> int:
        return self.epochs * (self.n_train // self.batch_size)

    def checkpoint_steps(self) -> list[int]:
        """Steps at which weights are kept: 0 (random init) and ``n_checkpoints`` up to the end."""
        t = self.total_steps
        return sorted({0, *[round(t * (i + 1) / self.n_checkpoints)
                            for i in range(self.n_checkpoints)]})


# ----------------------------------------------------------------------------- networks
class ZooNet(nn.Module):
    """A backbone (image ``[N, 3, H, W]`` in [0, 1] -> embedding ``[N, D]``) plus its objective's
    head."""

    def __init__(self, backbone: nn.Module, head: nn.Module, arch: str, objective: str,
                 layer_names: list[str]):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.arch, self.objective = arch, objective
        # module names inside ``backbone`` whose outputs are features
        self.layer_names = layer_names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def _build_backbone(arch: str, cfg: ZooConfig) -> tuple[nn.Module, int, list[str]]:
    import timm

    if arch == "vit":
        net = timm.create_model(
            "vit_tiny_patch16_224", pretrained=False, img_size=cfg.image_size,
            patch_size=cfg.vit_patch,
            embed_dim=cfg.vit_dim, depth=cfg.vit_depth, num_heads=cfg.vit_heads, mlp_ratio=2.0,
            num_classes=0,
        )
        return net, cfg.vit_dim, [f"blocks.{i}" for i in range(cfg.vit_depth)]
    if arch == "cnn":
        res = timm.create_model(
            "resnet10t", pretrained=False, num_classes=0, channels=cfg.cnn_channels,
            stem_width=max(8, cfg.cnn_channels[0] // 2),
        )
        net = nn.Sequential(OrderedDict(down=nn.AvgPool2d(2), net=res))  # 2x pool: 10x cheaper
        return net, cfg.cnn_channels[-1], ["net.act1"] + [f"net.layer{i}" for i in range(1, 5)]
    if arch == "mlp":
        layers: list[tuple[str, nn.Module]] = [("down", nn.AvgPool2d(2)), ("flat", nn.Flatten())]
        d = 3 * (cfg.image_size // 2) ** 2
        for i, h in enumerate(cfg.mlp_hidden):
            layers += [(f"fc{i}", nn.Linear(d, h)), (f"act{i}", nn.GELU())]
            d = h
        return nn.Sequential(OrderedDict(layers)), d, [f"act{i}"
                                                       for i in range(len(cfg.mlp_hidden))]
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def _build_head(objective: str, dim: int, cfg: ZooConfig, text_dim: int = 384) -> nn.Module:
    if objective == "supervised":
        return nn.Linear(dim, sum(len(FACTOR_CLASSES[f]) for f in FACTORS))
    if objective == "autoencoder":
        return nn.Sequential(nn.Linear(dim, 256), nn.GELU(), nn.Linear(256, 3 * 16 * 16))
    if objective == "simclr":
        return nn.Sequential(nn.Linear(dim, 128), nn.GELU(), nn.Linear(128, 64))
    if objective == "caption":
        return nn.Linear(dim, text_dim)
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def build_net(arch: str, objective: str, cfg: ZooConfig, seed: int = 0) -> ZooNet:
    """A freshly initialised :class:`ZooNet`, deterministic in (``seed``, ``objective``): members
    with different objectives also start from different weights, so their agreement is learned."""
    torch.manual_seed(1000 * seed + OBJECTIVES.index(objective))
    backbone, dim, names = _build_backbone(arch, cfg)
    return ZooNet(backbone, _build_head(objective, dim, cfg), arch, objective, names)


# ----------------------------------------------------------------------------- objectives
def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """SimCLR-style views ``[N, 3, H, W]``: random resized crop + flip, colour jitter, noise."""
    n = x.shape[0]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)
    scale = u(0.6, 1.0)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
    theta[:, 0, 2], theta[:, 1, 2] = u(-1, 1) * (1 - scale), u(-1, 1) * (1 - scale)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    v = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    mean = v.mean(dim=(1, 2, 3), keepdim=True)
    v = (v - mean) * u(0.7, 1.3)[:, None, None, None] + mean * u(0.7, 1.3)[:, None, None, None]
    gray = v.mean(dim=1, keepdim=True)
    v = gray + (v - gray) * u(0.5, 1.5)[:, None, None, None]  # saturation
    return (v + 0.03 * torch.randn(v.shape, generator=gen)).clamp(0, 1)


def _info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between matched rows of ``a`` and ``b`` ``[N, D]``."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    target = torch.arange(a.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _labels(data: ShapesData) -> torch.Tensor:
    """Factor classes ``[N, 7]`` (all in-distribution, so no -1)."""
    return torch.stack([data.labels(f) for f in FACTORS], dim=1)


def _loss(net: ZooNet, batch: dict[str, torch.Tensor], cfg: ZooConfig,
          gen: torch.Generator) -> torch.Tensor:
    x = batch["images"]
    if net.objective == "supervised":
        logits = net.head(net(x))
        losses, start = [], 0
        for j, f in enumerate(FACTORS):
            k = len(FACTOR_CLASSES[f])
            losses.append(F.cross_entropy(logits[:, start : start + k], batch["labels"][:, j]))
            start += k
        return torch.stack(losses).mean()
    if net.objective == "autoencoder":
        target = F.adaptive_avg_pool2d(x, 16).flatten(1)
        return F.mse_loss(torch.sigmoid(net.head(net(x))), target)
    if net.objective == "simclr":
        z = net.head(net(torch.cat([_augment(x, gen), _augment(x, gen)])))
        return _info_nce(z[: len(x)], z[len(x) :], cfg.temperature)
    if net.objective == "caption":
        return _info_nce(net.head(net(x)), batch["text"], cfg.temperature)
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {net.objective!r}")


def caption_embeddings(captions: list[str], encoder: str = "all-MiniLM-L6-v2",
                       progress: bool = False) -> torch.Tensor:
    """Frozen sentence embeddings ``[N, D]`` (last layer, token mean), cached per caption list."""
    from helpers.features import extract_language_features, load_text_encoder

    def compute() -> torch.Tensor:
        model, tok = load_text_encoder(encoder)
        feats = extract_language_features(model, tok, captions, batch_size=128, progress=progress)
        return feats[:, -1].float()

    key = {"what": "caption_embeddings", "encoder": encoder,
           "captions": cache.key_digest({"c": captions}), "n": len(captions)}
    return cache.cached("zoo_text", key, compute)


def train_member(arch: str, objective: str, seed: int, cfg: ZooConfig, data: ShapesData,
                 text: torch.Tensor | None = None, progress: bool = False
                 ) -> tuple[dict[int, dict], list[dict]]:
    """Train one member on ``data``; return ({step: state_dict}, history rows of step and loss)."""
    net = build_net(arch, objective, cfg, seed)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total, keep = cfg.total_steps, set(cfg.checkpoint_steps())
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm)
        * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    )
    gen = torch.Generator().manual_seed(10_000 + seed)
    labels = _labels(data)
    states = {0: {k: v.clone() for k, v in net.state_dict().items()}}
    history, step = [], 0
    bar = tqdm(total=total, desc=f"{arch}-{objective}-s{seed}", disable=not progress, leave=False)
    net.train()
    steps_per_epoch = len(data) // cfg.batch_size
    for _ in range(cfg.epochs):
        order = torch.randperm(len(data), generator=gen)
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            batch = {"images": data.images[idx], "labels": labels[idx]}
            if text is not None:
                batch["text"] = text[idx]
            loss = _loss(net, batch, cfg, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            history.append({"step": step, "loss": loss.item()})
            if step in keep:
                states[step] = {k: v.detach().clone() for k, v in net.state_dict().items()}
            bar.update(1)
    bar.close()
    return states, history


# ----------------------------------------------------------------------------- the zoo
@dataclass
class ZooMember:
    """One trained model of the zoo, with all its checkpoints.

    Attributes:
        name: e.g. ``"vit-supervised-s0"``.
        arch, objective, seed: what it is.
        steps: checkpoint steps available (0 = random init, the last = fully trained).
        history: one dict per training step with ``step`` and ``loss``.
    """

    name: str
    arch: str
    objective: str
    seed: int
    steps: list[int]
    config: ZooConfig = field(repr=False)
    states: dict[int, dict[str, torch.Tensor]] = field(repr=False)
    history: list[dict] = field(default_factory=list, repr=False)

    def build(self, step: int | None = None) -> ZooNet:
        """The network at checkpoint ``step`` (default: the last), in eval mode."""
        step = self.steps[-1] if step is None else step
        if step not in self.states:
            raise ValueError(f"{self.name} has no checkpoint at step {step}; available steps are "
                             f"{self.steps}")
        net = build_net(self.arch, self.objective, self.config, self.seed)
        net.load_state_dict(self.states[step])
        return net.eval()


def weights_key(config: ZooConfig) -> str:
    """A digest naming the trained weights of ``config``: every knob plus the training-code
    version.

    Key caches derived from the zoo (features) with it, so they are recomputed when the zoo is.
    """
    return cache.key_digest({"version": _VERSION, **dataclasses.asdict(config)})


def _member_key(arch: str, objective: str, seed: int, cfg: ZooConfig) -> dict[str, Any]:
    knobs = {k: v for k, v in dataclasses.asdict(cfg).items()
             if k not in ("archs", "objectives", "seeds")}
    return {"version": _VERSION, "arch": arch, "objective": objective, "seed": seed, **knobs}


# Relative CPU cost of training one member, for handing the longest out first (measured with one
# thread at the book config: a ViT step costs ~1.3x a resnet10t step and ~3x an MLP step; SimCLR
# runs two augmented views per image, ~2.3x the other objectives). Only the order depends on it.
_ARCH_COST = {"vit": 1.3, "cnn": 1.0, "mlp": 0.45}
_OBJECTIVE_COST = {"simclr": 2.3}


def _training_cost(arch: str, objective: str) -> float:
    return _ARCH_COST[arch] * _OBJECTIVE_COST.get(objective, 1.0)


@functools.lru_cache(maxsize=1)
def _training_data(n_train: int, data_seed: int, image_size: int) -> ShapesData:
    # rendered once per process (~4 CPU s at book size) and reused by every member it trains
    return make_dataset(n_train, "id", seed=data_seed, size=image_size)


def _train_and_save(job: tuple[str, str, int, ZooConfig, str]) -> None:
    """One member trained and stored in the cache (a :func:`helpers.parallel.map_jobs` job).

    Depends only on its arguments: the training images are re-rendered from their seed and the
    caption embeddings are read from the cache the parent filled, so any process trains the
    same weights.
    """
    arch, objective, seed, config = job
    data = _training_data(config.n_train, config.data_seed, config.image_size)
    text = (caption_embeddings(data.captions, config.text_encoder)
            if objective == "caption" else None)
    states, history = train_member(arch, objective, seed, config, data, text)
    cache.save_entry("zoo", _member_key(arch, objective, seed, config),
                     {"states": states, "history": history})


def get_zoo(config: ZooConfig, progress: bool = True, workers: int = 1) -> list[ZooMember]:
    """All members of ``config`` (archs x objectives x seeds): cached ones load, missing ones
    train.

    Args:
        config: the zoo.
        progress: progress bars.
        workers: processes that train the missing members (:func:`helpers.parallel.map_jobs`);
            the weights are the same for any number.

    Returns:
        One :class:`ZooMember` per (arch, objective, seed), seeds outermost.
    """
    specs = [(a, o, s) for s in config.seeds for a in config.archs for o in config.objectives]
    entries = {sp: cache.load_entry("zoo", _member_key(*sp, config)) for sp in specs}
    missing = [sp for sp, e in entries.items() if e is None]
    if missing:
        if any(o == "caption" for _, o, _ in missing):  # cached once here, read by every worker
            data = _training_data(config.n_train, config.data_seed, config.image_size)
            caption_embeddings(data.captions, config.text_encoder, progress=progress)
        missing.sort(key=lambda sp: -_training_cost(sp[0], sp[1]))  # longest first: balance
        parallel.map_jobs(_train_and_save, [(*sp, config) for sp in missing], workers,
                          desc="zoo: training", progress=progress)
        _training_data.cache_clear()  # ~200 MB at book size; the parent needs it no more
        for sp in missing:
            entries[sp] = cache.load_entry("zoo", _member_key(*sp, config))
            if entries[sp] is None:
                raise RuntimeError(f"zoo member {sp} was trained but its cache entry cannot be "
                                   f"read back from {cache.cache_root()}; check the disk")
    members = []
    for arch, obj, seed in specs:
        entry = entries[(arch, obj, seed)]
        members.append(ZooMember(
            name=f"{arch}-{obj}-s{seed}", arch=arch, objective=obj, seed=seed,
            steps=sorted(entry["states"]),
            config=config, states=entry["states"], history=entry["history"],
        ))
    return members


@torch.no_grad()
def member_features(member: ZooMember, images: torch.Tensor, step: int | None = None,
                    batch_size: int = 256,
                    cache_key: dict | None = None) -> list[torch.Tensor]:
    """Raw per-layer features of ``member`` on ``images`` ``[N, 3, H, W]`` in [0, 1].

    Returns one tensor ``[N, D_l]`` per layer, shallow to deep: ViT block outputs at the CLS
    token, CNN stem and stage outputs averaged over space, MLP hidden activations.
    With ``cache_key`` (a dict naming the images, e.g. ``{"split": "id", "n": 512, "seed": 1}``)
    the result is stored in the shared cache under that key plus the member's training key.
    """
    if cache_key is not None:
        from helpers.features import cached_features

        step_ = member.steps[-1] if step is None else step
        key = {"what": "zoo_features",
               **_member_key(member.arch, member.objective, member.seed, member.config),
               "step": step_, "images": cache_key}
        return cached_features(key, lambda: member_features(member, images, step_, batch_size))
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be a float tensor [N, 3, H, W], got "
                         f"{getattr(images, 'shape', type(images))}")
    size = member.config.image_size
    if images.shape[-2:] != (size, size):
        raise ValueError(f"{member.name} was trained on {size}x{size} images, got "
                         f"{tuple(images.shape[-2:])}; render with make_dataset(..., size={size})")
    from helpers.features import extract_module_outputs, extract_vision_features

    net = member.build(step)
    if member.arch == "vit":
        feats = extract_vision_features(net.backbone, images, pool="cls", batch_size=batch_size,
                                        transform=False, progress=False)
        return [feats[:, i].float() for i in range(feats.shape[1])]
    outs = extract_module_outputs(net.backbone, images, net.layer_names, pool="mean",
                                  batch_size=batch_size,
                                  progress=False)
    return [o.float() for o in outs]


# ----------------------------------------------------------------------------- competence
@torch.no_grad()
def factor_accuracy(member: ZooMember, data: ShapesData,
                    step: int | None = None) -> dict[str, float]:
    """Accuracy of a supervised member's own heads per factor on ``data`` (NaN where a factor's
    true value is not one of its classes, e.g. the shape of a novel shape)."""
    if member.objective != "supervised":
        raise ValueError(f"factor_accuracy needs a supervised member, {member.name} is "
                         f"{member.objective!r}")
    net = member.build(step)
    logits = torch.cat([net.head(net(x)) for x in data.images.split(256)])
    out, start = {}, 0
    for f in FACTORS:
        k = len(FACTOR_CLASSES[f])
        pred, true = logits[:, start : start + k].argmax(1), data.labels(f)
        start += k
        out[f] = float((pred == true).float().mean())  # novel values (-1) always count as wrong
    return out


def probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                   test_y: torch.Tensor,
                   ridge: float = 1e-2) -> float:
    """Accuracy of a ridge-regression linear probe (one-hot targets, argmax).

    Args:
        train_x: ``[N, D]`` features; train_y: ``[N]`` classes in ``0..C-1``.
        test_x: ``[M, D]``; test_y: ``[M]`` (entries ``-1`` are scored as wrong).
        ridge: L2 penalty relative to the mean feature variance.
    """
    if train_x.shape[0] != train_y.shape[0] or test_x.shape[0] != test_y.shape[0]:
        raise ValueError("features and labels must have the same number of rows")
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    a = torch.cat([(train_x - mu) / sd, torch.ones(len(train_x), 1)], 1).double()
    b = torch.cat([(test_x - mu) / sd, torch.ones(len(test_x), 1)], 1).double()
    n_cls = int(train_y.max()) + 1
    y = F.one_hot(train_y, n_cls).double()
    w = torch.linalg.solve(a.T @ a + ridge * len(a) * torch.eye(a.shape[1], dtype=a.dtype),
                           a.T @ y)
    return float(((b @ w).argmax(1) == test_y).float().mean())
