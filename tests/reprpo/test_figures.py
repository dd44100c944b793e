"""helpers.reprpo.figures: interval points at the draws' means, per-seed frames."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
from matplotlib import pyplot as plt

from helpers.reprpo import figures


def test_plot_intervals_places_means_and_checks_columns():
    rng = np.random.default_rng(0)
    series = {"base": [rng.normal(0.5, 0.01, 200), rng.normal(0.2, 0.01, 200)],
              "dpo": [rng.normal(0.9, 0.01, 200), rng.normal(0.4, 0.01, 200)],
              "dpo-shuffled": [rng.normal(0.5, 0.01, 200), rng.normal(0.2, 0.01, 200)]}
    fig, ax = plt.subplots()
    figures.plot_intervals(ax, series, ["a", "b"], controls=("base", "dpo-shuffled"))
    lines = [c.lines[0] for c in ax.containers]
    assert len(lines) == 3
    np.testing.assert_allclose(lines[1].get_ydata(), [0.9, 0.4], atol=0.01)
    assert lines[1].get_xdata()[0] == pytest.approx(0.0) and lines[0].get_xdata()[0] < 0
    assert lines[2].get_marker() == "x" and lines[1].get_marker() == "o"
    with pytest.raises(ValueError, match="one draws array per column"):
        figures.plot_intervals(ax, {"x": [np.ones(3)]}, ["a", "b"])
    plt.close(fig)


def test_seed_frames():
    correct = {"base": {"a": np.zeros((2, 4)), "b": np.ones((2, 4))},
               "dpo": {"a": np.array([[1, 1, 0, 0], [1, 1, 1, 1]]), "b": np.ones((2, 4))}}
    frames = figures.seed_frames(correct, ["dpo"], ["a", "b"])
    base, seeds = frames["dpo"]
    assert list(base.y) == [0.0, 1.0]
    assert list(seeds.y) == [0.5, 1.0, 1.0, 1.0] and list(seeds.text) == ["seed 0", "seed 1"] * 2
