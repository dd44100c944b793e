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
