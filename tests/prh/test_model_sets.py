"""Tests of helpers/prh/model_sets.py: groups, pairs, cached prepared features."""
import pytest
import torch

from helpers import alignment
from helpers.prh import model_sets as ms


def _sources():
    half = lambda x: [x.flatten(1)[:, ::2], x.flatten(1)[:, 1::2]]  # noqa: E731
    return {
        "cnn-a": ms.Source("trained", "cnn-a@5", half, arch="cnn"),
        "cnn-b": ms.Source("trained", "cnn-b@5", half, arch="cnn"),
        "vit-a": ms.Source("trained", "vit-a@5", half, arch="vit"),
        "cnn-init": ms.Source("init", "cnn@0", half, arch="cnn"),
        "pixels": ms.pixel_source(),
    }


def test_group_pairs_skip_same_architecture_within_a_group():
    s = _sources()
    assert ms.names_in(s, "trained") == ["cnn-a", "cnn-b", "vit-a"]
    assert ms.group_pairs(s, "trained", "trained") == [("cnn-a", "vit-a"), ("cnn-b", "vit-a")]
    assert ms.group_pairs(s, "init", "pixels") == [("cnn-init", "pixels")]
    with pytest.raises(ValueError, match="no sources in group 'pretrained'"):
        ms.group_pairs(s, "pretrained", "pretrained")


def test_prepared_features_cache_and_prepare(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    calls = []
    s = _sources()
    s["counted"] = ms.Source("trained", "counted", lambda x: calls.append(1) or [x.flatten(1)])
    images = torch.rand(7, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    a = ms.prepared_features(s, ["counted", "pixels"], images, {"kind": "t"})
    b = ms.prepared_features(s, ["counted"], images, {"kind": "t"})
    assert len(calls) == 1  # the second call read the cache
    torch.testing.assert_close(a["counted"][0], b["counted"][0])
    torch.testing.assert_close(a["pixels"][0], alignment.prepare([images.flatten(1)])[0])
    assert torch.linalg.norm(a["counted"][0], dim=1).sub(1).abs().max() < 1e-5
    ms.prepared_features(s, ["counted"], images, {"kind": "other"})
    assert len(calls) == 2  # another image set, another entry
    assert not any(p.name.startswith(".") for p in (tmp_path / "random_images").iterdir())
    with pytest.raises(ValueError, match="not in sources"):
        ms.prepared_features(s, ["nope"], images, {"kind": "t"})


def test_pretrained_sources_pair_each_network_with_its_random_init_copy():
    pytest.importorskip("timm")
    from helpers import pretrained as pt

    try:
        pt.weight_path("mobilenet_v2")
    except Exception as err:  # the weight package is an install-time requirement
        pytest.fail(f"mobilenet_v2 weights missing: {err}")
    s = ms.pretrained_sources(["mobilenet_v2", "efficientnet_lite0"], input_size=32)
    assert ms.names_in(s, "pretrained") == ["mobilenet_v2", "efficientnet_lite0"]
    assert ms.names_in(s, "random-init") == ["mobilenet_v2-init", "efficientnet_lite0-init"]
    assert s["mobilenet_v2"].arch == s["mobilenet_v2-init"].arch
    assert s["mobilenet_v2"].key != s["mobilenet_v2-init"].key
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    trained, init = s["mobilenet_v2"].extract(x), s["mobilenet_v2-init"].extract(x)
    assert len(trained) == 19 and trained[-1].shape == (3, 1280)
    assert not torch.allclose(trained[-1], init[-1])
    with pytest.raises(ValueError, match="unknown pretrained model"):
        ms.pretrained_sources(["resnet50"], input_size=32)


def test_standard_pairs_add_the_pixel_baseline():
    s = _sources()
    p = ms.standard_pairs(s, ["trained", "init"])
    assert list(p) == ["trained", "init", "trained-pixels", "init-pixels"]
    assert p["init"] == [] and p["trained-pixels"][0] == ("cnn-a", "pixels")


def test_zoo_sources_give_each_member_its_own_step0_control():
    from types import SimpleNamespace

    zoo = [SimpleNamespace(name=f"{a}-{o}-s{s}", arch=a, objective=o, seed=s, steps=[0, 9])
           for a in ("cnn", "vit") for o in ("supervised", "simclr") for s in (0, 1)]
    s = ms.zoo_sources(zoo, seed=0, objectives=["supervised", "simclr"])
    assert ms.names_in(s, "trained") == ["cnn-supervised-s0", "cnn-simclr-s0", "vit-supervised-s0",
                                          "vit-simclr-s0"]
    # initial weights depend on seed and objective: one control per member, at its step 0
    assert ms.names_in(s, "init") == [n + "-init" for n in ms.names_in(s, "trained")]
    assert (s["cnn-simclr-s0-init"].key == "cnn-simclr-s0@0"
            and s["cnn-simclr-s0"].key.endswith("@9"))
    assert len(ms.group_pairs(s, "init", "init")) == 4  # different architectures only
    with pytest.raises(ValueError, match="not a trained seed"):
        ms.zoo_sources(zoo, seed=5, objectives=["supervised"])
