"""Tests for helpers.tms.readings: verdict words and sentences follow the numbers."""
import numpy as np
import pandas as pd
import pytest

from helpers.tms import readings


@pytest.mark.parametrize("iv, word", [((0.1, -0.2, 0.3), "replicated"),
                                      ((0.9, 0.7, 1.1), "not replicated"),
                                      ((-0.9, -1.1, -0.7), "not replicated"),
                                      ((0.4, 0.2, 0.8), "undecided"),
                                      ((np.nan, np.nan, np.nan), "undecided")])
def test_band_verdict(iv, word):
    assert readings.band_verdict(iv, band=0.5) == word


def _contrast(mean_lo, best_hi):
    n = len(mean_lo)
    return pd.DataFrame(dict(sparsity=np.linspace(0, 0.8, n), mean_lo=mean_lo,
                             mean_hi=np.array(mean_lo) + 1, best_lo=np.array(best_hi) - 1,
                             best_hi=best_hi))


def test_start_reading_words():
    both = readings.start_reading(_contrast([0.1, 0.1], [-0.1, -0.1]), 0.85)
    assert both["verdict"] == "replicated"
    part = readings.start_reading(_contrast([0.1, -0.5], [-0.1, 0.2]), 0.85)
    assert part["verdict"] == "changed" and part["text"].startswith("holds at 1 of 2")
    none = readings.start_reading(_contrast([0.1], [0.2]), 0.85)
    assert none["verdict"] == "undecided" and "holds at 0 of 1" in none["text"]
    assert readings.start_reading(_contrast([0.1], [-0.1]), 0.0)["verdict"] == "undecided"


def _corr(lo, hi, init="6-gon"):
    return pd.DataFrame(dict(init=init, spearman=np.add(lo, hi) / 2, spearman_lo=lo,
                             spearman_hi=hi, pearson_lo=lo, pearson_hi=hi))


def test_zero_correlation_reading_counts_against_the_binomial_chance():
    ok = readings.zero_correlation_reading(_corr([-0.5] * 10, [0.5] * 10), ("6-gon",))
    assert ok["verdict"] == "replicated" and ok["rows"]["6-gon"]["chance"] == 2
    bad = readings.zero_correlation_reading(_corr([0.1] * 5 + [-0.5] * 5, [0.9] * 5 + [0.5] * 5),
                                            ("6-gon",))
    assert bad["verdict"] == "not replicated" and "5 of 10 cells" in bad["text"]
    empty = readings.zero_correlation_reading(_corr([], []), ("6-gon",))
    assert empty["verdict"] == "undecided"


def test_lmc_reading_against_the_tolerance():
    n = 30
    lmc = pd.DataFrame(dict(pair=["4-gon vs 6-gon start"] * n + ["4-gon vs 4-gon start"] * n,
                            unaligned=1.0, aligned=np.r_[np.full(n, 0.5), np.full(n, 0.0)],
                            endpoint_loss=np.r_[np.full(n, 1.0), np.full(n, 0.1)],
                            same_kgon=False))
    r = readings.lmc_reading(lmc, n_boot=200, tol=0.01)
    assert r["verdict"] == "not replicated" and r["bar"]["cross"][0] == 0.5
    assert r["text"].startswith("0% of cross-start pairs and 100% of control pairs")


def test_basin_reading_finds_disjoint_directions():
    crit = pd.DataFrame(dict(direction=["a start", "b start"] * 2, sparsity=[0.1, 0.1, 0.5, 0.5],
                             n=10, control=[0.0, 0.1, 0.0, 0.0], half_pull=[0.03, 0.3, 0.03, 0.03],
                             lo=[0.02, 0.2, 0.02, 0.02], hi=[0.05, np.inf, 0.05, 0.1]))
    r = readings.basin_reading(crit)
    assert r["verdict"] == "not replicated" and (r["n_apart"], r["n"]) == (1, 2)
    assert r["control"] == 0.1 and "beyond the pulls tried" in r["text"]
    assert r["stronger"] == "the b start's models need the stronger pull at S = 0.10"
    same = readings.basin_reading(crit.assign(half_pull=0.03, lo=0.02, hi=0.05))
    assert same["verdict"] == "replicated"
    assert same["stronger"] == "neither start needs a stronger pull"


