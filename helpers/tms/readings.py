"""The chapter's readings: from the grid's tables to verdict words and the sentences that quote
them. Every word is chosen from the numbers, so each sentence reads right for any outcome.

Example:
    >>> band_verdict((0.1, -0.2, 0.3), band=0.5)
    'replicated'
    >>> band_verdict((0.9, 0.7, 1.1), band=0.5)
    'not replicated'
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binom

from helpers import stats
from helpers.chapter import format_interval
from helpers.tms.analysis import fmt_r
from helpers.tms.calibration import bias_interval

__all__ = ["band_verdict", "rank_text", "critical_point_reading", "features_per_dim_text",
           "corner_text", "start_reading",
           "nonpositive_text", "known_case", "offset_text", "zero_correlation_reading",
           "chain_noise_text", "lmc_reading", "prune_reading", "variant_text", "basin_reading",
           "verdict_rows", "calibration_texts", "minimum_texts"]


def band_verdict(interval: tuple[float, float, float], band: float) -> str:
    """"replicated" when the interval (mean, lo, hi) lies inside ±``band``, "not replicated" when
    it lies wholly outside, else (or when undefined) "undecided"."""
    _, lo, hi = interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undecided"
    if -band < lo and hi < band:
        return "replicated"
    return "not replicated" if lo > band or hi < -band else "undecided"


def rank_text(theory: dict[int, float], notes: dict[int, float]) -> str:
    """Whether the learning coefficients from the Hessian ranks (``theory``, k -> λ) agree with
    the project notes' (``notes``), naming ours when they differ."""
    if theory == notes:
        return "agree with the notes"
    return "differ from the notes (" + " and ".join(f"{theory[k]:g}" for k in notes) + ")"


def critical_point_reading(known: dict, notes: dict[int, float]) -> dict:
    """The exact hexagon and pentagon of :func:`helpers.tms.calibration.known_critical_points`
    against the project notes' learning coefficients ``notes`` (k -> λ).

    Returns ``table`` (the known table with a ``notes`` column), ``hex_radius``, ``hex_bias``,
    ``rank_text`` (:func:`rank_text`) and ``n_cross``, the leading-order sample size at which
    the hexagon overtakes the pentagon (:func:`helpers.tms.calibration.crossover_n`)."""
    from helpers.tms.calibration import crossover_n

    table = known["table"].assign(notes=[notes[k] for k in known["theory"]])
    theory, loss = known["theory"], table["loss x 6 (Chen et al.'s sum)"]
    return dict(table=table, hex_radius=float(table.loc["6-gon", "radius"]),
                hex_bias=float(table.loc["6-gon", "bias"]), rank_text=rank_text(theory, notes),
                n_cross=crossover_n(theory[6] - theory[5], loss["5-gon"] - loss["6-gon"]))


def features_per_dim_text(grid: pd.DataFrame) -> str:
    """The range of the mean features per hidden dimension over sparsities (both starts pooled):
    ``grid`` has ``sparsity`` and ``features_per_dim``, one row per model."""
    fpd = grid.groupby("sparsity").features_per_dim.mean()
    if fpd.isna().all():
        return "undefined at every sparsity (no represented feature)"
    return (f"from {fpd.min():.2f} (S = {fpd.idxmin():.3f}) to {fpd.max():.2f} "
            f"(S = {fpd.idxmax():.3f}) across sparsities, {fpd.iloc[-1]:.2f} at the sparsest")


def corner_text(shares: dict[str, np.ndarray]) -> str:
    """How often the first and the last feature are corners of the hull, per law: ``shares``
    maps a law's name to :func:`helpers.tms.variants.corner_share` (one share per feature)."""
    return "; ".join(f"under {law} in {c[0]:.0%} and {c[-1]:.0%}" for law, c in shares.items())


def start_reading(contrast: pd.DataFrame, nonsparse_max: float) -> dict:
    """"4-gon start: worse on average, better best" at each sparsity below ``nonsparse_max`` of
    :func:`helpers.tms.analysis.start_contrast`: it holds where the mean difference's interval
    lies above zero and the best seed's below. Returns ``verdict``, ``n_hold``, ``n``, ``text``."""
    ns = contrast[contrast.sparsity < nonsparse_max]
    holds = (ns.mean_lo > 0) & (ns.best_hi < 0)
    fails = (ns.mean_hi < 0) | (ns.best_lo > 0)
    n_hold, n = int(holds.sum()), len(ns)
    verdict = ("undecided" if not n else "replicated" if n_hold == n else "changed" if n_hold
               else "not replicated" if int(fails.sum()) == n else "undecided")
    where = ", ".join(f"{s:.3f}" for s in ns.sparsity[holds])
    text = (f"holds at {n_hold} of {n} non-sparse settings" + (f" (S = {where})" if n_hold else "")
            + f", so it is {verdict}")
    return dict(verdict=verdict, n_hold=n_hold, n=n, text=text)


