"""Tests for helpers.tms.basin: the O(2)-invariant distance, pull-and-release, and its
summaries."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.tms import basin
from helpers.tms import grid as tgrid
from helpers.tms import model as tms


def test_gram_distance_ignores_rotations_but_not_other_changes():
    W, b = tms.init_params(4, "4-gon", torch.Generator().manual_seed(0))
    th = torch.tensor(0.7)
    R = torch.stack([torch.stack([th.cos(), -th.sin()]), torch.stack([th.sin(), th.cos()])])
    assert basin.gram_distance(W, b, R @ W, b).abs().max() < 1e-5
    assert (basin.gram_distance(W, b, W, b + 0.3) - 0.3 * math.sqrt(6)).abs().max() < 1e-5
    assert bool((basin.gram_distance(W, b, 2 * W, b) > 0.1).all())
    with pytest.raises(ValueError, match="same shape"):
        basin.gram_distance(W, b, W[:2], b[:2])


@pytest.fixture(scope="module")
def trained_pairs():
    g = tgrid.make_grid([7], n_seeds=4)
    run = tms.TrainResult(**tgrid.train_grid(g, 3000, [3000], 500, 50, 0.005, 0.9, compress=True))
    return g, run.W[:, -1], run.b[:, -1], tgrid.grid_data(g, 500, 1)


def test_no_pull_never_switches_and_a_strong_pull_always_does(trained_pairs):
    g, W, b, X = trained_pairs
    tab = basin.basin_table(g, W, b, X, [0.0, 1.0], pull_steps=1500, release_steps=500,
                            min_distance=0.1)
    assert set(tab.direction) == {"4-gon start pulled to 6-gon", "6-gon start pulled to 4-gon"}
    d = tab[tab.distinct]
    assert len(d) > 0
    assert not d[d.pull == 0].switched.any()
    assert d[d.pull == 1.0].switched.all()
    crit = basin.critical_pull(tab, n_boot=200)
    assert (crit.control == 0).all() and (crit.half_pull == 1.0).all()


def test_pull_and_release_checks_its_arguments(trained_pairs):
    g, W, b, X = trained_pairs
    with pytest.raises(ValueError, match="pulls >= 0"):
        basin.pull_and_release(W, b, W, b, X, [-1.0], pull_steps=10, release_steps=10)
    with pytest.raises(ValueError, match="pull_steps"):
        basin.pull_and_release(W, b, W, b, X, [0.0], pull_steps=0, release_steps=10)


def _table(switch_at: list[float], pulls=(0.0, 0.1, 1.0)) -> pd.DataFrame:
    rows = [dict(direction="a", sparsity=0.5, seed=s, pull=p, distinct=True, switched=p >= t)
            for s, t in enumerate(switch_at) for p in pulls]
    return pd.DataFrame(rows)


def test_critical_pull_is_where_half_the_pairs_have_switched():
    crit = basin.critical_pull(_table([0.1, 0.1, 0.1, 1.0]), n_boot=300)
    assert crit.half_pull.iloc[0] == 0.1 and crit.control.iloc[0] == 0.0
    assert crit.lo.iloc[0] <= 0.1 <= crit.hi.iloc[0]
    never = basin.critical_pull(_table([np.inf] * 4), n_boot=50)
    assert np.isinf(never.half_pull.iloc[0]) and np.isinf(never.lo.iloc[0])
    summ = basin.switch_summary(_table([0.1, 0.1, 0.1, 1.0]), n_boot=200)
    assert summ.set_index("pull").switched.tolist() == [0.0, 0.75, 1.0]
    assert (summ.lo <= summ.switched).all() and (summ.switched <= summ.hi).all()
