"""Tests of the model zoo (helpers/prh/zoo.py) and the full-scale PRH sources
(helpers/prh/sources.py)."""
import pytest
import torch

from helpers.prh import zoo
from helpers.prh.shapes_world import make_dataset
from image_folders import write_image_folder

TINY = dict(seeds=(0,), n_train=64, batch_size=32, epochs=1, n_checkpoints=2, vit_dim=32,
            vit_depth=2, vit_heads=2, cnn_channels=(8, 8, 16, 16), mlp_hidden=(64, 32))


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_get_zoo_trains_caches_and_reloads(tmp_cache):
    cfg = zoo.ZooConfig(archs=("vit", "cnn", "mlp"), objectives=("supervised", "simclr"), **TINY)
    members = zoo.get_zoo(cfg, progress=False)
    assert [m.name for m in members] == [f"{a}-{o}-s0" for a in cfg.archs for o in cfg.objectives]
    assert all(m.steps == cfg.checkpoint_steps() == [0, 1, 2] for m in members)
    # training moved the weights away from the step-0 (random-init) checkpoint
    m = members[0]
    w0, w1 = m.build(0).state_dict(), m.build().state_dict()
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)
    again = zoo.get_zoo(cfg, progress=False)  # loaded, not retrained
    for a, b in zip(members, again):
        for k, v in a.states[a.steps[-1]].items():
            assert torch.equal(v, b.states[b.steps[-1]][k])
    assert len(list((tmp_cache / "zoo").glob("*.pt"))) == len(members)


def test_training_in_workers_equals_in_process(tmp_path, monkeypatch):
    """Two worker processes train the same weights as the calling process (and save them where
    the parent reads, even under a BOOK_CACHE set after the pool started)."""
    cfg = zoo.ZooConfig(archs=("cnn", "mlp"), objectives=("supervised", "simclr"),
                        **{**TINY, "n_train": 32, "cnn_channels": (4, 4, 8, 8)})
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "one"))
    alone = zoo.get_zoo(cfg, progress=False, workers=1)
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "two"))
    spread = zoo.get_zoo(cfg, progress=False, workers=2)
    assert len(list((tmp_path / "two" / "zoo").glob("*.pt"))) == len(alone) == 4
    assert [m.name for m in spread] == [m.name for m in alone]
    for a, b in zip(alone, spread):
        assert a.steps == b.steps and a.history == b.history
        for step in a.steps:
            assert a.states[step].keys() == b.states[step].keys()
            assert all(torch.equal(v, b.states[step][k]) for k, v in a.states[step].items())


def test_member_features_shapes_and_last_layer(tmp_cache):
    cfg = zoo.ZooConfig(archs=("vit", "cnn", "mlp"), objectives=("autoencoder",), **TINY)
    images = make_dataset(12, "ood", seed=0).images
    for m in zoo.get_zoo(cfg, progress=False):
        feats = zoo.member_features(m, images)
        net = m.build()
        assert all(f.shape[0] == 12 and f.ndim == 2 for f in feats)
        if m.arch == "vit":
            assert len(feats) == cfg.vit_depth
            with torch.no_grad():  # the last block's CLS token, before the final norm
                tokens = net.backbone.forward_features(images)
            assert tokens.shape[-1] == feats[-1].shape[1]
        elif m.arch == "mlp":  # the last hidden layer is the embedding
            assert len(feats) == len(cfg.mlp_hidden)
            torch.testing.assert_close(feats[-1], net(images), atol=1e-5, rtol=1e-5)
        else:  # CNN: last stage averaged over space = timm's global pool output
            torch.testing.assert_close(feats[-1], net(images), atol=1e-5, rtol=1e-5)
        # a checkpoint gives different features than the trained model
        assert not torch.allclose(zoo.member_features(m, images, step=0)[-1], feats[-1])


def test_caption_objective_and_accuracy(tmp_cache):
    cfg = zoo.ZooConfig(archs=("mlp",), objectives=("caption", "supervised"), **TINY)
    cap, sup = zoo.get_zoo(cfg, progress=False)
    assert cap.history[0]["loss"] > 0 and len(cap.history) == cfg.total_steps
    acc = zoo.factor_accuracy(sup, make_dataset(30, "ood", seed=1))
    assert set(acc) == {"shape", "color", "size", "row", "col", "bg_color", "texture"}
    assert all(0 <= v <= 1 for v in acc.values())
    with pytest.raises(ValueError, match="needs a supervised member"):
        zoo.factor_accuracy(cap, make_dataset(4, "id"))


