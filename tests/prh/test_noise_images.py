"""Tests for helpers.prh.noise_images: shapes, ranges, determinism, spectral slopes, blends."""
from __future__ import annotations

import math

import pytest
import torch

from helpers.prh import noise_images as ni


@pytest.mark.parametrize("family", ni.FAMILIES)
def test_shapes_ranges_determinism(family):
    a = ni.make_noise(family, 5, size=(24, 40), seed=3)
    b = ni.make_noise(family, 5, size=(24, 40), seed=3)
    c = ni.make_noise(family, 5, size=(24, 40), seed=4)
    assert a.shape == (5, 3, 24, 40) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # images within a batch differ from each other (not one image repeated)
    assert not torch.allclose(a[0], a[1])


def test_global_rng_untouched():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ni.make_noise("collage", 2, size=16, seed=1)
    ni.make_noise("spectral1", 2, size=16, seed=1)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_spectral_slope_measured_back(alpha):
    x = ni.spectral_noise(64, alpha, size=64, seed=0)
    assert ni.spectral_slope(x) == pytest.approx(-alpha, abs=0.15)


def test_white_noise_families_are_flat_and_collage_is_not():
    assert abs(ni.spectral_slope(ni.uniform_noise(64, 64, seed=0))) < 0.1
    assert abs(ni.spectral_slope(ni.gaussian_noise(64, 64, seed=0))) < 0.1
    # flat regions and sharp edges put most power at low frequencies
    assert ni.spectral_slope(ni.shape_collage(64, 64, seed=0)) < -1.5


def test_gaussian_moments():
    x = ni.gaussian_noise(32, 32, seed=0)
    assert x.mean().item() == pytest.approx(0.5, abs=0.01)
    assert x.std().item() == pytest.approx(ni.GAUSSIAN_STD, rel=0.05)


def test_spectral_per_image_rescale_spans_unit_interval():
    x = ni.spectral_noise(4, 2.0, size=32, seed=0).reshape(4, -1)
    assert torch.allclose(x.min(1).values, torch.zeros(4), atol=1e-6)
    assert torch.allclose(x.max(1).values, torch.ones(4), atol=1e-6)


def test_collage_has_flat_regions():
    x = ni.shape_collage(8, 32, seed=0, n_shapes=3)
    # neighbouring pixels are mostly identical (painted regions), unlike pixel noise
    same = (x[..., 1:] == x[..., :-1]).all(dim=1).float().mean()
    assert same > 0.8


def test_blend_endpoints_and_midpoint():
    imgs = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    noise = ni.uniform_noise(3, 8, seed=1)
    assert torch.equal(ni.blend(imgs, noise, 0.0), imgs)
    assert torch.equal(ni.blend(imgs, noise, 1.0), noise)
    assert torch.allclose(ni.blend(imgs, noise, 0.5), (imgs + noise) / 2)


def test_blend_errors():
    imgs = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="same shape"):
        ni.blend(imgs, torch.rand(2, 3, 8, 9), 0.5)
    with pytest.raises(ValueError, match=r"t must be in \[0, 1\]"):
        ni.blend(imgs, imgs, 1.5)


def test_generator_errors():
    with pytest.raises(ValueError, match="unknown noise family"):
        ni.make_noise("pink", 2)
    with pytest.raises(ValueError, match="spectral families are named"):
        ni.make_noise("spectralx", 2)
    with pytest.raises(ValueError, match="n must be a positive int"):
        ni.make_noise("uniform", 0)
    with pytest.raises(ValueError, match="at least 4x4"):
        ni.make_noise("uniform", 2, size=2)
    with pytest.raises(ValueError, match=r"int or \(height, width\)"):
        ni.make_noise("uniform", 2, size=(8, 8, 8))
    with pytest.raises(ValueError, match="alpha must be"):
        ni.spectral_noise(2, -1.0)
    with pytest.raises(ValueError, match="std must be positive"):
        ni.gaussian_noise(2, std=0.0)
    with pytest.raises(ValueError, match="n_shapes"):
        ni.shape_collage(2, n_shapes=0)
    with pytest.raises(ValueError, match="max_vertices"):
        ni.shape_collage(2, max_vertices=2)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        ni.radial_power_spectrum(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="fewer than 3 frequency bins"):
        ni.spectral_slope(torch.rand(2, 3, 8, 8), f_min=0.3, f_max=0.31)


