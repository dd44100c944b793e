"""Tests of the procedural shapes world (helpers/prh/shapes_world.py)."""
import numpy as np
import pytest
import torch

from helpers.prh import shapes_world as sw


def test_make_dataset_contract():
    d = sw.make_dataset(40, "id", seed=3, size=64)
    assert d.images.shape == (40, 3, 64, 64) and d.images.dtype == torch.float32
    assert float(d.images.min()) >= 0 and float(d.images.max()) <= 1
    assert len(d.captions) == len(d) == 40
    assert list(d.factors.columns[: len(sw.FACTORS)]) == list(sw.FACTORS)
    assert d.factors.shape[1] >= 5  # the issue asks for at least five factors


def test_deterministic_and_seeded():
    a, b = sw.make_dataset(20, "ood", seed=1), sw.make_dataset(20, "ood", seed=1)
    c = sw.make_dataset(20, "ood", seed=2)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    assert not torch.equal(a.images, c.images)


def test_id_split_withholds_combinations_and_novelties():
    d = sw.make_dataset(600, "id", seed=0)
    f = d.factors
    assert not any(sw.held_out(s, c) for s, c in zip(f["shape"], f["color"]))
    assert set(f["shape"]) <= set(sw.SHAPES) and set(f["texture"]) <= set(sw.TEXTURES)
    assert (f["subset"] == "id").all()


def test_ood_split_has_three_kinds():
    d = sw.make_dataset(300, "ood", seed=0)
    f = d.factors
    assert set(f["subset"]) == set(sw.OOD_KINDS)
    combo = f[f["subset"] == "held_out_combo"]
    assert all(sw.held_out(s, c) for s, c in zip(combo["shape"], combo["color"]))
    assert set(f.loc[f["subset"] == "novel_shape", "shape"]) <= set(sw.NOVEL_SHAPES)
    assert set(f.loc[f["subset"] == "novel_texture", "texture"]) <= set(sw.NOVEL_TEXTURES)
    # novel values are not classes: labels() marks them -1
    assert (d.labels("shape")[torch.tensor((f["subset"] == "novel_shape").to_numpy())] == -1).all()


def test_caption_is_written_from_factors():
    row = {"shape": "triangle", "color": "red", "size": "small", "row": "top", "col": "left",
           "bg_color": "blue", "texture": "striped"}
    assert sw.caption(row) == "a small red triangle at the top left on a striped blue background"
    row.update(row="middle", col="center", texture="plain")
    assert sw.caption(row) == "a small red triangle in the center on a blue background"
    d = sw.make_dataset(10, "id", seed=0)
    for cap, (_, r) in zip(d.captions, d.factors.iterrows()):
        assert r["shape"] in cap and r["color"] in cap and r["bg_color"] in cap


def test_rendered_pixels_follow_factors():
    d = sw.make_dataset(50, "id", seed=4)
    for i in range(10):  # the centre pixel of the shape has the shape's colour
        r = d.factors.iloc[i]
        y, x = int(r["cy"] * 64), int(r["cx"] * 64)
        if r["shape"] == "triangle":  # triangle's centroid sits below the bounding-box centre
            y = int((r["cy"] + 0.3 * r["radius"]) * 64)
        np.testing.assert_allclose(d.images[i, :, y, x].numpy(), sw.COLORS[r["color"]], atol=1e-5)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="split must be one of"):
        sw.make_dataset(4, "test")
    with pytest.raises(ValueError, match="positive integer"):
        sw.make_dataset(0)
    with pytest.raises(ValueError, match="at least 16 pixels"):
        sw.make_dataset(4, size=8)
    with pytest.raises(ValueError, match="factor must be one of"):
        sw.make_dataset(4).labels("hue")
