"""Words and verdicts of the random-images chapter, chosen from the numbers.

Every sentence the chapter glues into its prose, and every row of its closing verdict table, is
built here from the chapter's tables, so each reads correctly for every outcome and the tests
can check them all (:mod:`tests.prh.test_noise_report`). Thresholds are arguments: the chapter
states them before any number is computed.

Example:
    >>> counted(["uniform"], 6)
    '1 of 6 (uniform)'
    >>> frontier_phrase(0.5, [0.0, 0.25, 0.5, 0.75, 1.0])
    'become indistinguishable from chance between t = 0.25 and t = 0.50'
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from helpers import chapter as ch
from helpers.prh import noise_images as ni
from helpers.prh.noise_probe import median_frontier


def check_parameters(families: Sequence[str], blend_family: str, blend_layer: str,
                     real_models: Sequence[str], real_blend_levels: int) -> None:
    """Reject chapter parameters that cannot run, naming the parameter and the fix."""
    if blend_layer not in ("last", "max"):
        raise ValueError(f"blend_layer must be 'last' or 'max', got {blend_layer!r}")
    bad = [f for f in list(families) + [blend_family] if f not in ni.FAMILIES]
    if bad:
        raise ValueError(f"unknown noise families {bad}; choose from {ni.FAMILIES}")
    if real_models and len(real_models) < 3:
        raise ValueError("real_models needs at least 3 networks (3 pairs), got "
                         f"{list(real_models)}")
    if real_blend_levels < 2:
        raise ValueError("real_blend_levels must be >= 2 (t = 0 and t = 1), got "
                         f"{real_blend_levels}")


def thresholds(alpha: float, families: dict[str, tuple[int, int | None]]) -> dict[str, float]:
    """Bonferroni threshold of each family of tests: ``{name: alpha / n_tests}``.

    Args:
        alpha: family-wise level.
        families: name -> (number of tests, permutations per test or None); a permutation
            count whose p floor is not below its threshold is refused
            (:func:`helpers.chapter.bonferroni`).
    """
    return {name: ch.bonferroni(alpha, n, perm) for name, (n, perm) in families.items()}


def counted(names: Sequence[str], total: int) -> str:
    """``"2 of 6 (collage, gaussian)"``; ``"0 of 6"`` when none."""
    names = list(names)
    return f"{len(names)} of {total}" + (f" ({', '.join(names)})" if names else "")


def side_of(p: float, threshold: float) -> str:
    """``"distinguishable from chance"`` when ``p <= threshold``, else ``"indistinguishable..."``;
    ``"undefined"`` for NaN."""
    if not math.isfinite(p):
        return "undefined"
    return ("distinguishable from chance" if p <= threshold
            else "indistinguishable from chance")


def rho_words(row: pd.Series, n_perm: int, threshold: float) -> str:
    """One image set's metric-agreement test in words (a row of
    :func:`helpers.prh.noise_probe.agreement_tests`)."""
    if not math.isfinite(row["p"]):
        return "undefined (too few pairs)"
    above = "above" if row["p"] <= threshold else "not above"
    return (f"median rho {row['median rho']:.2f} against a null median of "
            f"{row['null median']:.2f} (95th percentile {row['null 95th pct']:.2f}; "
            f"{ch.format_p(row['p'], n_perm)}, {above} chance at {threshold:.3g}; "
            f"{int(row['configs whose spread beats null'])} of {int(row['configs'])} "
            "configurations separate the pairs beyond chance)")


def agreement_supported(id_row: pd.Series, noise_row: pd.Series, threshold: float) -> bool | None:
    """"Metrics stop agreeing on noise": True if they agree above chance in distribution and not
    on noise, False if they agree above chance on both, None if there is no in-distribution
    agreement to lose or a test is undefined."""
    p_id, p_noise = float(id_row["p"]), float(noise_row["p"])
    if not (math.isfinite(p_id) and math.isfinite(p_noise)) or p_id > threshold:
        return None
    return bool(p_noise > threshold)


def frontier_phrase(t_star: float, levels: Sequence[float]) -> str:
    """Where a sweep meets the null, in words, from its frontier ``t*`` on the grid ``levels``."""
    levels = sorted(float(v) for v in levels)
    if not math.isfinite(t_star):
        return f"stay distinguishable from chance up to pure noise (t = {levels[-1]:.2f})"
    i = int(np.argmin(np.abs(np.asarray(levels) - t_star)))
    if i == 0:
        return f"are indistinguishable from chance already at t = {levels[0]:.2f}"
    return (f"become indistinguishable from chance between t = {levels[i - 1]:.2f} and "
            f"t = {levels[i]:.2f}")


def fronts_sentence(fronts: pd.DataFrame, group: str, metrics: Sequence[str],
                    levels: Sequence[float]) -> str:
    """``"become indistinguishable ... on mutual_knn and stay ... on unbiased_cka"``."""
    return " and ".join(f"{frontier_phrase(median_frontier(fronts, group, m), levels)} on {m}"
                        for m in metrics)


def t_star_text(fronts: pd.DataFrame, group: str, metric: str) -> str:
    """``"t* = 0.75"`` or ``"no t* (distinguishable at t = 1)"`` for the verdict table."""
    t = median_frontier(fronts, group, metric)
    return f"t* = {t:.2f}" if math.isfinite(t) else "no t* (distinguishable at t = 1)"


def chance_verdict(ps: Sequence[float], highs: Sequence[float], lows: Sequence[float],
                   threshold: float, margin: float) -> tuple[bool | None, bool]:
    """"Models do not align on random images", over several metrics: ``(supported, changed)``.

    Replicated when every metric is indistinguishable from its null (p > threshold) and its
    interval lies below ``margin``; changed (a detectable but negligible alignment) when every
    interval lies below ``margin`` but some p is at or below the threshold; not replicated when
    some interval lies wholly above ``margin``; undecided otherwise (or on NaN).
    """
    values = [float(v) for v in (*ps, *highs, *lows)]
    if not values or not all(math.isfinite(v) for v in values):
        return None, False
    if all(h < margin for h in highs):
        quiet = all(p > threshold for p in ps)
        return True, not quiet
    if any(lo > margin for lo in lows):
        return False, False
    return None, False


def interval_of(table: pd.DataFrame, key: tuple, mean: str = "mean corrected") -> str:
    """``"mean [low, high]"`` of one row of a table with ``low``/``high`` (``"undefined"`` if the
    row is absent)."""
    if key not in table.index:
        return "undefined"
    row = table.loc[key]
    return ch.format_interval(float(row[mean]), float(row["low"]), float(row["high"]))


def excluded_sentence(plain: pd.DataFrame, excluded: pd.DataFrame, contrast: pd.DataFrame,
                      fronts: pd.DataFrame, levels: Sequence[float], groups: Sequence[str],
                      n_photos: int) -> str:
    """The same-photo paragraph: plain vs excluded at t = 0 per group, the trained-minus-init
    difference excluded, and the excluded frontier of the first group.

    Args:
        plain, excluded: pooled tables indexed by (group, t) with ``mean corrected``, ``low``,
            ``high``.
        contrast: :func:`helpers.prh.noise_probe.paired_contrast` of the excluded rows, indexed
            by ``t``.
        fronts: null frontiers of the excluded curves.
        levels: the blend grid.
        groups: (trained group, control group).
        n_photos: photographs the crops come from.
    """
    g, c = groups
    t0 = float(min(levels))
    columns = ("difference", "low", "high")
    diff = (ch.format_interval(*(float(contrast.loc[t0, k]) for k in columns), signed=True)
            if t0 in contrast.index else "undefined")
    return (f"With neighbours from the same one of the {n_photos} photographs excluded, "
            f"{g} pairs score {interval_of(excluded, (g, t0))} on the photo crops (plain "
            f"{interval_of(plain, (g, t0))}) and {c} pairs {interval_of(excluded, (c, t0))} "
            f"(plain {interval_of(plain, (c, t0))}); {g} minus {c} within architecture is "
            f"{diff}. Along the blend, excluded {g} pairs "
            f"{frontier_phrase(median_frontier(fronts, g, 'mutual_knn'), levels)}.")


def carry_over_sentence(zoo_uniform: float, real_uniform: float, zoo_wins: Sequence[str],
                        real_gains: Sequence[str], families: Sequence[str], zoo_front: float,
                        real_front: float, zoo_levels: Sequence[float],
                        real_levels: Sequence[float], zoo_rho: bool | None,
                        real_rho: bool | None) -> str:
    """Whether the shapes-world findings carry over to the real networks, finding by finding
    (the training gain on noise by :func:`carried`, the verdict table's rule).

    Args:
        zoo_uniform, real_uniform: trained pairs' mean corrected mutual kNN on uniform noise.
        zoo_wins, real_gains: noise families where training adds alignment (zoo, real).
        families: the noise families tested (the structured ones, :data:`STRUCTURED`, are
            counted among their own number).
        zoo_front, real_front: trained pairs' mutual-kNN null frontier along the blend.
        zoo_levels, real_levels: the two blend grids (for the frontier phrases).
        zoo_rho, real_rho: :func:`agreement_supported` of each model set.
    """
    def same(a, b) -> str:
        if a is None or b is None:
            return "cannot be compared (a test is undecided)"
        return "carries over" if a == b else "does not carry over"

    rho = {True: "stop agreeing", False: "keep agreeing above chance",
           None: "give an undecided test"}
    n_families = len(families)
    structured = [f for f in families if f in STRUCTURED]
    carried_word = ("has no zoo result to carry (the zoo gains on no structured family)"
                    if carried(real_gains, zoo_wins) is None
                    else same(True, carried(real_gains, zoo_wins)))
    return (f"On uniform noise, trained zoo pairs reach {zoo_uniform:.3f} and real pretrained "
            f"pairs {real_uniform:.3f} (mean corrected mutual kNN, max over layer pairs). "
            f"Training adds alignment on {counted(zoo_wins, n_families)} noise families in the "
            f"zoo and on {counted(real_gains, n_families)} for the real networks; on the "
            f"structured families (spectral, collage) that is "
            f"{counted([f for f in zoo_wins if f in structured], len(structured))} against "
            f"{counted([f for f in real_gains if f in structured], len(structured))}, so that "
            f"finding {carried_word}. Along the blend (last layer) "
            f"the zoo's trained pairs {frontier_phrase(zoo_front, zoo_levels)} and the real "
            f"ones {frontier_phrase(real_front, real_levels)} on mutual kNN, so that finding "
            f"{same(math.isfinite(zoo_front), math.isfinite(real_front))}. On noise the metrics "
            f"{rho[zoo_rho]} in the zoo and {rho[real_rho]} on the real networks, so that "
            f"finding {same(zoo_rho, real_rho)}.")


# --------------------------------------------------------------------------- verdict rows
def noise_verdict(at_noise: pd.DataFrame, metrics: Sequence[str], threshold: float,
                  negligible: float, n_perm: int, groups: Sequence[str] = ("pretrained",
                                                                            "random-init")
                  ) -> ch.Verdict:
    """"Models do not align on purely random (uniform) images", from the blend's t = 1 rows.

    Args:
        at_noise: :func:`helpers.prh.noise_probe.pooled` of the t = 1 rows, indexed by
            (metric, group), with ``pooled p``, ``mean corrected``, ``low``, ``high``.
        metrics: the metrics read (every one must pass).
        threshold: the blend family's Bonferroni threshold.
        negligible: corrected score below which an alignment is negligible.
        n_perm: permutations per test (for the p floor).
        groups: (trained group, control group).
    """
    g, c = groups
    rows = [at_noise.loc[(m, g)] if (m, g) in at_noise.index else None for m in metrics]
    nan = float("nan")
    get = [(r["pooled p"], r["high"], r["low"]) if r is not None else (nan, nan, nan)
           for r in rows]
    supported, changed = chance_verdict(*zip(*get), threshold=threshold, margin=negligible)
    return ch.Verdict(
        "Models do not align on purely random (uniform) images", "blog",
        "; ".join(f"{m}: {interval_of(at_noise, (m, g))}, {ch.format_p(p, n_perm)}"
                  for m, (p, _, _) in zip(metrics, get)),
        f"{c} copies: " + "; ".join(f"{m}: {interval_of(at_noise, (m, c))}" for m in metrics),
        f"replicated if every p > {threshold:.4f} and every interval lies below {negligible}; "
        "changed if the intervals lie below it but some p does not",
        ch.verdict_word(supported, changed))


def agreement_verdict(id_row: pd.Series, noise_row: pd.Series, threshold: float,
                      n_perm: int) -> ch.Verdict:
    """"Metrics stop agreeing with each other on random images" (:func:`agreement_supported`)."""
    return ch.Verdict(
        "Metrics stop agreeing with each other on random images", "blog",
        f"photos: {rho_words(id_row, n_perm, threshold)}; uniform: "
        f"{rho_words(noise_row, n_perm, threshold)}",
        "shared-shuffle null of the median rho",
        f"replicated if p <= {threshold:.3g} on photos and p > {threshold:.3g} on noise",
        ch.verdict_word(agreement_supported(id_row, noise_row, threshold)))


def blend_verdict(fronts: pd.DataFrame, excluded_fronts: pd.DataFrame, metrics: Sequence[str],
                  threshold: float, groups: Sequence[str] = ("pretrained", "random-init")
                  ) -> ch.Verdict:
    """"Blending images into noise drives alignment to chance": replicated if the trained
    group's pooled score reaches the null at some t <= 1 on every metric."""
    g, c = groups
    reached = [math.isfinite(median_frontier(fronts, g, m)) for m in metrics]
    return ch.Verdict(
        "Blending images into noise drives alignment to chance", "fork's blend notebook",
        "; ".join(f"{m}: {t_star_text(fronts, g, m)}" for m in metrics)
        + f"; same photo excluded: {t_star_text(excluded_fronts, g, 'mutual_knn')}",
        "; ".join(f"{c} {m}: {t_star_text(fronts, c, m)}" for m in metrics),
        f"replicated if pooled p > {threshold:.4f} at some t <= 1 on every metric",
        ch.verdict_word(bool(all(reached)) if metrics else None))


STRUCTURED = ("spectral0", "spectral1", "spectral2", "collage")
"""Noise families with spatial structure (the i.i.d. pixel families are the others)."""


def carry_verdict(real_gains: Sequence[str], zoo_wins: Sequence[str], n_families: int,
                  real_gains_last: Sequence[str] | None = None) -> ch.Verdict:
    """"Training adds alignment on structured noise" (the zoo's finding) on the real networks:
    carried over if a structured family the zoo wins on is also won by the real networks,
    undecided when the zoo wins on none.

    Args:
        real_gains: families where pretrained beats random-init, at the zoo's layer protocol.
        zoo_wins: families where the zoo's trained members beat their step-0 controls.
        n_families: noise families tested.
        real_gains_last: the real networks' gains at the last layer (reported beside).
    """
    last = ("" if real_gains_last is None else
            f"; last layer: {counted(real_gains_last, n_families)}")
    return ch.Verdict(
        "Training adds alignment on structured noise (the zoo's finding)",
        "this chapter, shapes world",
        f"pretrained minus random-init above 0 on {counted(real_gains, n_families)} (max over "
        f"layer pairs, as the zoo){last}",
        f"zoo: trained beats init on {counted(zoo_wins, n_families)}",
        "carried over if a structured family the zoo wins on is also won by the real networks",
        ch.verdict_word(carried(real_gains, zoo_wins)))


def carried(real_gains: Sequence[str], zoo_wins: Sequence[str]) -> bool | None:
    """Whether a structured family the zoo wins on is also won by the real networks (None when
    the zoo wins on no structured family)."""
    structured = [f for f in zoo_wins if f in STRUCTURED]
    return None if not structured else bool(set(real_gains) & set(structured))


# --------------------------------------------------------------------------- answer sentences
def families_sentence(above: Sequence[str], gains: dict[str, Sequence[str]], n_families: int
                      ) -> str:
    """Noise families where pretrained pairs beat chance, and where they beat their controls
    (``gains`` per layer protocol: ``"last"`` and ``"max"``)."""
    return (f"Pretrained pairs are distinguishable from chance on {counted(above, n_families)} "
            "noise families, and beat their random-init copies (interval of the "
            f"within-architecture difference above 0) on {counted(gains['last'], n_families)} "
            f"at the last layer and on {counted(gains['max'], n_families)} at the max over "
            "layer pairs.")


def rho_sentence(id_row: pd.Series, noise_row: pd.Series, n_pairs: int, n_perm: int,
                 threshold: float) -> str:
    """The metric-agreement answer: both tests in words and the verdict word."""
    verdict = ch.verdict_word(agreement_supported(id_row, noise_row, threshold))
    return (f"configurations over {n_pairs} pretrained pairs show "
            f"{rho_words(id_row, n_perm, threshold)} on photographs and "
            f"{rho_words(noise_row, n_perm, threshold)} on uniform noise, so the claim is "
            f"{verdict} on these networks.")


def blend_sentence(fronts: pd.DataFrame, at_noise: pd.DataFrame, metrics: Sequence[str],
                   levels: Sequence[float], n_perm: int,
                   groups: Sequence[str] = ("pretrained", "random-init")) -> str:
    """Where each group's blend meets the null, and the trained group's score at t = 1."""
    g, c = groups

    def end(m: str) -> str:
        p = float(at_noise.loc[(m, g), "pooled p"]) if (m, g) in at_noise.index else math.nan
        return f"{interval_of(at_noise, (m, g))} on {m} ({ch.format_p(p, n_perm)})"

    return (f"{g} pairs {fronts_sentence(fronts, g, metrics, levels)}; their {c} copies "
            f"{fronts_sentence(fronts, c, metrics, levels)}. At t = 1 (pure noise) the {g} "
            "pairs score " + "; ".join(end(m) for m in metrics) + ".")
