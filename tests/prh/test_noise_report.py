"""Tests of helpers/prh/noise_report.py: every sentence and verdict for every outcome."""
import math

import numpy as np
import pandas as pd
import pytest

from helpers import chapter as ch
from helpers.prh import noise_report as nr

LEVELS = [0.0, 0.25, 0.5, 0.75, 1.0]


def _row(p, rho=0.8, beats=5, configs=9):
    return pd.Series({"median rho": rho, "null median": 0.1, "null 95th pct": 0.3, "p": p,
                      "configs whose spread beats null": beats, "configs": configs})


def _fronts(values):
    return pd.DataFrame([{"metric": m, "group": g, "seed": 0, "t*": t}
                         for (m, g), t in values.items()])


def _pooled(rows):
    """rows: {(metric, group): (p, mean, low, high)}."""
    idx = pd.MultiIndex.from_tuples(list(rows), names=["metric", "group"])
    return pd.DataFrame([{"pooled p": p, "mean corrected": m, "low": lo, "high": hi}
                         for p, m, lo, hi in rows.values()], index=idx)


def test_check_parameters_names_the_problem():
    nr.check_parameters(["uniform"], "uniform", "last", ["a", "b", "c"], 3)
    for args, match in [((["uniform"], "uniform", "first", [], 3), "blend_layer"),
                        ((["nope"], "uniform", "last", [], 3), "unknown noise families"),
                        ((["uniform"], "uniform", "last", ["a", "b"], 3), "at least 3"),
                        ((["uniform"], "uniform", "last", [], 1), "real_blend_levels")]:
        with pytest.raises(ValueError, match=match):
            nr.check_parameters(*args)


def test_thresholds_refuse_a_floor_above_the_threshold():
    assert nr.thresholds(0.05, {"a": (10, 999), "b": (2, None)}) == {"a": 0.005, "b": 0.025}
    with pytest.raises(ValueError, match="p floor"):
        nr.thresholds(0.05, {"a": (10, 99)})


def test_counted_and_sides():
    assert nr.counted([], 6) == "0 of 6"
    assert nr.counted(["a", "b"], 3) == "2 of 3 (a, b)"
    assert nr.side_of(0.001, 0.01) == "distinguishable from chance"
    assert nr.side_of(0.5, 0.01) == "indistinguishable from chance"
    assert nr.side_of(float("nan"), 0.01) == "undefined"


def test_frontier_phrase_for_every_place_on_the_grid():
    assert nr.frontier_phrase(float("nan"), LEVELS).startswith("stay distinguishable")
    assert "t = 1.00" in nr.frontier_phrase(float("nan"), LEVELS)
    assert nr.frontier_phrase(0.0, LEVELS) == (
        "are indistinguishable from chance already at t = 0.00")
    assert nr.frontier_phrase(1.0, LEVELS) == (
        "become indistinguishable from chance between t = 0.75 and t = 1.00")


def test_agreement_supported_every_outcome():
    assert nr.agreement_supported(_row(0.005), _row(0.5), 0.025) is True
    assert nr.agreement_supported(_row(0.005), _row(0.005), 0.025) is False
    assert nr.agreement_supported(_row(0.5), _row(0.5), 0.025) is None
    assert nr.agreement_supported(_row(0.005), _row(float("nan")), 0.025) is None
    words = nr.rho_words(_row(0.005), 199, 0.025)
    assert "p <= 1/200, above chance" in words and "5 of 9 configurations" in words
    assert "not above chance" in nr.rho_words(_row(0.4), 199, 0.025)
    assert nr.rho_words(_row(float("nan")), 199, 0.025).startswith("undefined")
    for p_noise, word in [(0.5, "replicated"), (0.005, "not replicated")]:
        s = nr.rho_sentence(_row(0.005), _row(p_noise), 10, 199, 0.025)
        assert s.endswith(f"so the claim is {word} on these networks.")
        v = nr.agreement_verdict(_row(0.005), _row(p_noise), 0.025, 199)
        assert v.verdict == word
    assert nr.agreement_verdict(_row(0.5), _row(0.5), 0.025, 199).verdict == "undecided"


@pytest.mark.parametrize("ps, highs, lows, expected", [
    ([0.5, 0.4], [0.01, 0.02], [-0.01, 0.0], (True, False)),    # quiet and small: replicated
    ([0.5, 0.001], [0.01, 0.03], [-0.01, 0.01], (True, True)),   # small but detectable: changed
    ([0.001, 0.001], [0.3, 0.2], [0.1, 0.08], (False, False)),   # large: not replicated
    ([0.5, 0.5], [0.2, 0.01], [-0.1, 0.0], (None, False)),       # straddles the margin
    ([float("nan")], [0.01], [0.0], (None, False)),              # undefined
])
def test_chance_verdict_every_outcome(ps, highs, lows, expected):
    assert nr.chance_verdict(ps, highs, lows, 0.0025, 0.05) == expected


def test_noise_verdict_words():
    quiet = _pooled({("mutual_knn", "pretrained"): (0.3, 0.004, -0.004, 0.016),
                     ("mutual_knn", "random-init"): (0.9, -0.005, -0.01, 0.005)})
    v = nr.noise_verdict(quiet, ["mutual_knn"], 0.0025, 0.05, 999)
    assert v.verdict == "replicated" and "0.004 [-0.004, 0.016], p = 0.3" in v.number
    assert "random-init copies" in v.control
    detectable = _pooled({("mutual_knn", "pretrained"): (0.001, 0.02, 0.01, 0.03)})
    assert nr.noise_verdict(detectable, ["mutual_knn"], 0.0025, 0.05, 999).verdict == "changed"
    assert "p <= 1/1000" in nr.noise_verdict(detectable, ["mutual_knn"], 0.0025, 0.05, 999).number
    missing = nr.noise_verdict(detectable, ["unbiased_cka"], 0.0025, 0.05, 999)
    assert missing.verdict == "undecided" and "undefined" in missing.number