def test_any_resolution():
    x = ni.make_noise("spectral2", 2, size=224, seed=0)
    assert x.shape == (2, 3, 224, 224)


def test_pooled_null_detects_shift_and_chance():
    g = torch.Generator().manual_seed(0)
    null = 0.02 + 0.01 * torch.randn(6, 200, generator=g)
    chance = ni.pooled_null(null[:, 0] * 0 + 0.02, null)
    assert chance["p_value"] > 0.2 and abs(chance["corrected"]) < 0.01
    high = ni.pooled_null(torch.full((6,), 0.2), null)
    assert high["p_value"] == pytest.approx(1 / 201)
    mean = null.mean().item()
    assert high["corrected"] == pytest.approx((0.2 - mean) / (1 - mean), rel=1e-6)
    assert high["null_std"] < null.std().item()  # the mean over 6 pairs is less noisy


def test_pooled_null_errors():
    with pytest.raises(ValueError, match=r"\[P, n_perm\]"):
        ni.pooled_null(torch.zeros(3), torch.zeros(4, 10))


def test_first_level_where():
    assert ni.first_level_where([0, 0.5, 1], [False, True, True]) == 0.5
    assert math.isnan(ni.first_level_where([0, 0.5, 1], [False, False, False]))
    with pytest.raises(ValueError, match="equal length"):
        ni.first_level_where([0, 1], [True])
    with pytest.raises(ValueError, match="increasing"):
        ni.first_level_where([1, 0], [True, True])


def test_full_scale_path_on_a_local_tiny_vit(tmp_path):
    """The full-scale route (local timm ViT folder -> noise at its resolution -> features),
    offline."""
    timm = pytest.importorskip("timm")
    from helpers.features import extract_vision_features, load_timm_model, save_timm_model

    args = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **args)
    save_timm_model(model, tmp_path / "tiny_vit", model_args=args)
    loaded = load_timm_model(tmp_path / "tiny_vit")
    assert ni.model_input_size(loaded) == (32, 32)
    x = ni.noise_for_model(loaded, "spectral2", 6, seed=0)
    assert x.shape == (6, 3, 32, 32)
    feats = extract_vision_features(loaded, x, progress=False)
    assert feats.shape == (6, 2, 32) and torch.isfinite(feats).all()
    with pytest.raises(ValueError, match="no pretrained_cfg"):
        ni.model_input_size(torch.nn.Linear(2, 2))


def test_images_from_folder(tmp_path):
    from PIL import Image

    for i in range(5):
        Image.new("RGB", (40, 30), (50 * i, 0, 0)).save(tmp_path / f"im{i}.png")
    x = ni.images_from_folder(tmp_path, 3, size=16, seed=0)
    assert x.shape == (3, 3, 16, 16) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, ni.images_from_folder(tmp_path, 3, size=16, seed=0))
    with pytest.raises(ValueError, match="fewer than n=9"):
        ni.images_from_folder(tmp_path, 9, size=16)
    with pytest.raises(ValueError, match="does not exist"):
        ni.images_from_folder(tmp_path / "nope", 1, size=16)


