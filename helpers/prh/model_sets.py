"""Model sets for the random-images chapter: named feature sources in groups, with their controls.

A :class:`Source` is anything that maps images ``[N, 3, H, W]`` in [0, 1] to a list of per-layer
features ``[[N, D_l], ...]``: a trained network, its random-init copy, a pretrained network, or
the raw pixels. Sources carry a **group** (``trained``, ``init``, ``pixels``, ``pretrained``,
``random-init``) and an architecture, so :func:`group_pairs` can pair them within or between
groups, and :func:`prepared_features` extracts, caches (:func:`helpers.features.cached_features`)
and prepares (:func:`helpers.alignment.prepare`) every source's layers for one image set.

Example:
    >>> import torch
    >>> sources = {"pixels": pixel_source(),
    ...            "half": Source("trained", "half", lambda x: [x.flatten(1)[:, ::2]], arch="a")}
    >>> group_pairs(sources, "trained", "pixels")
    [('half', 'pixels')]
    >>> feats = prepared_features(sources, list(sources), torch.rand(6, 3, 4, 4), {"kind": "t"},
    ...                           cache=False)
    >>> [len(f) for f in feats.values()], tuple(feats["half"][0].shape)
    ([1, 1], (6, 24))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from helpers import alignment
from helpers.cache import key_digest
from helpers.features import cached_features, extract_language_features, load_text_encoder

Extract = Callable[[torch.Tensor], list]


@dataclass(frozen=True)
class Source:
    """One feature source: its group, a cache identity, the extractor and what it is.

    Attributes:
        group: ``trained`` | ``init`` | ``pixels`` | ``pretrained`` | ``random-init`` (any word).
        key: what names its weights in the feature cache (e.g. ``"vit-supervised-s0@93"``).
        extract: images ``[N, 3, H, W]`` -> list of raw per-layer features ``[N, D_l]``.
        arch: architecture (pairs within a group skip same-architecture pairs when set).
        objective: training objective, if any.
        cacheable: False for sources too cheap to cache (pixels).
    """

    group: str
    key: str
    extract: Extract
    arch: str | None = None
    objective: str | None = None
    cacheable: bool = True


def pixel_source() -> Source:
    """The raw image as a one-layer model: the pixel-space baseline."""
    return Source("pixels", "pixels", lambda x: [x.flatten(1).float()], cacheable=False)


def zoo_sources(zoo: Sequence, seed: int, objectives: Sequence[str], batch_size: int = 256
                ) -> dict[str, Source]:
    """Trained zoo members of one seed, each with its own random-init control.

    A member's initial weights depend on its seed *and* its objective
    (:func:`helpers.prh.zoo.build_net`), so each member's step-0 checkpoint is its own control:
    the same architecture and starting point, never trained.

    Args:
        zoo: :class:`helpers.prh.zoo.ZooMember` list (``get_zoo``).
        seed: the seed whose members are used.
        objectives: objectives kept.
        batch_size: images per forward pass.

    Returns:
        ``{member name: Source(trained)}`` then ``{"<member name>-init": Source(init)}``.
    """
    from helpers.prh.zoo import member_features

    if not any(m.seed == seed for m in zoo):
        raise ValueError(f"seed={seed} is not a trained seed; choose from "
                         f"{sorted({m.seed for m in zoo})}")

    def run(member, step=None) -> Extract:
        return lambda x: member_features(member, x, step=step, batch_size=batch_size)

    used = [m for m in zoo if m.seed == seed and m.objective in objectives]
    out = {m.name: Source("trained", f"{m.name}@{m.steps[-1]}", run(m), m.arch, m.objective)
           for m in used}
    out.update({f"{m.name}-init": Source("init", f"{m.name}@0", run(m, 0), m.arch, m.objective)
                for m in used})
    return out


def names_in(sources: dict[str, Source], group: str) -> list[str]:
    """Names of the sources in ``group``, in insertion order."""
    return [n for n, s in sources.items() if s.group == group]


def group_pairs(sources: dict[str, Source], group_a: str, group_b: str) -> list[tuple[str, str]]:
    """Model pairs between two groups, or within one.

    Within a group only pairs of *different* architectures are kept (when architectures are
    known), because same-architecture members can share initial weights and would align partly
    through their common starting point. Between groups every combination is kept.
    """
    a, b = names_in(sources, group_a), names_in(sources, group_b)
    if not a or not b:
        raise ValueError(f"no sources in group {group_a!r} or {group_b!r}; groups present: "
                         f"{sorted({s.group for s in sources.values()})}")
    if group_a != group_b:
        return [(x, y) for x in a for y in b]
    pairs = [(a[i], a[j]) for i in range(len(a)) for j in range(i + 1, len(a))]
    return [(x, y) for x, y in pairs
            if sources[x].arch is None or sources[x].arch != sources[y].arch]


def prepared_features(sources: dict[str, Source], names: Sequence[str], images: torch.Tensor,
                      key: dict[str, Any], namespace: str = "random_images", cache: bool = True
                      ) -> dict[str, list[torch.Tensor]]:
    """Cached, prepared per-layer features ``{name: [[N, D_l], ...]}`` of the named sources.

    Args:
        sources: the model set.
        names: which sources to run.
        images: ``[N, 3, H, W]`` in [0, 1].
        key: everything naming ``images`` (kind, seed, size, n...); each source's cache key is
            ``{"chapter": namespace, "model": source.key, **key}``.
        namespace: cache folder and the key's ``chapter`` entry.
        cache: False to skip the cache (tests, cheap sources).

    Returns:
        Features clamped at the 0.95 quantile of |x| and L2-normalised per layer (PRH's protocol).
    """
    unknown = [n for n in names if n not in sources]
    if unknown:
        raise ValueError(f"names {unknown} are not in sources; choose from {list(sources)}")
    out = {}
    for name in names:
        src = sources[name]
        full_key = {"chapter": namespace, "model": src.key, **key}
        if cache and src.cacheable:
            raw = cached_features(full_key, lambda: src.extract(images), namespace=namespace)
        else:
            raw = src.extract(images)
        out[name] = alignment.prepare(list(raw))
    return out


def caption_features(encoder: str, captions: Sequence[str], key: dict[str, Any],
                     namespace: str = "random_images") -> list[torch.Tensor]:
    """Prepared per-layer features of a caption encoder (embeddings + every layer), cached.

    The cache key holds ``{"chapter": namespace, "text": encoder, "captions": digest, **key}``.
    """
    def compute():
        model, tok = load_text_encoder(encoder)
        return extract_language_features(model, tok, list(captions), batch_size=64, progress=False)

    full_key = {"chapter": namespace, "text": encoder, **key,
                "captions": key_digest({"c": list(captions)})}
    raw = cached_features(full_key, compute, namespace=namespace)
    return alignment.prepare(list(raw.unbind(1)))


def timm_sources(models: Sequence[str], batch_size: int = 256) -> tuple[dict[str, Source], int]:
    """Full scale: pretrained timm ViTs (hub names or local folders) as ``pretrained`` sources.

    Returns:
        The sources and the largest input side among the models (noise is generated at it; each
        model's own transform resizes).
    """
    from helpers.features import extract_vision_features, load_timm_model
    from helpers.prh.noise_images import model_input_size

    def run(model) -> Extract:
        return lambda x: list(extract_vision_features(model, x, batch_size=batch_size,
                                                      progress=False).unbind(1))

    out, sizes = {}, []
    for name in models:
        model = load_timm_model(name)  # hub name (network) or local folder
        sizes.append(model_input_size(model)[0])
        out[str(name)] = Source("pretrained", str(name), run(model))
    return out, max(sizes)


def pretrained_sources(names: Sequence[str], input_size: int, batch_size: int = 32,
                       init_seed: int = 0) -> dict[str, Source]:
    """Offline pretrained CNNs (:mod:`helpers.pretrained`) and their random-init copies.

    Each network is loaded only when its features are first computed (a warm cache loads none).
    Features are every block's output, spatially mean-pooled, with each model's own
    preprocessing at ``input_size`` pixels.

    Returns:
        ``{name: Source(pretrained)}`` then ``{"<name>-init": Source(random-init)}``; each
        source's ``arch`` is the registry name, so a pair of copies is matched by architecture.
    """
    from helpers import pretrained as pt

    loaded: dict[tuple[str, bool], torch.nn.Module] = {}

    def run(name: str, trained: bool) -> Extract:
        def extract(images: torch.Tensor) -> list:
            if (name, trained) not in loaded:
                loaded[(name, trained)] = pt.load_pretrained(name, trained, seed=init_seed)
            return pt.block_features(loaded[(name, trained)], images, name,
                                     input_size=input_size, batch_size=batch_size)
        return extract

    out = {}
    for name in names:
        weights = pt.REGISTRY[name].weight_file if name in pt.REGISTRY else None
        if weights is None:
            raise ValueError(f"unknown pretrained model {name!r}; choose from "
                             f"{sorted(pt.REGISTRY)}")
        out[name] = Source("pretrained", f"{name}:{weights}@{input_size}", run(name, True),
                           arch=name,
                           objective=pt.REGISTRY[name].objective)
    for name in names:
        out[f"{name}-init"] = Source("random-init", f"{name}:init{init_seed}@{input_size}",
                                     run(name, False), arch=name)
    return out


def standard_pairs(sources: dict[str, Source], groups: Sequence[str]) -> dict[str, list]:
    """The chapter's pair sets: within each group (:func:`group_pairs`), then each group against
    the pixel baseline (``"<group>-pixels"``, when a ``pixels`` source exists)."""
    pairs = {g: group_pairs(sources, g, g) for g in groups}
    if "pixels" in {s.group for s in sources.values()}:
        pairs.update({f"{g}-pixels": group_pairs(sources, g, "pixels") for g in groups})
    return pairs