def test_probe_accuracy_recovers_separable_labels():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=g)
    x = torch.nn.functional.one_hot(y, 3).float() * 3 + 0.1 * torch.randn(300, 3, generator=g)
    x = torch.cat([x, torch.randn(300, 5, generator=g)], 1)
    assert zoo.probe_accuracy(x[:200], y[:200], x[200:], y[200:]) == 1.0
    noise = torch.randn(300, 8, generator=g)
    assert zoo.probe_accuracy(noise[:200], y[:200], noise[200:], y[200:]) < 0.6
    with pytest.raises(ValueError, match="same number of rows"):
        zoo.probe_accuracy(x[:10], y[:9], x, y)


def test_config_and_member_errors(tmp_cache):
    with pytest.raises(ValueError, match="archs must be drawn from"):
        zoo.ZooConfig(archs=("rnn",))
    with pytest.raises(ValueError, match="objectives must be drawn from"):
        zoo.ZooConfig(objectives=("gan",))
    with pytest.raises(ValueError, match="at least batch_size"):
        zoo.ZooConfig(n_train=10, batch_size=32)
    with pytest.raises(ValueError, match="scale must be one of"):
        zoo.ZooConfig.for_scale("huge")
    assert zoo.ZooConfig.for_scale("book").n_train > zoo.ZooConfig.for_scale("smoke").n_train
    cfg = zoo.ZooConfig(archs=("mlp",), objectives=("autoencoder",), **TINY)
    (m,) = zoo.get_zoo(cfg, progress=False)
    with pytest.raises(ValueError, match="no checkpoint at step 7"):
        m.build(7)
    with pytest.raises(ValueError, match=r"images must be a float tensor \[N, 3, H, W\]"):
        zoo.member_features(m, torch.zeros(2, 64, 64))
    with pytest.raises(ValueError, match="trained on 64x64 images"):
        zoo.member_features(m, torch.zeros(2, 3, 32, 32))


# ----------------------------------------------------------------------------- full-scale sources


def test_full_sources_on_local_fixtures(tmp_path):
    import json

    import timm

    from helpers.prh import sources as ps
    from helpers.features import save_timm_model

    args = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, **args)
    folder = save_timm_model(vit, tmp_path / "tiny_vit", model_args=args)
    files = write_image_folder(tmp_path / "imagenet_o", 6)
    images, caps = ps.load_imagenet_o(tmp_path / "imagenet_o", n=4)
    assert (len(images) == 4 and caps[0].startswith("a photo of a ")
            and "goose" in " ".join(caps + ["goose"]))
    feats = ps.vit_features(folder, images, batch_size=2)
    assert feats.shape == (4, 2, 32) and torch.isfinite(feats).all()
    wit = tmp_path / "wit"
    wit.mkdir()
    with open(wit / "metadata.jsonl", "w") as fh:
        for i, f in enumerate(files):
            (wit / f.name).write_bytes(f.read_bytes())
            fh.write(json.dumps({"file_name": f.name, "text": [f"caption {i}", "page"]}) + "\n")
    images, caps = ps.load_wit(wit, n=3)
    assert len(images) == 3 and caps == ["caption 0", "caption 1", "caption 2"]
    assert len(ps.load_image_folder(tmp_path / "imagenet_o")) == 6
    assert len(ps.PRH_VISION_MODELS) == 17 and len(ps.PRH_LANGUAGE_MODELS) == 12


def test_full_sources_errors(tmp_path, monkeypatch):
    from helpers.prh import sources as ps
    from helpers.features import ModelUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ps.DatasetUnavailableError, match="cais/imagenet-o.*needs network access"):
        ps.load_imagenet_o(n=2)
    with pytest.raises(ps.DatasetUnavailableError, match="minhuh/prh.*needs network access"):
        ps.load_wit(n=2)
    with pytest.raises(ModelUnavailableError,
                       match="vit_tiny_patch16_224.augreg_in21k.*network access"):
        ps.vit_features(ps.PRH_VISION_MODELS[0], [])
    with pytest.raises(ValueError, match="No image folder"):
        ps.load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        ps.load_image_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="no metadata.jsonl"):
        ps.load_wit(tmp_path / "empty")
    write_image_folder(tmp_path / "few", 2)
    with pytest.raises(ValueError, match="only 2 exist"):
        ps.load_image_folder(tmp_path / "few", n=5)


def test_weights_key_tracks_every_knob():
    a, b = zoo.ZooConfig.for_scale("book"), zoo.ZooConfig.for_scale("smoke")
    assert zoo.weights_key(a) == zoo.weights_key(zoo.ZooConfig.for_scale("full"))
    assert zoo.weights_key(a) != zoo.weights_key(b)
    assert zoo.weights_key(a) != zoo.weights_key(zoo.ZooConfig(lr=1e-3))
