"""The random-images chapter's three experiments, run on any model set.

A :class:`NoiseProbe` holds a model set (:mod:`helpers.prh.model_sets`), the model pairs to
score per group, and a function that makes an evaluation set. It runs

* :meth:`NoiseProbe.families`: every pair against its permutation null on each image set
  (in-distribution images and the noise families);
* :meth:`NoiseProbe.blend`: the same along blends from images towards noise, per seed;
* :meth:`NoiseProbe.blend_excluded`: mutual kNN along the blends with neighbours from the same
  source photograph excluded (:func:`helpers.prh.noise_photos.excluded_pair_rows`);
* :meth:`NoiseProbe.agreement`: many metric configurations on one group's pairs, with each
  pair's null draws kept, for the metric-agreement heatmaps and their null tests.

The shapes-world zoo and the real pretrained networks go through the same code, so their
numbers are comparable by construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from helpers import stats
from helpers.prh import metric_agreement as ma
from helpers.prh import model_sets as ms
from helpers.prh.noise_images import pool_pairs
from helpers.prh.noise_photos import excluded_pair_rows
from helpers.prh.zoo import ZooConfig, get_zoo, weights_key

ImageSet = Callable[..., tuple[torch.Tensor, "list[str] | None", dict]]
"""``image_set(kind, seed, t=None) -> (images, captions or None, key)``."""


def row_space(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``[N, D]`` in coordinates of its row space: ``[N, min(N, D)]`` with the same Gram.

    Every metric of this chapter (kNN sets, CKA, unbiased CKA, CKNNA) reads features only
    through inner products between rows, after centring, and ``x @ V`` (``V`` the right singular
    vectors) keeps all of them: ``(x V)(x V)^T = x x^T`` and centring commutes with ``V``. A
    layer wider than N (MobileNetV2's 1280 channels, pixels) then costs N columns in every
    permutation draw. Narrower layers are returned as they are.

    Example:
        >>> x = torch.randn(5, 40, generator=torch.Generator().manual_seed(0))
        >>> y = row_space(x)
        >>> tuple(y.shape), torch.allclose(y @ y.T, x @ x.T, atol=1e-4)
        ((5, 5), True)
    """
    if x.ndim != 2:
        raise ValueError(f"x must be [N, D], got shape {tuple(x.shape)}")
    if x.shape[1] <= x.shape[0]:
        return x
    vh = torch.linalg.svd(x.double(), full_matrices=False).Vh  # [N, D], orthonormal rows
    return (x.double() @ vh.T).to(x.dtype)


