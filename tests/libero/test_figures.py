"""Tests for helpers.libero.figures: each figure builds with the expected panels."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch

from helpers.libero import figures
from helpers.libero.action_alignment import AlignmentResult
from tests.libero.test_pipeline import _demos


def test_demo_frames_and_histograms():
    d = _demos()
    fig = figures.plot_demo_frames(d, n=3)
    assert len(fig.axes) == 9
    assert [t.get_text() for t in fig.axes[6].get_xticklabels()][-1] == "grip"
    with pytest.raises(ValueError, match="episode 9 not in"):
        figures.plot_demo_frames(d, episode=9)
    assert len(figures.plot_action_histograms({0: d.actions, 1: d.actions}).axes) == 7


def test_layer_profiles_one_panel_per_score():
    r = AlignmentResult(torch.tensor([0.1, 0.3, 0.2]), torch.rand(5, 3) * 0.1)
    fig = figures.plot_layer_profiles([("a", {"x": r}), ("b", {"x": r, "y": r})], topk=3)
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel() == "mutual kNN (k = 3)"
    np.testing.assert_allclose(fig.axes[1].lines[2].get_ydata(), r.observed.numpy())


def test_success_figures():
    import pandas as pd

    from helpers.libero.evaluation import success_row

    succ = {("a", 1): {0: np.r_[1, 0, 0].astype(bool), 1: np.r_[1, 1, 0].astype(bool)},
            ("b", 2): {0: np.zeros(3, bool), 1: np.ones(3, bool)}}
    table = pd.DataFrame([dict(variant=v, epoch=e, task=k, **success_row(s))
                          for (v, e), per in succ.items() for k, s in per.items()])
    fig = figures.plot_success(table, [0, 1])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["a, ep 1", "b, ep 2"]
    assert len(fig.axes[0].patches) == 4  # one bar per (group, task)
    pts = pd.DataFrame(dict(variant=["a", "a", "b", "b"], epoch=[1, 1, 2, 2], task=[0, 1, 0, 1],
                            best=[0.1, 0.2, 0.0, 0.3], fixed=[0.0, 0.1, 0.0, 0.2]))
    fig = figures.plot_success_vs_alignment(pts, succ, ["a", "b"])
    assert len(fig.axes) == 2 and "best block" in fig.axes[0].get_xlabel()


def test_n_curve_and_profile_slider():
    import pandas as pd

    curve = pd.DataFrame(dict(epoch=[0, 0, 5, 5], episodes=[3, 6, 3, 6],
                              observed=[0.2, 0.15, 0.3, 0.25], null=[0.1, 0.05, 0.1, 0.05]))
    fig = figures.plot_n_curve(curve, topk=4)
    assert len(fig.axes[0].lines) == 4 and fig.axes[0].get_ylabel() == "mutual kNN (k = 4)"
    np.testing.assert_allclose(fig.axes[0].lines[2].get_ydata(), [0.3, 0.25])
    r = AlignmentResult(torch.tensor([0.1, 0.3, 0.2]), torch.rand(5, 3) * 0.1)
    slider = figures.profile_slider({("ViT", 0): r, ("ViT", 5): r}, topk=4)
    assert [f.name for f in slider.frames] == ["ViT, epoch 0", "ViT, epoch 5"]
    np.testing.assert_allclose(slider.frames[1].data[0].y, r.observed.numpy())