def nonpositive_text(final: pd.DataFrame, redo: np.ndarray) -> str:
    """What the minimum checks say about the models with a non-positive final LLC. ``final`` has
    ``llc``, ``status`` and ``at_min``; ``redo`` holds the re-estimates of those at a minimum."""
    nonpos = final[final.llc <= 0]
    st = nonpos.status.value_counts()
    n_div = int(final.llc.isna().sum())
    return ((f"SGLD diverged at {n_div} models (left out below); " if n_div else "")
            + f"{len(nonpos)} of {len(final)} models have a non-positive final LLC. Of these, "
            f"{st.get('descends', 0)} have lower loss within reach of gradient descent, "
            f"{st.get('saddle', 0)} sit at a saddle and {st.get('flat', 0)} on a flat region with "
            "no curvature at all (every ReLU off), so the sampler is right about them; "
            f"{int(nonpos.at_min.sum())} pass both checks, and re-estimated with four times the "
            f"chains {int((np.asarray(redo) > 0).sum())} of those turn positive")


def known_case(at_min: pd.DataFrame, n_boot: int) -> tuple[pd.DataFrame,
                                                           tuple[float, float, float]]:
    """The LLC minus half the Hessian rank at models at a minimum: per polygon (``n``, median
    rank / 2, mean offset) and overall (mean with a 95% bootstrap interval over models)."""
    off = at_min.llc - at_min.lam_hessian
    by = off.groupby(at_min.kgon)
    table = pd.DataFrame({"n": by.size(), "rank / 2": at_min.groupby("kgon").lam_hessian.median(),
                          "mean LLC - rank / 2": by.mean()})
    return table, bias_interval(off, 0.0, n_boot)


def offset_text(binary: tuple[float, float, float], onehot: tuple[float, float, float]) -> str:
    """Whether the binary law's offset interval overlaps the one-hot hexagon's."""
    if not np.isfinite(binary[1]):
        return "and cannot be compared with the calibration"
    if binary[1] <= onehot[2] and onehot[1] <= binary[2]:
        return ("an interval that overlaps the one-hot hexagon's, so the calibration offset "
                "carries over to the binary law")
    return ("an interval apart from the one-hot hexagon's, so the offset measured at the "
            "calibration optima does not carry over to the binary law's minima; absolute LLC "
            "values below are read with this gap in mind")


def calibration_texts(cal: dict) -> dict[str, str]:
    """The calibration's glued phrases from :func:`helpers.tms.calibration.calibrate`'s result:
    ``bias{k}_md`` (held-out estimate minus theory at each polygon k, signed, two digits) and its
    ``chosen_md``, ``free_md`` and ``trend_md`` sentences."""
    texts = {f"bias{k}_md": format_interval(*b, signed=True, digits=2)
             for k, b in cal["bias"].items()}
    return {**texts, **{name: cal[name] for name in ("chosen_md", "free_md", "trend_md")}}


def minimum_texts(final: pd.DataFrame, redo: np.ndarray, binary: tuple[float, float, float],
                  onehot: tuple[float, float, float]) -> dict[str, str]:
    """The minimum checks' glued phrases: ``nonpos_md`` (:func:`nonpositive_text`),
    ``bin_bias_md`` (the binary law's offset interval ``binary``, signed) and ``bin_vs_cal``
    (:func:`offset_text` against the one-hot hexagon's ``onehot``)."""
    return dict(nonpos_md=nonpositive_text(final, redo),
                bin_bias_md=format_interval(*binary, signed=True, digits=2),
                bin_vs_cal=offset_text(binary, onehot))