def test_variant_text_counts_moves_both_ways():
    shift = pd.DataFrame(dict(measure=["k", "k", "features_per_dim"], sparsity=[0.1, 0.5, 0.1],
                              diff=[0.5, -0.4, 0.0], lo=[0.2, -0.6, -0.1], hi=[0.8, -0.1, 0.1]))
    t = readings.variant_text(shift, 30, 40, (1, 6), (2, 9))
    assert t.startswith("mean corners rise at 1 and fall at 1 of 2 sparsities")
    assert "features per dimension rise at 0 and fall at 0 of 1" in t
    assert t.endswith("30 of 40 models are at a minimum, and 1 of 6 cells have a Spearman "
                      "interval excluding zero (uniform: 2 of 9)")


def test_known_case_and_offset_text():
    at_min = pd.DataFrame(dict(kgon=["5", "5", "6", "6"], llc=[7.5, 7.7, 9.0, 9.2],
                               lam_hessian=[7.0, 7.0, 8.5, 8.5]))
    table, iv = readings.known_case(at_min, n_boot=200)
    assert table.loc["5", "n"] == 2 and np.isclose(iv[0], 0.6)
    assert "overlaps" in readings.offset_text(iv, (0.6, 0.4, 0.8))
    assert "apart" in readings.offset_text(iv, (2.0, 1.8, 2.2))
    assert "cannot" in readings.offset_text((np.nan,) * 3, (2.0, 1.8, 2.2))


def test_prune_reading_and_nonpositive_text():
    psum = pd.DataFrame(dict(weights=[12, 10, 4], loss_ratio=[1.0, 1.05, 3.0], lo=[1, 1.0, 2.0],
                             hi=[1, 1.08, 4.0], kept_imp=[1.0, 0.9, 0.2], kept_control=1.0,
                             features_per_dim=[1.5, 1.4, 1.0]))
    r = readings.prune_reading(psum, 10, 1.1, 1.5)
    assert r["verdict"] == "replicated" and "with 4 left" in r["text"]
    final = pd.DataFrame(dict(llc=[1.0, -1.0, 0.0, np.nan], status=["minimum", "descends",
                                                                   "minimum", "minimum"],
                              at_min=[True, False, True, True]))
    t = readings.nonpositive_text(final, np.array([0.5]))
    assert t.startswith("SGLD diverged at 1 models") and "2 of 4 models" in t
    assert "1 pass both checks" in t and "1 of those turn positive" in t


def test_verdict_rows_follow_the_readings():
    nan3 = (np.nan,) * 3
    start = dict(n_hold=1, n=4, verdict="changed")
    zero = dict(rows={"6-gon": dict(sig=1, cells=10, chance=2)}, verdict="replicated")
    lmc = dict(bar={"cross": (0.2, 0.1, 0.3), "ctrl": (0.0, 0.0, 0.01)}, verdict="not replicated")
    basin = dict(n_apart=2, n=6, control=0.1, verdict="not replicated")
    prune = dict(row=pd.Series(dict(loss_ratio=1.0, lo=0.98, hi=1.02)), verdict="replicated")
    laws = pd.DataFrame(dict(law=["frequency"] * 2 + ["importance"] * 2, measure="k",
                             sparsity=[0.1, 0.5] * 2, lo=[-0.1, -0.2, 0.1, -0.1],
                             hi=[0.1, 0.2, 0.5, 0.1])).set_index(["law", "measure", "sparsity"])
    rows = readings.verdict_rows(
        theory={6: 8.5, 5: 7.0}, notes={6: 8.5, 5: 7.0}, rank=[17, 14],
        bias={6: (0.7, 0.6, 0.8), 5: (0.1, -0.1, 0.3)}, bin_bias=nan3, band=0.5, start=start,
        zero=zero, lmc=lmc, basin=basin, prune=prune, laws=laws, barrier_tol=0.01, imp_tol=1.1)
    words = {r.claim: r.verdict for r in rows}
    assert words["Hexagon and pentagon have learning coefficients 8.5 and 7"] == "replicated"
    assert words["SGLD recovers the known LLC (calibration)"] == "undecided"  # the two disagree
    assert words["The calibration carries over to the binary law"] == "undecided"
    claim = "The polygons are those of the uniform law under power-law "
    assert words[claim + "frequency"] == "replicated" and words[claim + "importance"] == "changed"
    assert len(rows) == 10


def test_rank_text_agrees_or_names_the_computed_values():
    assert readings.rank_text({6: 8.5, 5: 7.0}, {6: 8.5, 5: 7.0}) == "agree with the notes"
    assert readings.rank_text({6: 8.5, 5: 6.5}, {6: 8.5, 5: 7.0}) == (
        "differ from the notes (8.5 and 6.5)")