# ------------------------------------------------------------ chapter evaluation sets and pooling
def test_evaluation_images_sets_and_keys():
    noise, caps, key = ni.evaluation_images("spectral2", 6, 16, seed=1)
    assert noise.shape == (6, 3, 16, 16) and caps is None
    assert key == {"kind": "spectral2", "seed": 1}
    assert torch.equal(noise, ni.make_noise("spectral2", 6, size=16, seed=1001))
    imgs, caps, key = ni.evaluation_images("id", 6, 16, seed=0, data_seed=3)
    assert imgs.shape == (6, 3, 16, 16) and len(caps) == 6 and key["kind"] == "id"
    half, caps_half, key_half = ni.evaluation_images("id", 6, 16, seed=0, data_seed=3, t=0.5)
    assert caps_half == caps and key_half["t"] == 0.5 and key_half["kind"] == "blend"
    noise = ni.make_noise("uniform", 6, size=16, seed=1000)
    torch.testing.assert_close(half, 0.5 * imgs + 0.5 * noise)
    # the end points of a blend are exactly the image set and the noise set, with their keys
    zero, _, key_zero = ni.evaluation_images("id", 6, 16, seed=0, data_seed=3, t=0.0)
    one, _, key_one = ni.evaluation_images("id", 6, 16, seed=0, data_seed=3, t=1.0)
    assert torch.equal(zero, imgs) and key_zero == key
    assert torch.equal(one, ni.make_noise("uniform", 6, size=16, seed=1000))
    assert key_one == ni.evaluation_images("uniform", 6, 16, seed=0)[2]
    with pytest.raises(ValueError, match="t is only for kind='id'"):
        ni.evaluation_images("uniform", 6, 16, seed=0, t=0.5)


def _rows(observed, shift=0.0, n_perm=9, seed=0):
    import pandas as pd

    g = torch.Generator().manual_seed(seed)
    null = [torch.rand(n_perm, generator=g, dtype=torch.float64) * 0.1 + shift for _ in observed]
    return pd.DataFrame({"observed": observed, "null": null,
                         "p_value": [(1 + int((d >= o).sum())) / (n_perm + 1)
                                     for o, d in zip(observed, null)]})


def test_pool_pairs_matches_pooled_null_and_checks_columns():
    rows = _rows([0.5, 0.6, 0.55])
    s = ni.pool_pairs(rows, alpha=0.05)
    ref = ni.pooled_null(torch.tensor(rows.observed.values), torch.stack(list(rows.null)))
    assert s["pairs"] == 3 and s["pooled p"] == pytest.approx(ref["p_value"]) == pytest.approx(0.1)
    assert s["mean corrected"] == pytest.approx(ref["corrected"]) and s["mean corrected"] > 0.4
    assert s["pairs with p <= alpha"] == 0.0  # 9 draws: the floor 0.1 is above alpha
    with pytest.raises(ValueError, match="lack columns"):
        ni.pool_pairs(rows.drop(columns="null"))


def test_null_frontiers_first_level_above_alpha():
    import pandas as pd

    curve = pd.DataFrame({"metric": "m", "group": ["a"] * 4 + ["b"] * 4, "seed": 0,
                          "t": [0.0, 0.5, 1.0, 0.75] * 2,
                          "pooled p": [0.01, 0.2, 0.5, 0.01, 0.01, 0.01, 0.01, 0.01]})
    f = ni.null_frontiers(curve, alpha=0.05).set_index("group")["t*"]
    assert f["a"] == 0.5  # sorted by t: 0.0 (0.01), 0.5 (0.2) -> first above alpha
    assert math.isnan(f["b"])  # never reaches the null


def test_group_contrast_detects_a_shift():
    import pandas as pd

    g = torch.Generator().manual_seed(0)
    hi, lo = (0.5 + 0.01 * torch.randn(8, generator=g)), (0.1 + 0.01 * torch.randn(8, generator=g))
    t = pd.DataFrame({"family": "x", "group": ["trained"] * 8 + ["init"] * 8,
                      "corrected": torch.cat([hi, lo]).numpy()})
    c = ni.group_contrast(t, ["family"], "trained", "init").loc["x"]
    assert c.difference == pytest.approx(0.4, abs=0.02) and c["Welch p (trained > init)"] < 1e-6
    back = ni.group_contrast(t, ["family"], "init", "trained").loc["x"]
    assert back["Welch p (init > trained)"] > 0.99