def zero_correlation_reading(corr: pd.DataFrame, inits: tuple[str, ...],
                             judged: str = "6-gon") -> dict:
    """"Zero loss-LLC correlation within a sparsity", judged on the ``judged`` start's cells of
    :func:`helpers.tms.analysis.correlations_by_type`: it fails when more cells have a Spearman
    interval excluding zero than the 95th percentile of the binomial count at 5%.

    Returns ``rows`` (per start: cells, sig, chance, ...), ``verdict``, ``text``, ``detail``."""
    rows = {}
    for init in inits:
        c = corr[corr.init == init]
        rows[init] = dict(
            cells=len(c), sig=int(((c.spearman_lo > 0) | (c.spearman_hi < 0)).sum()),
            chance=int(binom.ppf(0.95, len(c), 0.05)) if len(c) else 0,
            neg=int((c.spearman < 0).sum()),
            sig_p=int(((c.pearson_lo > 0) | (c.pearson_hi < 0)).sum()),
            median=float(c.spearman.median()) if len(c) else np.nan)
    z = rows[judged]
    verdict = ("undecided" if z["cells"] == 0 else
               "replicated" if z["sig"] <= z["chance"] else "not replicated")
    text = (f"is {verdict}: from the {judged} start, {z['sig']} of {z['cells']} cells have a "
            f"Spearman interval that excludes zero, against at most {z['chance']} by chance")
    detail = "; ".join(
        f"{i} start: {r['sig']} of {r['cells']} cells by Spearman, {r['sig_p']} by Pearson, "
        f"ρ negative in {r['neg']}, median ρ {fmt_r(r['median'])}" for i, r in rows.items())
    return dict(rows=rows, verdict=verdict, text=text, detail=detail)


def chain_noise_text(ref: pd.DataFrame, min_cell: int, chains: int) -> str:
    """Between-seed LLC variance over the chain-noise variance of a chain mean, per (start,
    sparsity, polygon) cell with at least ``min_cell`` models; ``ref`` has ``llc``,
    ``chain_var``."""
    cells = ref.groupby(["init", "sparsity", "kgon"]).filter(lambda d: len(d) >= min_cell)
    ratio = pd.Series([d.llc.var() / (d.chain_var.mean() / chains)
                       for _, d in cells.groupby(["init", "sparsity", "kgon"])], dtype=float)
    if ratio.empty:
        return f"no cell has the {min_cell} models a variance ratio needs"
    return (f"between-seed variance over chain-noise variance has median {ratio.median():.1f} "
            f"over {len(ratio)} cells, and is below 1 in {int((ratio < 1).sum())}")


def lmc_reading(lmc: pd.DataFrame, n_boot: int, tol: float, floor: float = 1e-6) -> dict:
    """Aligned barriers over the endpoints' loss (pairs with endpoint loss above ``floor``): the
    median for cross-start pairs and the same-start control with 95% bootstrap intervals, the
    share connected (below ``tol``), and the verdict for "aligned solutions are connected".

    Returns ``cross``, ``ctrl`` (frames of normalised pairs), ``bar`` (name -> interval),
    ``verdict``, ``text`` and ``texts`` (the glued phrases ``bar_cross_md``, ``bar_ctrl_md`` and
    ``lmc_md``)."""
    ok = lmc[lmc.endpoint_loss > floor].copy()
    ok[["unaligned", "aligned"]] = ok[["unaligned", "aligned"]].div(ok.endpoint_loss, axis=0)
    is_cross = ok.pair == "4-gon vs 6-gon start"
    parts = {"cross": ok[is_cross], "ctrl": ok[~is_cross]}
    bar = {n: (float(d.aligned.median()), *stats.interval(stats.bootstrap(
        np.median, d.aligned.to_numpy(), n_boot=n_boot))) for n, d in parts.items()}
    conn = {n: float((d.aligned < tol).mean()) for n, d in parts.items()}
    verdict = ("replicated" if bar["cross"][2] < tol else
               "not replicated" if bar["cross"][1] > tol else "undecided")
    text = (f"{conn['cross']:.0%} of cross-start pairs and {conn['ctrl']:.0%} of control pairs "
            f"are connected; {parts['cross'].same_kgon.mean():.0%} of cross-start pairs reached "
            f"the same polygon type; pairs left out for an endpoint loss below 10⁻⁶: "
            f"{len(lmc) - len(ok)}")
    texts = {f"bar_{n}_md": format_interval(*b, digits=3) for n, b in bar.items()}
    return dict(cross=parts["cross"], ctrl=parts["ctrl"], bar=bar, verdict=verdict, text=text,
                texts={**texts, "lmc_md": text})


