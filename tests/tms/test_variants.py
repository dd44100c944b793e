"""Tests for helpers.tms.variants: variant laws on the grid and their comparison with the base
law."""
import numpy as np
import pandas as pd
import torch

from helpers.tms import grid as tgrid
from helpers.tms import model as tms
from helpers.tms import variants


def test_polygon_shift_finds_a_planted_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    base = pd.DataFrame(dict(sparsity=0.5, k=rng.choice([4, 5], 40), features_per_dim=1.5))
    more = pd.DataFrame(dict(sparsity=0.5, k=rng.choice([5, 6], 40), features_per_dim=1.5))
    same = pd.DataFrame(dict(sparsity=0.5, k=rng.choice([4, 5], 40), features_per_dim=1.5))
    up = variants.polygon_shift(base, more, n_boot=500).set_index("measure")
    assert up.loc["k", "lo"] > 0 and np.isclose(up.loc["k", "diff"], more.k.mean() - base.k.mean())
    null = variants.polygon_shift(base, same, n_boot=500).set_index("measure")
    assert null.loc["k", "lo"] < 0 < null.loc["k", "hi"]


def test_corner_share_and_significant_cells():
    W = torch.stack([tms.kgon(5, 1.0), tms.kgon(4, 1.0)])
    assert variants.corner_share(W).tolist() == [1.0, 1.0, 1.0, 1.0, 0.5, 0.0]
    corr = pd.DataFrame(dict(spearman_lo=[0.1, -0.5, -0.9], spearman_hi=[0.9, 0.5, -0.2]))
    assert variants.significant_cells(corr) == (2, 3)


def test_run_variant_with_importance_trains_checks_and_tabulates():
    g = tgrid.make_grid([7], n_seeds=2)
    imp = tms.powerlaw_importance(1.0)
    kw = dict(lr=1e-4, nbeta=100.0, localization=1.0, chains=2, draws=20, burnin=10, batch=100,
              compress=True)
    res = variants.run_variant(g, steps=500, log_at=[0, 500], n_train=200, n_test=50, lr=0.005,
                               momentum=0.9, llc_n=200, llc_kwargs=kw, descent_steps=50,
                               importance=imp)
    plain = tms.TrainResult(**tgrid.train_grid(g, 500, [0, 500], 200, 50, 0.005, 0.9,
                                               compress=True))
    assert not torch.allclose(res["W"], plain.W[:, -1])  # the importance changed training
    x = tgrid.grid_data(g, 200, 1)
    assert torch.allclose(res["loss"], tms.mse(res["W"], res["b"], x, importance=imp), atol=1e-5)
    df = variants.variant_frame(g, res)
    assert len(df) == 4 and set(df.status) <= {"minimum", "descends", "saddle", "flat"}
    assert (df.at_min == ((df.status == "minimum") & (df.llc > 0))).all()


def test_powerlaw_laws_weigh_features_by_rank():
    laws = variants.powerlaw_laws(1.0)
    assert set(laws) == {"frequency", "importance"} and laws["frequency"] == {"alpha": 1.0}
    imp = laws["importance"]["importance"]
    assert imp.shape == (6,) and torch.all(imp[:-1] > imp[1:])
    assert abs(float(imp.mean()) - 1.0) < 1e-6