def test_critical_point_reading_table_and_crossover():
    table = pd.DataFrame({"radius": [1.32, 1.1], "bias": [-0.62, -0.4],
                          "loss x 6 (Chen et al.'s sum)": [0.50, 0.52]}, index=["6-gon", "5-gon"])
    known = dict(theory={6: 8.5, 5: 7.0}, table=table)
    cp = readings.critical_point_reading(known, {6: 8.5, 5: 7.0})
    assert list(cp["table"].notes) == [8.5, 7.0] and cp["rank_text"] == "agree with the notes"
    assert (cp["hex_radius"], cp["hex_bias"]) == (1.32, -0.62)
    n = cp["n_cross"]  # n dL = dlambda ln n at the crossover
    assert n * 0.02 == pytest.approx(1.5 * np.log(n))
    other = readings.critical_point_reading(dict(known, theory={6: 8.0, 5: 7.0}), {6: 8.5, 5: 7.0})
    assert other["rank_text"] == "differ from the notes (8 and 7)"


def test_features_per_dim_text_names_the_extremes_and_the_sparsest():
    g = pd.DataFrame(dict(sparsity=[0.0, 0.0, 0.5, 0.5, 0.9, 0.9],
                          features_per_dim=[1.0, 1.2, 2.0, 2.2, 1.5, 1.5]))
    assert readings.features_per_dim_text(g) == (
        "from 1.10 (S = 0.000) to 2.10 (S = 0.500) across sparsities, 1.50 at the sparsest")
    one = readings.features_per_dim_text(g[g.sparsity == 0.5])
    assert (one == "from 2.10 (S = 0.500) to 2.10 (S = 0.500) across sparsities, 2.10 at the "
            "sparsest")
    empty = readings.features_per_dim_text(g.assign(features_per_dim=np.nan))
    assert empty.startswith("undefined")


def test_corner_text_lists_first_and_last_feature_per_law():
    text = readings.corner_text({"the uniform law": np.array([0.87, 0.5, 0.52]),
                                 "power-law frequency": np.array([1.0, 0.0])})
    assert text == "under the uniform law in 87% and 52%; under power-law frequency in 100% and 0%"


def test_lmc_and_basin_readings_give_their_glued_phrases():
    n = 30
    lmc = pd.DataFrame(dict(pair=["4-gon vs 6-gon start"] * n + ["4-gon vs 4-gon start"] * n,
                            unaligned=1.0, aligned=np.r_[np.full(n, 0.5), np.full(n, 0.0)],
                            endpoint_loss=1.0, same_kgon=False))
    r = readings.lmc_reading(lmc, n_boot=200, tol=0.01)
    assert r["texts"] == {"bar_cross_md": "0.500 [0.500, 0.500]",
                          "bar_ctrl_md": "0.000 [0.000, 0.000]", "lmc_md": r["text"]}
    crit = pd.DataFrame(dict(direction=["a start", "b start"] * 2, sparsity=[0.1, 0.1, 0.5, 0.5],
                             n=10, control=[0.0, 0.25, 0.0, 0.0],
                             half_pull=[0.03, 0.3, 0.03, 0.03],
                             lo=[0.02, 0.2, 0.02, 0.02], hi=[0.05, np.inf, 0.05, 0.1]))
    t = readings.basin_reading(crit)["texts"]
    assert (t["basin_ctrl_md"], t["basin_apart_md"]) == ("25%", "1 of 2")
    assert t["basin_where_md"].startswith("the b start's models") and "S = 0.10" in t["basin_md"]


def test_calibration_and_minimum_texts():
    cal = dict(bias={6: (0.5, 0.2, 0.8), 5: (-0.1, -0.3, 0.1)}, chosen_md="ε = 1e-4",
               free_md="free", trend_md="trend", lr=1e-4)
    assert readings.calibration_texts(cal) == {
        "bias6_md": "+0.50 [+0.20, +0.80]", "bias5_md": "-0.10 [-0.30, +0.10]",
        "chosen_md": "ε = 1e-4", "free_md": "free", "trend_md": "trend"}
    final = pd.DataFrame(dict(llc=[1.0, -0.5, 2.0], status=["minimum", "minimum", "saddle"],
                              at_min=[True, True, False]))
    apart = readings.minimum_texts(final, np.array([0.3]), (2.0, 1.5, 2.5), (0.5, 0.2, 0.8))
    assert apart["bin_bias_md"] == "+2.00 [+1.50, +2.50]"
    assert apart["nonpos_md"].startswith("1 of 3 models have a non-positive final LLC")
    assert apart["bin_vs_cal"].startswith("an interval apart from")
    close = readings.minimum_texts(final, np.array([]), (0.6, 0.3, 0.9), (0.5, 0.2, 0.8))
    assert close["bin_vs_cal"].startswith("an interval that overlaps")