def prune_reading(psum: pd.DataFrame, first: int, tol: float, control_fpd: float) -> dict:
    """Pruning against rewinding without pruning, from :func:`helpers.tms.analysis.prune_summary`:
    the loss ratio after the first round (``first`` weights left) decides "a pruned, rewound
    network matches" (interval below ``tol``: replicated; above: not). Returns ``row`` (the
    first round), ``verdict``, ``text`` and ``fpd_text`` (features per dimension)."""
    p1, pl = psum[psum.weights == first].iloc[0], psum.iloc[-1]
    verdict = "replicated" if p1.hi <= tol else "not replicated" if p1.lo > tol else "undecided"
    text = (f"With {first} weights left the pruned loss is "
            f"{format_interval(p1.loss_ratio, p1.lo, p1.hi, digits=2)} times the control's, and "
            f"{p1.kept_imp:.0%} keep the dense polygon (control: {p1.kept_control:.0%}); with "
            f"{int(pl.weights)} left, {format_interval(pl.loss_ratio, pl.lo, pl.hi, digits=2)} "
            f"times and {pl.kept_imp:.0%}")
    fpd = (f"from {psum.features_per_dim.iloc[0]:.2f} (dense) to {pl.features_per_dim:.2f} "
           f"({int(pl.weights)} weights), against {control_fpd:.2f} for the control")
    return dict(row=p1, verdict=verdict, text=text, fpd_text=fpd)


def variant_text(shift: pd.DataFrame, at_min: int, total: int, sig: tuple[int, int],
                 base_sig: tuple[int, int]) -> str:
    """A variant law against the uniform one: at how many sparsities the mean corners and the
    features per dimension move (intervals of :func:`helpers.tms.variants.polygon_shift` that
    exclude zero, and which way), how many models sit at a minimum, and the within-cell
    correlation count ``sig`` = (cells excluding zero, cells) against the base law's."""
    parts = []
    for measure, name in (("k", "mean corners"), ("features_per_dim", "features per dimension")):
        d = shift[shift.measure == measure]
        up, down = int((d.lo > 0).sum()), int((d.hi < 0).sum())
        span = (f" (differences from {d['diff'].min():+.2f} to {d['diff'].max():+.2f})"
                if len(d) else "")
        parts.append(f"{name} rise at {up} and fall at {down} of {len(d)} sparsities{span}")
    return ("; ".join(parts) + f"; {at_min} of {total} models are at a minimum, and {sig[0]} of "
            f"{sig[1]} cells have a Spearman interval excluding zero (uniform: {base_sig[0]} of "
            f"{base_sig[1]})")


def basin_reading(crit: pd.DataFrame) -> dict:
    """Basin hopping from :func:`helpers.tms.basin.critical_pull`: per direction, the pull that
    moves half the pairs at each sparsity; the two starts' basins differ in depth where the two
    directions' intervals are disjoint. Returns ``verdict`` (for "leaving the basin takes the
    same pull from either start"), ``n_apart``, ``n``, ``control`` (largest no-pull switch
    fraction), ``text``, ``stronger`` (which start needs the stronger pull, and where) and
    ``texts`` (the glued phrases ``basin_md``, ``basin_ctrl_md``, ``basin_apart_md``,
    ``basin_where_md``)."""
    def fmt(v: float) -> str:
        return ("beyond the pulls tried" if not np.isfinite(v) else
                "0 (no pull needed)" if v == 0 else f"{v:g}")

    wide = crit.pivot(index="sparsity", columns="direction")
    dirs = sorted(crit.direction.unique())
    apart, lines, stronger = 0, [], {}
    for S, r in wide.iterrows():
        if len(dirs) == 2:
            (a, b) = dirs
            for hi_d, lo_d in ((a, b), (b, a)):
                if r["lo", hi_d] > r["hi", lo_d]:
                    apart += 1
                    stronger.setdefault(hi_d.split()[0], []).append(f"{S:.2f}")
        lines.append(f"S = {S:.2f}: " + ", ".join(
            f"{fmt(r['half_pull', d])} [{fmt(r['lo', d])}, {fmt(r['hi', d])}] ({d.split()[0]})"
            for d in dirs))
    n = len(wide) if len(dirs) == 2 else 0
    verdict = "undecided" if n == 0 else "not replicated" if apart else "replicated"
    control = float(crit.control.max()) if len(crit) else float("nan")
    where = "; ".join(f"the {start} start's models need the stronger pull at S = "
                      + ", ".join(v) for start, v in stronger.items())
    text, stronger = "; ".join(lines), where or "neither start needs a stronger pull"
    texts = dict(basin_md=text, basin_ctrl_md=f"{control:.0%}", basin_apart_md=f"{apart} of {n}",
                 basin_where_md=stronger)
    return dict(verdict=verdict, n_apart=apart, n=n, control=control, text=text,
                stronger=stronger, texts=texts)


