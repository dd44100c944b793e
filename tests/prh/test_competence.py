"""Tests of helpers/prh/competence.py: probe competence and the within-architecture correlation."""
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from helpers.prh import competence as cp
from helpers.prh.shapes_world import FACTORS, make_dataset


def test_partial_spearman_removes_the_group_effect():
    # within each group y falls with x, but group b sits higher on both: pooled rho is positive
    d = pd.DataFrame({"g": ["a"] * 5 + ["b"] * 5, "x": [1, 2, 3, 4, 5, 11, 12, 13, 14, 15],
                      "y": [5, 4, 3, 2, 1, 15, 14, 13, 12, 11]})
    assert spearmanr(d.x, d.y).statistic > 0.5
    assert cp.partial_spearman(d.x, d.y, d.g) == pytest.approx(-1.0)
    assert np.isnan(cp.partial_spearman([1, 2], [3, 4], ["a", "b"]))  # nothing left within groups
    with pytest.raises(ValueError, match="same length"):
        cp.partial_spearman([1, 2], [1], ["a", "a"])
    with pytest.raises(ValueError, match="finite"):
        cp.partial_spearman([1, np.nan], [1, 2], ["a", "a"])


def test_competence_correlation_excludes_step_zero_and_resamples_models():
    rng = np.random.default_rng(0)
    rows = []
    for arch, offset in (("vit", 0.0), ("cnn", 0.5)):
        for m in range(4):
            for step in (0, 10, 20, 30):
                c = offset + 0.1 * step / 30 + 0.01 * m
                # step 0 is far below and would inflate a pooled correlation
                y = -1.0 if step == 0 else offset + 2 * c + 0.01 * rng.normal()
                rows.append(dict(arch=arch, model=f"{arch}{m}", step=step, competence=c,
                                 corrected=y))
    t = pd.DataFrame(rows)
    r = cp.competence_correlation(t, n_boot=200)
    assert r["n_checkpoints"] == 24 and r["n_models"] == 8
    assert r["partial"] > 0.8 and r["ci_low"] <= r["partial"] <= r["ci_high"]
    assert r["rho vit"] > 0.8 and r["rho cnn"] > 0.8
    with pytest.raises(ValueError, match="lacks columns"):
        cp.competence_correlation(t.drop(columns="arch"))


def test_probe_competence_is_high_for_the_factors_themselves_and_checks_rows():
    data = make_dataset(200, "id", seed=0)
    onehot = torch.cat([torch.nn.functional.one_hot(data.labels(f)).float() for f in FACTORS], 1)
    assert cp.probe_competence(onehot, data) > 0.95
    noise = torch.randn(200, 32, generator=torch.Generator().manual_seed(0))
    assert cp.probe_competence(noise, data) < 0.6
    with pytest.raises(ValueError, match="rows"):
        cp.probe_competence(onehot[:10], data)