@dataclass
class NoiseProbe:
    """A model set, its pairs per group, and the image sets to probe it with.

    Attributes:
        sources: model name -> :class:`helpers.prh.model_sets.Source`.
        pair_sets: group label -> model pairs scored under that label.
        image_set: makes an evaluation set (see :data:`ImageSet`).
        feature_key: entries every feature cache key starts with (n, size, weights...).
        k: neighbours for the kNN metrics.
        text_pairs: (vision model, caption encoder) pairs scored as group ``text_group`` on sets
            that come with captions (empty: none).
        caption_features: ``(captions, seed) -> {encoder: prepared layers}``.
        text_group: group label of the text pairs.
        namespace: feature-cache folder.
    """

    sources: dict
    pair_sets: dict
    image_set: ImageSet
    feature_key: dict
    k: int = 10
    text_pairs: list = field(default_factory=list)
    caption_features: Callable | None = None
    text_group: str = "trained-text"
    namespace: str = "random_images"

    def __post_init__(self) -> None:
        named = {m for ps in self.pair_sets.values() for p in ps for m in p}
        unknown = sorted(named - set(self.sources))
        if unknown:
            raise ValueError(f"pair_sets name models not in sources: {unknown}")
        if self.text_pairs and self.caption_features is None:
            raise ValueError("text_pairs need caption_features(captions, seed) to score them")

    def features(self, names: Sequence[str], images: torch.Tensor, key: dict) -> dict:
        """Prepared features of the named sources on one image set (cached), each layer wider
        than its N rows expressed in its row space (:func:`row_space`: the same Gram)."""
        feats = ms.prepared_features(self.sources, names, images, {**self.feature_key, **key},
                                     namespace=self.namespace)
        return {name: [row_space(x) for x in layers] for name, layers in feats.items()}

    def _score(self, kind: str, seed: int, t: float | None, metrics: Sequence[str], n_perm: int,
               layer: str, groups: Sequence[str], extra: dict) -> list[pd.DataFrame]:
        imgs, caps, key = self.image_set(kind, seed=seed, t=t)
        names = list(dict.fromkeys(m for g in groups for p in self.pair_sets[g] for m in p))
        feats = self.features(names, imgs, key)
        with_text = caps is not None and bool(self.text_pairs)
        if with_text:
            feats.update(self.caption_features(caps, seed))
        cells = [(g, self.pair_sets[g]) for g in groups]
        cells += [(self.text_group, self.text_pairs)] if with_text else []
        return [ma.pair_rows(feats, pairs, metric, self.k, n_perm, layer=layer, group=g, **extra)
                for metric in metrics for g, pairs in cells]

    def families(self, sets: Sequence[str], metrics: Sequence[str], n_perm: int, seed: int = 0,
                 layer: str = "max", groups: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per (image set, metric, group, pair):
        :func:`~helpers.prh.metric_agreement.pair_rows` with a ``family`` column (the image set).
        """
        groups = list(self.pair_sets) if groups is None else list(groups)
        tables = []
        for kind in tqdm(sets, desc="image sets"):
            tables += self._score(kind, seed, None, metrics, n_perm, layer, groups,
                                  {"family": kind})
        return pd.concat(tables, ignore_index=True)

    def blend(self, levels: Sequence[float], seeds: int, metrics: Sequence[str], n_perm: int,
              layer: str = "last", groups: Sequence[str] | None = None) -> pd.DataFrame:
        """Pair rows along the blends (columns ``t`` and ``seed``), for ``seeds`` draws."""
        groups = list(self.pair_sets) if groups is None else list(groups)
        tables = []
        for seed in range(seeds):
            for t in tqdm(levels, desc=f"blend levels (seed {seed})"):
                extra = {"t": float(t), "seed": seed}
                tables += self._score("id", seed, float(t), metrics, n_perm, layer, groups, extra)
        return pd.concat(tables, ignore_index=True)

    def blend_excluded(self, levels: Sequence[float], row_groups: Sequence[int], n_perm: int,
                       layer: str = "last", groups: Sequence[str] | None = None,
                       seed: int = 0) -> pd.DataFrame:
        """Mutual-kNN pair rows along the blend of draw ``seed`` with same-group neighbours
        (crops of one photograph, ``row_groups``) excluded; columns as :meth:`blend`."""
        groups = list(self.pair_sets) if groups is None else list(groups)
        names = list(dict.fromkeys(m for g in groups for p in self.pair_sets[g] for m in p))
        tables = []
        for t in tqdm(levels, desc="blend levels, same-photo neighbours excluded"):
            imgs, _, key = self.image_set("id", seed=seed, t=float(t))
            feats = self.features(names, imgs, key)
            tables += [excluded_pair_rows(feats, self.pair_sets[g], row_groups, self.k, n_perm,
                                          layer, group=g, t=float(t), seed=seed)
                       for g in groups]
        return pd.concat(tables, ignore_index=True)

    def agreement(self, sets: Sequence[str], group: str, configs: Sequence[tuple[str, int]],
                  n_perm: int, layer: str = "last") -> dict[str, dict]:
        """Per image set: :func:`~helpers.prh.metric_agreement.agreement_maps` of ``group``'s pairs
        under every configuration, plus the scored ``table`` (null draws kept)."""
        pairs = self.pair_sets[group]
        names = list(dict.fromkeys(m for p in pairs for m in p))
        out = {}
        for kind in sets:
            imgs, _, key = self.image_set(kind, seed=0)
            feats = self.features(names, imgs, key)
            if layer == "last":  # the blog's protocol: last layer, no layer search
                feats = {n: f[-1:] for n, f in feats.items()}
            table = ma.score_pairs(feats, configs, n_perm=n_perm, seed=0, pairs=pairs,
                                   progress=True, keep_null=True)
            out[kind] = {**ma.agreement_maps(table), "table": table}
        return out


def caption_encoder_features(encoders: Sequence[str], key: dict
                             ) -> Callable[[list[str], int], dict]:
    """The ``caption_features`` of a :class:`NoiseProbe`: ``(captions, seed) -> {encoder:
    prepared layers}``, each encoder's features cached under ``{**key, "seed": seed}``
    (:func:`helpers.prh.model_sets.caption_features`)."""
    def features(captions: list[str], seed: int) -> dict:
        return {e: ms.caption_features(e, captions, {**key, "seed": seed}) for e in encoders}
    return features


def pooled(rows: pd.DataFrame, by: Sequence[str], alpha: float, n_boot: int = 2000
           ) -> pd.DataFrame:
    """Each ``by`` cell's pairs pooled against the shared null
    (:func:`helpers.prh.noise_images.pool_pairs`), with the 95% interval of the mean corrected
    score over models (:func:`group_means`) as ``low`` and ``high``."""
    table = rows.groupby(list(by), sort=False).apply(pool_pairs, alpha=alpha, include_groups=False)
    return table.join(group_means(rows, by, n_boot=n_boot)[["low", "high"]])


def pooled_curve(rows: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Blend rows pooled per (metric, group, seed, t): the curves and frontiers are read from
    it."""
    return rows.groupby(["metric", "group", "seed", "t"]).apply(
        pool_pairs, alpha=alpha, include_groups=False).reset_index()


def lookup(table: pd.DataFrame, key: tuple, column: str) -> float:
    """``table.loc[key, column]`` as a float, NaN where the row is absent (a set not run)."""
    return float(table.loc[key, column]) if key in table.index else float("nan")


def median_frontier(fronts: pd.DataFrame, group: str, metric: str) -> float:
    """Median over seeds of a group's null frontier ``t*``, a seed that never reaches the null
    counting as beyond t = 1; NaN when the median is beyond it (or no seed was run)."""
    f = fronts[(fronts.metric == metric) & (fronts.group == group)]["t*"].fillna(np.inf)
    median = float(np.median(f)) if len(f) else float("inf")
    return median if np.isfinite(median) else float("nan")


def group_means(table: pd.DataFrame, by: Sequence[str], fixed: Sequence[str] = ("pixels",),
                value: str = "corrected", n_boot: int = 2000, seed: int = 0,
                level: float = 0.95) -> pd.DataFrame:
    """Mean ``value`` per ``by`` cell with a 95% interval from resampling **models**.

    Pairs that share a model are not independent, so the interval comes from
    :func:`helpers.stats.pair_bootstrap` over the models in the cell; names in ``fixed``
    (pixels, caption encoders) are not resampled.

    Returns:
        Indexed by ``by``: ``pairs``, ``mean``, ``low``, ``high``.
    """
    rows = []
    for keys, cell in table.groupby(list(by), sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        pairs = list(zip(cell.a, cell.b))
        units = sorted({m for p in pairs for m in p} - set(fixed))
        draws = stats.pair_bootstrap(cell[value].to_numpy(), pairs, n_boot, seed, units=units)
        lo, hi = stats.interval(draws, level) if np.isfinite(draws).any() else (np.nan, np.nan)
        rows.append({**dict(zip(by, keys)), "pairs": len(cell), "mean": float(cell[value].mean()),
                     "low": lo, "high": hi})
    return pd.DataFrame(rows).set_index(list(by))


def paired_contrast(table: pd.DataFrame, by: Sequence[str], trained: str, control: str,
                    arch: dict[str, str], value: str = "corrected", n_boot: int = 2000,
                    seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Trained minus random-init **within architecture**: each trained pair (a, b) against the
    control pair of the same two architectures, bootstrapped over architectures.

    Args:
        table: pair rows with ``group``, ``a``, ``b`` and ``value``.
        by: columns naming one comparison (e.g. ``["metric", "family"]``).
        trained, control: the two groups.
        arch: model name -> architecture (a trained model and its control share one).

    Returns:
        Indexed by ``by``: ``pairs``, ``<trained> mean``, ``<control> mean``, ``difference``,
        ``low``, ``high`` (the difference's interval).
    """
    rows = []
    for keys, cell in table.groupby(list(by), sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        side = {}
        for g in (trained, control):
            c = cell[cell.group == g]
            side[g] = {tuple(sorted((arch[a], arch[b]))): v for a, b, v in zip(c.a, c.b, c[value])}
        common = sorted(set(side[trained]) & set(side[control]))
        if not common:
            raise ValueError(f"no {trained!r} pair has a {control!r} pair of the same "
                             f"architectures in cell {keys}; check arch")
        diff = np.array([side[trained][p] - side[control][p] for p in common])
        draws = stats.pair_bootstrap(diff, common, n_boot, seed)
        lo, hi = stats.interval(draws, level) if np.isfinite(draws).any() else (np.nan, np.nan)
        rows.append({**dict(zip(by, keys)), "pairs": len(common),
                     f"{trained} mean": float(np.mean([side[trained][p] for p in common])),
                     f"{control} mean": float(np.mean([side[control][p] for p in common])),
                     "difference": float(diff.mean()), "low": lo, "high": hi})
    return pd.DataFrame(rows).set_index(list(by))


def agreement_tests(maps: dict[str, dict], label: str, alpha: float = 0.05) -> pd.DataFrame:
    """Per image set: the median-rho test against the shared-shuffle null and the centred spread.

    Args:
        maps: :meth:`NoiseProbe.agreement` output.
        label: the model set's name (first index level).
        alpha: level for counting configurations whose spread beats its null.

    Returns:
        Indexed by (label, image set): ``median rho``, ``null median``, ``null 95th pct``, ``p``,
        ``median centred spread`` and ``configs whose spread beats null`` (of ``configs``).
    """
    rows = {}
    for kind, m in maps.items():
        test, spread = ma.median_rho_test(m), ma.centered_spread(m["table"])
        rows[(label, kind)] = {
            "median rho": test["observed"], "null median": test["null median"],
            "null 95th pct": test["null 95th pct"], "p": test["p_value"],
            "median centred spread": float(spread["spread ratio"].median()),
            "configs whose spread beats null": int((spread.p_value <= alpha).sum()),
            "configs": len(spread)}
    return pd.DataFrame(rows).T


def zoo_model_set(scale: str, n_images: int, image_size: int, zoo_seed: int,
                  objectives: Sequence[str], batch_size: int = 256,
                  vit_models: Sequence[str] = (), workers: int = 1) -> tuple[dict, dict, int]:
    """The chapter's controlled model set: the shapes-world zoo of ``scale`` (trained members
    of seed ``zoo_seed`` and their step-0 controls), or at full scale the hub ViTs; plus pixels.
    ``workers`` processes train the zoo members missing from the cache (``get_zoo``).

    Returns:
        ``(sources, feature_key, image_size)``: the feature key names the zoo's weights
        (:func:`helpers.prh.zoo.weights_key`), so retrained weights get new features; at full
        scale ``image_size`` is the largest ViT input.

    Raises:
        ValueError: ``image_size`` differs from the zoo's training size (the fix is named).
    """
    if vit_models:
        sources, image_size = ms.timm_sources(list(vit_models), batch_size)
        key = {"n": n_images, "size": image_size}
    else:
        config = ZooConfig.for_scale(scale)
        if image_size != config.image_size:
            raise ValueError(f"image_size={image_size} but the zoo was trained at "
                             f"{config.image_size}; set image_size={config.image_size}")
        sources = ms.zoo_sources(get_zoo(config, progress=True, workers=workers), zoo_seed,
                                 objectives, batch_size)
        key = {"n": n_images, "size": image_size, "zoo": weights_key(config)}
    sources["pixels"] = ms.pixel_source()
    return sources, key, image_size