def _signed(interval: tuple[float, float, float]) -> str:
    return format_interval(*interval, signed=True, digits=2)


def verdict_rows(
    *, theory: dict[int, float], notes: dict[int, float], rank, bias: dict, bin_bias: tuple,
    band: float, start: dict, zero: dict, lmc: dict, basin: dict, prune: dict, laws: pd.DataFrame,
    barrier_tol: float, imp_tol: float,
) -> list:
    """The chapter's closing rows (:class:`helpers.chapter.Verdict`), one per claim, from the
    readings above: ``theory``/``notes`` (k -> λ), the Hessian ``rank`` ``[2]``, the calibration
    ``bias`` (k -> interval) and the binary law's ``bin_bias``, judged within ±``band``;
    ``start`` (:func:`start_reading`), ``zero`` (:func:`zero_correlation_reading`), ``lmc``
    (:func:`lmc_reading`), ``basin`` (:func:`basin_reading`), ``prune`` (:func:`prune_reading`)
    and ``laws`` (:func:`helpers.tms.variants.compare_laws`'s table)."""
    from helpers.chapter import Verdict

    cal = [band_verdict(bias[k], band) for k in (6, 5)]
    z6, p = zero["rows"]["6-gon"], prune["row"]
    rows = [
        Verdict("Hexagon and pentagon have learning coefficients 8.5 and 7",
                "project notes on Chen et al. 2023",
                f"Hessian ranks {int(rank[0])} and {int(rank[1])}",
                "exact optima of the one-hot law", "ranks 17 and 14",
                "replicated" if theory == notes else "not replicated"),
        Verdict("SGLD recovers the known LLC (calibration)", "Lau et al. 2023",
                f"bias {_signed(bias[6])} (6-gon), {_signed(bias[5])} (5-gon)", "held-out chains",
                f"|bias| < {band:g}", cal[0] if cal[0] == cal[1] else "undecided"),
        Verdict("The calibration carries over to the binary law", "this chapter",
                f"LLC − rank / 2 = {_signed(bin_bias)}", "models at a minimum",
                f"|bias| < {band:g}",
                band_verdict(bin_bias, band)),
        Verdict("4-gon start: worse on average, better best", "anogassis/aisf-project",
                f"holds at {start['n_hold']} of {start['n']} settings",
                "6-gon start, same data and seeds", "both intervals on the claimed side",
                start["verdict"]),
        Verdict("Zero loss-LLC correlation within a sparsity (6-gon start)",
                "anogassis/aisf-project", f"{z6['sig']} of {z6['cells']} cells exclude 0",
                "chance count, binomial at 5%", f"at most {z6['chance']} cells", zero["verdict"]),
        Verdict("Aligned solutions are linearly connected", "Ainsworth et al. 2023",
                f"median barrier {format_interval(*lmc['bar']['cross'], digits=3)} of endpoint "
                f"loss",
                f"same-start pairs: {format_interval(*lmc['bar']['ctrl'], digits=3)}",
                f"< {barrier_tol:g}", lmc["verdict"]),
        Verdict("Leaving the basin takes the same pull from either start",
                "issue 15 (open question)",
                f"intervals disjoint at {basin['n_apart']} of {basin['n']} sparsities",
                f"no pull: at most {basin['control']:.0%} switch",
                "no sparsity with disjoint intervals", basin["verdict"]),
        Verdict("A pruned, rewound network matches the dense one", "Frankle and Carbin 2019",
                f"loss ratio {format_interval(p.loss_ratio, p.lo, p.hi, digits=2)}",
                "rewound without pruning", f"< {imp_tol:g}", prune["verdict"]),
    ]
    for law in laws.index.get_level_values("law").unique():
        k = laws.loc[(law, "k")]
        moved = int(((k.lo > 0) | (k.hi < 0)).sum())
        rows.append(Verdict(
            f"The polygons are those of the uniform law under power-law {law}",
            "issue 15 (open question)", f"mean corners move at {moved} of {len(k)} sparsities",
            "uniform grid, same sparsities", "no interval excludes 0",
            "undecided" if not len(k) else "changed" if moved else "replicated"))
    return rows
