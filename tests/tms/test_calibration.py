"""Tests for helpers.tms.calibration: sweeping and choosing SGLD settings on known critical
points."""
import pandas as pd
import pytest
import torch

from helpers.tms import calibration
from helpers.tms import model as tms


def _table():
    return pd.DataFrame(dict(polygon=[6, 6, 5, 5], lr=[1e-4, 1e-3, 1e-4, 1e-3], nbeta=[100.0] * 4,
                             llc=[8.4, 9.5, 6.0, 9.6]))


def test_choose_closest_needs_the_right_order():
    lr, nb, wide = calibration.choose_closest(_table(), {6: 8.5, 5: 7.0})
    assert (lr, nb) == (1e-4, 100.0)
    assert wide.loc[(1e-3, 100.0), "sq. error vs theory"] == float("inf")  # pentagon above hexagon


def test_choose_closest_raises_when_nothing_is_ordered():
    t = _table()
    t.loc[t.polygon == 5, "llc"] = 20.0
    with pytest.raises(ValueError, match="widen the sweep"):
        calibration.choose_closest(t, {6: 8.5, 5: 7.0})


def test_count_rises():
    assert calibration.count_rises(_table(), "nbeta", "lr") == (2, 2)


def test_sweep_and_repeats_shapes_and_order():
    W6, b6, _ = tms.fit_regular_kgon(6, iters=50)
    W5, b5, _ = tms.fit_regular_kgon(5, iters=50)
    x = tms.make_data(300, None, "onehot_uniform", generator=torch.Generator().manual_seed(0))
    models = {6: (W6, b6), 5: (W5, b5)}
    table, trace = calibration.sweep(models, x, [1e-4, 3e-4, 1.0], [300.0], localization=1.0,
                                     chains=2,
                                     draws=30, burnin=10, batch=100, repeats=2)
    assert list(table.columns) == ["polygon", "lr", "nbeta", "rep", "llc", "chain_sd", "drift",
                                   "min_chain"]
    assert len(table) == 12 and trace.shape == (12, 2, 30)
    # a step size of 1 diverges: NaN, not an error and not a number
    assert table[table.lr == 1.0].llc.isna().all() and table[table.lr < 1].llc.notna().all()
    reps = calibration.repeat_estimates(models, x, 3, lr=3e-4, nbeta=300.0, localization=1.0,
                                        chains=2,
                                        draws=30, burnin=10, batch=100)
    assert reps.shape == (2, 3)


def test_choose_on_uses_only_the_selection_repeats():
    t = pd.concat([_table().assign(rep=0), _table().assign(rep=1)], ignore_index=True)
    t.loc[(t.rep == 1) & (t.lr == 1e-4), "llc"] = 100.0  # held-out repeat far off: must not matter
    lr, nb, _ = calibration.choose_on(t, {6: 8.5, 5: 7.0}, reps=[0])
    assert (lr, nb) == (1e-4, 100.0)


def test_is_interior():
    assert calibration.is_interior([1, 2, 3], 2)
    assert not calibration.is_interior([1, 2, 3], 3)
    assert not calibration.is_interior([1, 2], 1)


def test_theory_free_choice_takes_the_smallest_settled_step():
    t = pd.DataFrame(dict(polygon=[6, 5] * 3, lr=[1e-4, 1e-4, 1e-3, 1e-3, 1e-2, 1e-2],
                          nbeta=[50.0] * 6,
                          llc=[8, 6, 9, 7, float("nan"), 7],
                          drift=[0.5, 0.02, 0.05, 0.0, 0.0, 0.0],
                          min_chain=[1.0] * 6))
    assert calibration.theory_free_choice(t, 50.0) == 1e-3  # 1e-4 has not settled, 1e-2 diverged
    t.loc[2, "drift"] = 0.5  # not settled at 1e-3 either
    assert calibration.theory_free_choice(t, 50.0) is None
    t["drift"], t["llc"] = 0.0, 1.0
    assert calibration.theory_free_choice(t, 50.0) == 1e-4
    t["min_chain"] = -1.0
    assert calibration.theory_free_choice(t, 50.0) is None


def test_bias_interval():
    m, lo, hi = calibration.bias_interval([9.0, 9.2, 9.4, float("nan")], 8.5, n_boot=200)
    assert m == pytest.approx(0.7) and lo <= m <= hi
    assert all(map(lambda v: v != v, calibration.bias_interval([float("nan")], 8.5)))


def test_known_critical_points_have_the_notes_ranks():
    known = calibration.known_critical_points(n_quad=1000)
    assert known["theory"] == {6: 8.5, 5: 7.0}
    assert abs(known["table"].loc["6-gon", "radius"] - 1.32054) < 1e-3


def test_calibration_reading_phrases_follow_the_numbers():
    import pandas as pd
    import torch

    sel = pd.DataFrame(dict(polygon=[6, 6, 5, 5], lr=[1e-4, 1e-3] * 2, nbeta=[100.0] * 4,
                            llc=[8.0, 9.0, 6.0, 7.5]))
    held = torch.tensor([[9.0, 9.2, 9.1], [7.4, 7.5, 7.3]])
    r = calibration.calibration_reading(sel, held, None, {6: 8.5, 5: 7.0}, (1e-3, 100.0),
                                        (None, 50.0), [1e-4, 1e-3], [100.0], n_boot=200)
    assert r["free_md"] == "no step size passes the theory-free rule"
    assert "at an edge" in r["chosen_md"] and r["order_frac"] == 1.0
    assert abs(r["bias"][6][0] - 0.6) < 1e-6
    assert r["trend_md"].startswith("raising ε raises the estimate in 2 of 2")


def test_crossover_n_solves_the_free_energy_balance():
    import math

    n = calibration.crossover_n(1.5, 0.02)
    assert abs(n * 0.02 - 1.5 * math.log(n)) < 1e-6 and n > 75
    assert calibration.crossover_n(1.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="d_loss > 0"):
        calibration.crossover_n(1.5, -0.1)
