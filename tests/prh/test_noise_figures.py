"""Tests of helpers/prh/noise_figures.py: each figure draws from the chapter's tables."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers.prh import noise_figures as nf  # noqa: E402
from helpers.prh import noise_images as ni  # noqa: E402


def _pairs():
    rng = np.random.default_rng(0)
    rows = [{"group": g, "family": f, "metric": "mutual_knn", "corrected": rng.random(),
             "observed": 0.2, "null_mean": 0.1, "null_std": 0.01}
            for g in ("trained", "init") for f in ("id", "uniform") for _ in range(3)]
    return pd.DataFrame(rows)


def test_group_colours_are_stable_and_distinct():
    assert nf.group_color("trained") == nf.group_color("trained")
    assert nf.group_color("trained") != nf.group_color("init")
    assert nf.group_color("a-new-group") == nf.group_color("a-new-group")


def test_figures_draw():
    fam = _pairs()
    assert len(nf.plot_pair_scores(fam, ["id", "uniform"], "mutual_knn").axes) == 1
    assert len(nf.plot_null_distance(fam, ["id", "uniform"], "mutual_knn").axes) == 2
    samples = {f: ni.make_noise(f, 5, size=16, seed=0) for f in ("uniform", "spectral2")}
    slopes = pd.Series({f: ni.spectral_slope(x) for f, x in samples.items()})
    assert len(nf.plot_families(samples, samples, slopes).axes) == 2 * 5 + 1
    maps = {"id": {"raw": np.eye(3), "calibrated": np.eye(3), "null": np.zeros((4, 3, 3))}}
    assert len(nf.plot_agreement(maps, ["a", "b", "c"]).axes) == 3 + 1  # and the colour bar
    curve = pd.DataFrame({"metric": "m", "group": "init", "seed": [0, 0, 1, 1], "t": [0, 1, 0, 1],
                          "mean corrected": [0.3, 0.0, 0.2, 0.01]})
    fronts = pd.DataFrame({"metric": ["m"], "group": ["init"], "t*": [1.0]})
    fig = nf.plot_blend(curve, fronts, ["m"])
    assert any(line.get_label() == "init null frontier" for line in fig.axes[0].lines)
    with pytest.raises(ValueError, match="lacks columns"):
        nf.plot_blend(curve.drop(columns="seed"), fronts, ["m"])


def test_blend_slider_has_one_frame_per_level():
    pytest.importorskip("plotly")
    rows = pd.DataFrame({"metric": "m", "group": ["pretrained", "random-init"] * 3,
                         "t": [0.0, 0.0, 0.5, 0.5, 1.0, 1.0], "seed": 0,
                         "a": ["x", "x-init"] * 3, "b": ["y", "y-init"] * 3,
                         "corrected": [0.5, 0.2, 0.3, 0.1, 0.0, 0.0], "p_value": 0.01})
    fig = nf.blend_slider(rows, "m", ["pretrained", "random-init"])
    assert [f.name for f in fig.frames] == ["t = 0.00", "t = 0.50", "t = 1.00"]
    assert list(fig.frames[1].data[0].y) == [0.3] and fig.frames[1].data[1].x == ("x / y",)
    with pytest.raises(ValueError, match="no rows"):
        nf.blend_slider(rows, "other", ["pretrained"])


def test_real_families_and_exclusion_figures():
    fam = pd.concat([_pairs().assign(layer=lay) for lay in ("last", "max")])
    fig = nf.plot_real_families(fam, ["id", "uniform"], "mutual_knn")
    assert [ax.get_title() for ax in fig.axes] == ["last layer", "max over layer pairs"]
    with pytest.raises(ValueError, match="lacks columns"):
        nf.plot_real_families(_pairs(), ["id"], "mutual_knn")
    curve = pd.DataFrame({"metric": "mutual_knn",
                          "group": ["pretrained"] * 2 + ["random-init"] * 2, "seed": 0,
                          "t": [0.0, 1.0] * 2, "mean corrected": [0.4, 0.0, 0.3, 0.0]})
    fig = nf.plot_exclusion(curve, curve.assign(**{"mean corrected": [0.2, 0.0, 0.05, 0.0]}))
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    solid, dashed = lines["pretrained, all neighbours"], lines["pretrained, same photo excluded"]
    assert solid.get_color() == dashed.get_color() == nf.group_color("pretrained")
    assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--"
    with pytest.raises(ValueError, match="excluded lacks columns"):
        nf.plot_exclusion(curve, curve.drop(columns="t"))
