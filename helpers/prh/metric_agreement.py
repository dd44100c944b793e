"""Do alignment metrics agree? Scores of many model pairs under many metric configurations.

A **metric configuration** is a (metric, k) pair such as ``("mutual_knn", 10)``. For a set of
models, :func:`score_pairs` scores every model pair under every configuration, both raw and
chance-corrected against a permutation null, and :func:`agreement` Spearman-correlates the
configurations with model pairs as observations (the blog's 20x20 heatmap). Per-model scores
are the max over layer pairs (PRH's layer search), and the null takes the same max over
layer pairs for each shuffled pairing, so layer search cannot inflate the corrected score.

Layers go through the batched kernels of :mod:`helpers.alignment`, each model against only
its partners' layers (the unordered pairs of a model set score each layer pair once, not the
full product with itself), with the same shuffles for every pair.

Example:
    >>> import torch
    >>> from helpers import alignment
    >>> g = torch.Generator().manual_seed(0)
    >>> base = torch.randn(80, 8, generator=g)
    >>> feats = {m: alignment.prepare([base @ torch.randn(8, 16, generator=g)]) for m in "abc"}
    >>> table = score_pairs(feats, [("mutual_knn", 5), ("cka", 5)], n_perm=3)
    >>> sorted(set(table["config"])), len(table)
    (['cka', 'mutual_knn@5'], 6)
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from helpers import alignment

KNN_LIKE = ("mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cknna")
"""Metrics whose value depends on k (the others ignore it)."""


def config_name(metric: str, k: int) -> str:
    """``"mutual_knn@10"`` for k-dependent metrics, the bare metric name otherwise."""
    return f"{metric}@{k}" if metric in KNN_LIKE else metric


def _check(feats: dict, configs: Sequence[tuple[str, int]], min_models: int = 2) -> list[str]:
    if not isinstance(feats, dict) or len(feats) < min_models:
        raise ValueError(f"feats must be a dict {{model name: list of prepared [N, D_l] tensors}} "
                         f"with at least {min_models} model(s)")
    ns = {name: [int(t.shape[0]) for t in layers] for name, layers in feats.items()}
    flat = {n for v in ns.values() for n in v}
    if len(flat) != 1:
        raise ValueError(f"every layer of every model must have the same number of rows N, got "
                         f"{ns}")
    if not configs:
        raise ValueError("configs must be a non-empty list of (metric, k) pairs, e.g. "
                         "[('mutual_knn', 10)]")
    for metric, k in configs:
        if metric not in alignment.METRICS:
            raise ValueError(f"unknown metric {metric!r} in configs; use one of "
                             f"{alignment.METRICS}")
    return list(feats)


def _layers(feats: dict) -> tuple[list[torch.Tensor], dict[str, tuple[int, int]]]:
    layers, bounds, start = [], {}, 0
    for name, ls in feats.items():
        layers += list(ls)
        bounds[name] = (start, start + len(ls))
        start += len(ls)
    return layers, bounds


def _pair_blocks(feats_a: dict, feats_b: dict, pairs: list[tuple[str, str]], metric: str, k: int,
                 n_perm: int, seed: int):
    """Yield ``(a, b, observed [La, Lb], null [n_perm, La, Lb] or None)`` for every pair.

    When every model of ``feats_a`` is paired with every model of ``feats_b``, or the metric is
    Gram-based, one batched call scores all layer pairs. Otherwise (e.g. the unordered pairs of one
    model set, where the full product would also score each model with itself and every pair twice)
    each model of side a is scored only against the layers of its partners, one call per model. The
    seed restarts in every call, so shuffle j is the same permutation for every pair either way.
    """
    def scores(xa, xb):
        if n_perm > 0:
            res = alignment.permutation_null(xa, xb, metric, topk=k, n_perm=n_perm, seed=seed,
                                             reduce=None)
            return res.observed, res.null  # [La, Lb], [n_perm, La, Lb]
        return alignment.layer_scores(xa, xb, metric, topk=k), None

    partners: dict[str, list[str]] = {}
    for a, b in pairs:
        partners.setdefault(a, [])
        if b not in partners[a]:
            partners[a].append(b)
    # Gram metrics rebuild the shuffled side's Grams on every shuffle, so splitting the call
    # would rebuild them once per model of side a: there the full product is cheaper.
    full = (metric in ("cka", "unbiased_cka")
            or all(len(bs) == len(feats_b) for bs in partners.values()))
    groups = ([(list(partners), list(feats_b))] if full else
              [([a], bs) for a, bs in partners.items()])
    blocks = {}
    for side_a, side_b in groups:
        xa, ba = _layers({m: feats_a[m] for m in side_a})
        xb, bb = _layers({m: feats_b[m] for m in side_b})
        obs, null = scores(xa, xb)
        for a in side_a:
            for b in partners[a]:
                (a0, a1), (b0, b1) = ba[a], bb[b]
                blocks[(a, b)] = (obs[a0:a1, b0:b1],
                                  None if null is None else null[:, a0:a1, b0:b1])
    for a, b in pairs:
        yield (a, b, *blocks[(a, b)])


def block_scores(
    feats_a: dict[str, list[torch.Tensor]],
    feats_b: dict[str, list[torch.Tensor]],
    metric: str = "mutual_knn",
    k: int = 10,
    n_perm: int = 20,
    seed: int = 0,
    pairs: Sequence[tuple[str, str]] | None = None,
    keep_null: bool = False,
) -> pd.DataFrame:
    """Layer-pair-max score of every (model in ``feats_a``, model in ``feats_b``) pair, with its
    null.

    Layers go through batched calls (one for a full product; otherwise one per model of
    ``feats_a`` against its partners' layers, so no unneeded layer pair is scored); a model
    pair's score is the max over its block of layer pairs, and each shuffled pairing gives one
    null draw of that same max, so layer search is calibrated.

    Args:
        feats_a, feats_b: model name -> list of prepared layers ``[N, D_l]`` (same N, same rows).
        metric, k: the configuration (k ignored by metrics outside :data:`KNN_LIKE`).
        n_perm: shuffled pairings (0: raw scores only, NaN null columns).
        seed: seed of the permutations.
        pairs: which (a, b) pairs to keep (default: the full product).
        keep_null: add a ``null`` column holding each pair's null draws ``[n_perm]`` (float64);
            draw j uses the same shuffle for every pair, so draws can be pooled over pairs.

    Returns:
        One row per pair: ``model_a``, ``model_b``, ``config``, ``metric``, ``k``, ``raw``,
        ``layer_a``, ``layer_b`` (argmax layer indices), ``null_mean``, ``null_std``, ``p_value``,
        ``corrected`` = (raw - null_mean) / (1 - null_mean) (0 at chance, 1 at a perfect score).
    """
    _check(feats_a, [(metric, k)], min_models=1)
    _check(feats_b, [(metric, k)], min_models=1)
    if n_perm < 0:
        raise ValueError(f"n_perm must be >= 0, got {n_perm}")
    pairs = list(itertools.product(feats_a, feats_b)) if pairs is None else list(pairs)
    unknown = {a for a, _ in pairs} - set(feats_a) | {b for _, b in pairs} - set(feats_b)
    if unknown:
        raise ValueError(f"pairs name models not in feats: {sorted(unknown)}")
    rows = []
    for a, b, obs, null in _pair_blocks(feats_a, feats_b, pairs, metric, k, n_perm, seed):
        raw, (i, j) = alignment.best(obs)
        row = {"model_a": a, "model_b": b, "config": config_name(metric, k), "metric": metric,
               "k": k,
               "raw": raw, "layer_a": i, "layer_b": j}
        if null is not None:
            draws = null.flatten(1).amax(1).double()  # layer-pair max per shuffle
            mean = float(draws.mean())
            row.update(null_mean=mean, null_std=float(draws.std()) if n_perm > 1 else float("nan"),
                       p_value=float((1 + (draws >= raw).sum()) / (1 + n_perm)),
                       corrected=(raw - mean) / (1 - mean))
            if keep_null:
                row["null"] = draws
        else:
            row.update(null_mean=float("nan"), null_std=float("nan"), p_value=float("nan"),
                       corrected=float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def score_pairs(
    feats: dict[str, list[torch.Tensor]],
    configs: Sequence[tuple[str, int]],
    n_perm: int = 20,
    seed: int = 0,
    pairs: Sequence[tuple[str, str]] | None = None,
    progress: bool = False,
    keep_null: bool = False,
) -> pd.DataFrame:
    """Score every unordered model pair under every configuration, raw and chance-corrected.

    Args:
        feats: model name -> list of prepared layers ``[N, D_l]`` (see
        :func:`helpers.alignment.prepare`);
            pass a one-element list to score a single chosen layer (no layer search).
        configs: (metric, k) pairs; k is ignored by metrics outside :data:`KNN_LIKE`.
        n_perm: shuffled pairings per configuration (0: raw scores only, NaN corrections).
        seed: seed of the permutations.
        pairs: which (model_a, model_b) pairs to keep (default: all unordered pairs, in order).
        progress: tqdm bar over configurations.
        keep_null: keep each pair's null draws in a ``null`` column (see :func:`block_scores`).

    Returns:
        The rows of :func:`block_scores` for every configuration, stacked.
    """
    names = _check(feats, configs)
    pairs = list(itertools.combinations(names, 2)) if pairs is None else list(pairs)
    tables = [block_scores(feats, feats, metric, k, n_perm, seed, pairs, keep_null)
              for metric, k in tqdm(configs, desc="metric configs", disable=not progress)]
    return pd.concat(tables, ignore_index=True)


def agreement(table: pd.DataFrame, value: str = "raw", method: str = "spearman") -> pd.DataFrame:
    """Correlation between configurations ``[C, C]``, with model pairs as the observations.

    Args:
        table: the output of :func:`score_pairs`.
        value: "raw" or "corrected".
        method: "spearman" (the blog's), "pearson" or "kendall".

    A configuration that is constant over pairs (e.g. mutual kNN at k = N - 1) gives NaN rows,
    as in the blog's heatmap.
    """
    if value not in ("raw", "corrected"):
        raise ValueError(f"value must be 'raw' or 'corrected', got {value!r}")
    missing = {"model_a", "model_b", "config", value} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}; pass the output of score_pairs")
    order = list(dict.fromkeys(table["config"]))
    wide = table.pivot_table(index=["model_a", "model_b"], columns="config", values=value)[order]
    if len(wide) < 3:
        raise ValueError(f"need at least 3 model pairs to correlate configurations, got "
                         f"{len(wide)}")
    return wide.corr(method=method)


def parse_config(name: str, default_k: int = 10) -> tuple[str, int]:
    """``"mutual_knn@10"`` -> ``("mutual_knn", 10)``; a bare name gets ``default_k``."""
    metric, _, k = name.partition("@")
    if metric not in alignment.METRICS:
        raise ValueError(f"unknown metric {metric!r} in configuration {name!r}; use one of "
                         f"{alignment.METRICS}")
    if k and not k.isdigit():
        raise ValueError(f"configuration {name!r} must look like 'metric@k' with an integer k")
    return metric, int(k) if k else default_k


def null_agreement(table: pd.DataFrame, method: str = "spearman") -> "np.ndarray":
    """Correlations between configurations under the permutation null ``[n_perm, C, C]``.

    Draw j of every configuration and pair is scored as if it were the observed score, and the
    configurations are correlated over pairs: the correlations that chance alone produces.
    ``table`` is the output of :func:`score_pairs` with ``keep_null=True``.
    """
    import numpy as np

    if "null" not in table.columns:
        raise ValueError("table has no null draws; call score_pairs(..., keep_null=True)")
    n_perm = len(table["null"].iloc[0])
    draws = torch.stack([torch.as_tensor(d) for d in table["null"]])  # [rows, n_perm]
    return np.stack([agreement(table.assign(raw=draws[:, j].numpy()), "raw", method).to_numpy()
                     for j in range(n_perm)])


def mean_off_diagonal(corr: pd.DataFrame) -> float:
    """Mean of the off-diagonal entries of a correlation matrix (NaNs skipped)."""
    c = torch.tensor(corr.to_numpy(dtype=float))
    mask = ~torch.eye(len(c), dtype=torch.bool)
    v = c[mask]
    return float(v[~torch.isnan(v)].mean())


def pair_rows(feats: dict[str, list[torch.Tensor]], pairs: Sequence[tuple[str, str]], metric: str,
              k: int, n_perm: int, layer: str = "max", perm_seed: int = 0, **extra
              ) -> pd.DataFrame:
    """One row per pair with its permutation null: the table the noise and blend sections pool.

    Args:
        feats: model name -> prepared layers.
        pairs: (a, b) model pairs.
        metric, k, n_perm: as :func:`block_scores` (draw j is the same shuffle for all pairs).
        perm_seed: seed of the permutations (``seed`` stays free as an extra column).
        layer: ``"max"`` scores the max over layer pairs (the null takes the same max);
            ``"last"`` scores the last layers only (the source blog's protocol).
        extra: constant columns to add (e.g. ``group="trained"``, ``family="uniform"``).

    Returns:
        :func:`block_scores` rows renamed ``a``, ``b``, ``observed``, with ``null`` draws kept.
    """
    if layer not in ("max", "last"):
        raise ValueError(f"layer must be 'max' or 'last', got {layer!r}")
    pick = (lambda ls: ls) if layer == "max" else (lambda ls: ls[-1:])
    t = block_scores({a: pick(feats[a]) for a, _ in pairs}, {b: pick(feats[b]) for _, b in pairs},
                     metric, k, n_perm=n_perm, seed=perm_seed, pairs=pairs, keep_null=True)
    return t.rename(columns={"model_a": "a", "model_b": "b", "raw": "observed"}).assign(**extra)


def off_diagonal(matrix) -> np.ndarray:
    """The off-diagonal entries of a square matrix (array or DataFrame), flattened."""
    v = np.asarray(matrix, dtype=float)
    if v.ndim != 2 or v.shape[0] != v.shape[1]:
        raise ValueError(f"matrix must be square, got shape {v.shape}")
    return v[~np.eye(len(v), dtype=bool)]


def agreement_maps(table: pd.DataFrame) -> dict:
    """Raw, chance-corrected and null agreement of a :func:`score_pairs` table
    (``keep_null=True``).

    Returns:
        ``raw`` and ``calibrated`` ``[C, C]`` DataFrames, ``null`` ``[n_perm, C, C]`` and
        ``spread``: per configuration, the std over pairs of the raw score over the mean null std.
    """
    spread = table.groupby("config", sort=False).apply(
        lambda d: d.raw.std() / d.null_std.mean(), include_groups=False)
    return {"raw": agreement(table, "raw"), "calibrated": agreement(table, "corrected"),
            "null": null_agreement(table), "spread": spread}


def agreement_summary(maps: dict) -> pd.Series:
    """Medians of :func:`agreement_maps`: raw and calibrated rho, the null's |rho|, spread
    ratio."""
    null_abs = np.abs(np.stack([off_diagonal(m) for m in maps["null"]]))
    return pd.Series({
        "median rho, raw": np.nanmedian(off_diagonal(maps["raw"])),
        "median rho, calibrated": np.nanmedian(off_diagonal(maps["calibrated"])),
        "median |rho| under the null": np.nanmedian(null_abs),
        "95th pct |rho| under the null": np.nanpercentile(null_abs, 95),
        "median spread ratio (raw std over pairs / null std)": float(maps["spread"].median())})


def median_rho_test(maps: dict) -> dict[str, float]:
    """Is the median correlation between configurations above what chance alone gives?

    The null is the same statistic on each permutation draw (every configuration and pair
    scored on the same shuffle), so configurations that share a shuffle correlate under the
    null too, and that shared part is not counted as agreement.

    Args:
        maps: :func:`agreement_maps` output (``raw`` and ``null`` ``[n_perm, C, C]``).

    Returns:
        ``observed`` (median off-diagonal rho), ``null median`` and ``null 95th pct`` (of the
        per-draw median), ``p_value`` = (1 + #{null >= observed}) / (1 + n_perm), ``n_perm``.
    """
    observed = float(np.nanmedian(off_diagonal(maps["raw"])))
    null = np.array([np.nanmedian(off_diagonal(m)) for m in maps["null"]])
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or null.size == 0:
        nan = float("nan")
        return {"observed": observed, "null median": nan, "null 95th pct": nan, "p_value": nan,
                "n_perm": int(null.size)}
    return {"observed": observed, "null median": float(np.median(null)),
            "null 95th pct": float(np.percentile(null, 95)),
            "p_value": float((1 + (null >= observed).sum()) / (1 + null.size)),
            "n_perm": int(null.size)}


def centered_spread(table: pd.DataFrame) -> pd.DataFrame:
    """Do the pairs differ by more than chance, once each pair's own chance level is removed?

    The raw spread over pairs counts differences in chance level between pairs (wider layers,
    hubness) as if they were signal. Here each pair's score is centred on its own null mean,
    and the spread of the centred scores over pairs is divided by the null's typical spread
    ``sqrt(mean over pairs of null variance)``. The same ratio on each permutation draw
    (draw minus its pair's null mean) gives the ratio's null.

    Args:
        table: :func:`score_pairs` output with ``keep_null=True``.

    Returns:
        Per configuration: ``spread ratio`` (observed), ``null 95th pct`` and ``p_value``
        (add-one, over the draws).
    """
    if "null" not in table.columns:
        raise ValueError("table has no null draws; call score_pairs(..., keep_null=True)")
    rows = {}
    for config, d in table.groupby("config", sort=False):
        if len(d) < 3:
            raise ValueError(f"config {config!r} has {len(d)} pairs; a spread needs at least 3")
        null = np.stack([np.asarray(x, dtype=float) for x in d["null"]])  # [pairs, n_perm]
        mean = null.mean(1, keepdims=True)
        scale = np.sqrt(null.var(1, ddof=1).mean())
        obs = float(np.std(d["raw"].to_numpy() - mean[:, 0], ddof=1) / scale)
        draws = (null - mean).std(0, ddof=1) / scale
        rows[config] = {"spread ratio": obs, "null 95th pct": float(np.percentile(draws, 95)),
                        "p_value": float((1 + (draws >= obs).sum()) / (1 + draws.size))}
    return pd.DataFrame(rows).T


def _wide(table: pd.DataFrame, value: str) -> tuple[np.ndarray, list[tuple[str, str]], list[str]]:
    """Scores as ``[pairs, configs]`` with the pair list and configuration order."""
    order = list(dict.fromkeys(table["config"]))
    wide = table.pivot_table(index=["model_a", "model_b"], columns="config", values=value)[order]
    return wide.to_numpy(dtype=float), list(wide.index), order


def _mean_spearman(scores: np.ndarray) -> float:
    """Mean off-diagonal Spearman correlation between the columns of ``[pairs, configs]``.

    Columns constant over pairs are skipped (their correlation is undefined); NaN when fewer
    than 3 rows or 2 usable columns remain.
    """
    from scipy.stats import rankdata

    if scores.shape[0] < 3:
        return float("nan")
    ranks = rankdata(scores, axis=0)
    ranks = ranks[:, ranks.std(0) > 0]
    if ranks.shape[1] < 2:
        return float("nan")
    return float(off_diagonal(np.corrcoef(ranks, rowvar=False)).mean())


def model_bootstrap_agreement(table: pd.DataFrame, value: str = "raw", n_boot: int = 1000,
                              seed: int = 0) -> np.ndarray:
    """Bootstrap draws of the mean agreement, resampling **models** (pairs share models).

    Each draw resamples the models with replacement and keeps every pair of two different
    models drawn (a model drawn twice brings its pairs twice); the configurations are then
    Spearman-correlated over those pairs, as in :func:`agreement`.

    Args:
        table: :func:`score_pairs` output (every unordered pair of the models it names).
        value: "raw" or "corrected".
        n_boot: resamples.
        seed: seed of the resampling.

    Returns:
        ``[n_boot]`` mean off-diagonal correlations; NaN for draws with under 3 distinct pairs.
    """
    if value not in ("raw", "corrected"):
        raise ValueError(f"value must be 'raw' or 'corrected', got {value!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    scores, pairs, _ = _wide(table, value)
    models = sorted({m for p in pairs for m in p})
    row_of = {frozenset(p): i for i, p in enumerate(pairs)}
    rng = np.random.default_rng(seed)
    draws = np.full(n_boot, np.nan)
    for b in range(n_boot):
        pick = rng.choice(len(models), size=len(models), replace=True)
        rows = [row_of[key] for i, j in itertools.combinations(pick, 2)
                if (key := frozenset((models[i], models[j]))) in row_of and i != j]
        if len(set(rows)) >= 3:
            draws[b] = _mean_spearman(scores[rows])
    return draws


def agreement_test(table: pd.DataFrame, value: str = "raw", n_boot: int = 1000,
                   seed: int = 0) -> dict[str, float]:
    """The mean agreement between configurations, its permutation null and a model bootstrap.

    The null scores every pair on permutation draw j as if it were observed (raw: the draw;
    corrected: the draw corrected by its pair's null mean), so configurations that share a
    shuffle still correlate by chance and that part is not counted as agreement.

    Args:
        table: :func:`score_pairs` output with ``keep_null=True``.
        value: "raw" or "corrected".
        n_boot, seed: as :func:`model_bootstrap_agreement`.

    Returns:
        ``mean`` (observed mean off-diagonal Spearman), ``ci_low``, ``ci_high`` (95% bootstrap
        over models), ``null_mean``, ``null_95`` (95th percentile of the null mean),
        ``p_value`` (add-one, one-sided: agreement above chance), ``n_perm``, ``n_pairs``,
        ``n_models``.
    """
    if "null" not in table.columns:
        raise ValueError("table has no null draws; call score_pairs(..., keep_null=True)")
    scores, pairs, order = _wide(table, value)
    observed = _mean_spearman(scores)
    null_rows = table.set_index(["model_a", "model_b", "config"])["null"]
    means = table.set_index(["model_a", "model_b", "config"])["null_mean"]
    draws = np.stack([[np.asarray(null_rows[(a, b, c)], dtype=float) for c in order]
                      for a, b in pairs])  # [pairs, configs, n_perm]
    if value == "corrected":
        m = np.array([[means[(a, b, c)] for c in order] for a, b in pairs])[..., None]
        draws = (draws - m) / (1 - m)
    null = np.array([_mean_spearman(draws[:, :, j]) for j in range(draws.shape[2])])
    null = null[np.isfinite(null)]
    boot = model_bootstrap_agreement(table, value, n_boot, seed)
    lo, hi = (np.nanpercentile(boot, [2.5, 97.5]) if np.isfinite(boot).any()
              else (float("nan"), float("nan")))
    ok = np.isfinite(observed) and null.size > 0
    nan = float("nan")
    return {"mean": observed, "ci_low": float(lo), "ci_high": float(hi),
            "null_mean": float(null.mean()) if null.size else nan,
            "null_95": float(np.percentile(null, 95)) if null.size else nan,
            "p_value": float((1 + (null >= observed).sum()) / (1 + null.size)) if ok else nan,
            "n_perm": int(null.size), "n_pairs": len(pairs),
            "n_models": len({m for p in pairs for m in p})}