def test_blend_verdict_and_sentence_every_outcome():
    reached = _fronts({("m", "pretrained"): 1.0, ("m", "random-init"): 0.5,
                       ("mutual_knn", "pretrained"): 0.75})
    never = _fronts({("m", "pretrained"): float("nan"), ("m", "random-init"): 0.5,
                     ("mutual_knn", "pretrained"): float("nan")})
    assert nr.blend_verdict(reached, reached, ["m"], 0.0025).verdict == "replicated"
    v = nr.blend_verdict(never, never, ["m"], 0.0025)
    assert v.verdict == "not replicated" and "no t* (distinguishable at t = 1)" in v.number
    excluded = nr.blend_verdict(reached, reached, ["m"], 0.1).number
    assert "same photo excluded: t* = 0.75" in excluded
    at_noise = _pooled({("m", "pretrained"): (0.001, 0.02, 0.01, 0.03)})
    s = nr.blend_sentence(reached, at_noise, ["m"], LEVELS, 999)
    assert s.startswith("pretrained pairs become indistinguishable from chance between t = 0.75")
    assert "their random-init copies become" in s
    assert "0.020 [0.010, 0.030] on m (p <= 1/1000)" in s
    s = nr.blend_sentence(never, at_noise, ["m"], LEVELS, 999)
    assert "pretrained pairs stay distinguishable from chance up to pure noise" in s


def test_carry_verdict_every_outcome():
    assert nr.carry_verdict(["collage"], ["collage", "uniform"], 6).verdict == "replicated"
    assert nr.carry_verdict([], ["collage"], 6).verdict == "not replicated"
    assert nr.carry_verdict(["uniform"], ["uniform"], 6).verdict == "undecided"  # none structured
    v = nr.carry_verdict(["collage"], ["collage"], 6, real_gains_last=[])
    assert "last layer: 0 of 6" in v.number and "1 of 6 (collage)" in v.number


def test_families_and_excluded_sentences():
    s = nr.families_sentence(["collage"], {"last": [], "max": ["uniform", "collage"]}, 6)
    assert "on 1 of 6 (collage) noise families" in s and "0 of 6 at the last layer" in s
    assert "2 of 6 (uniform, collage) at the max" in s
    idx = pd.MultiIndex.from_tuples([("pretrained", 0.0), ("random-init", 0.0)])
    plain = pd.DataFrame({"mean corrected": [0.4, 0.3], "low": [0.2, 0.2], "high": [0.6, 0.4]},
                         index=idx)
    excl = plain.assign(**{"mean corrected": [0.2, 0.05]})
    contrast = pd.DataFrame({"difference": [0.15], "low": [0.05], "high": [0.3]},
                            index=pd.Index([0.0], name="t"))
    fronts = _fronts({("mutual_knn", "pretrained"): 0.75})
    s = nr.excluded_sentence(plain, excl, contrast, fronts, LEVELS, ["pretrained", "random-init"],
                             28)
    assert "same one of the 28 photographs" in s and "score 0.200 [0.200, 0.600]" in s
    assert "(plain 0.400 [0.200, 0.600])" in s and "is +0.150 [+0.050, +0.300]" in s
    assert s.endswith("between t = 0.50 and t = 0.75.")
    s = nr.excluded_sentence(plain, excl, contrast.iloc[:0], fronts, LEVELS,
                             ["pretrained", "random-init"], 28)
    assert "within architecture is undefined" in s


@pytest.mark.parametrize("zoo_rho, real_rho, word", [(True, True, "carries over"),
                                                     (False, True, "does not carry over"),
                                                     (None, True, "cannot be compared")])
def test_carry_over_sentence(zoo_rho, real_rho, word):
    families = ["uniform", "gaussian", "spectral0", "spectral1", "spectral2", "collage"]
    s = nr.carry_over_sentence(0.02, 0.24, ["collage"], [], families, float("nan"), 1.0,
                               [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], LEVELS, zoo_rho, real_rho)
    assert "trained zoo pairs reach 0.020 and real pretrained pairs 0.240" in s
    assert "on 1 of 6 (collage) noise families in the zoo and on 0 of 6 for" in s
    # the structured share is counted among the 4 structured families, not all 6
    assert "structured families (spectral, collage) that is 1 of 4 (collage) against 0 of 4, so "\
        "that finding does not carry over. Along" in s  # zoo wins, real gains none
    assert "zoo's trained pairs stay distinguishable" in s and "real ones become" in s
    assert f"so that finding {word}" in s and s.endswith(".")
    assert "on mutual kNN, so that finding does not carry over. On noise" in s
    s = nr.carry_over_sentence(0.02, 0.24, ["uniform"], ["collage"], ["uniform", "collage"],
                               1.0, 1.0, LEVELS, LEVELS, zoo_rho, real_rho)
    assert "that is 0 of 1 against 1 of 1 (collage), so that finding has no zoo result to " \
        "carry (the zoo gains on no structured family)." in s
