"""Tests for helpers.libero.policy: BC training, checkpoints, acting (no simulator)."""
import numpy as np
import pytest
import torch

from helpers.libero import policy as bc
from helpers.features import extract_vision_features


def _data(n=48, size=16, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    # the action is a function of the image brightness, so BC has something to learn
    bright = frames.mean((1, 2, 3)) / 255
    actions = np.zeros((n, 7), np.float32)
    actions[:, 0] = 2 * bright - 1
    actions[:, 3] = rng.uniform(-0.5, 0.5, n)
    actions[:, 6] = np.where(bright > np.median(bright), 1.0, -1.0)
    return frames, rng.normal(size=(n, 9)).astype(np.float32), actions, rng.integers(0, 2, n)


CFG = bc.PolicyConfig(image_size=16, patch_size=8, embed_dim=32, depth=2, num_heads=2, n_tasks=2,
                      epochs=3, batch_size=16)


def test_train_keeps_checkpoints_and_loss_falls():
    frames, states, actions, tasks = _data()
    policy, ckpts, hist = bc.train_bc(frames, states, actions, tasks, CFG, (0, 3), progress=False)
    assert set(ckpts) == {0, 3} and len(hist) == 3
    assert hist[-1] < hist[0]
    w0 = ckpts[0]["encoder.blocks.0.attn.qkv.weight"]
    assert not torch.equal(w0, ckpts[3]["encoder.blocks.0.attn.qkv.weight"])
    again = bc.load_policy(bc.config_dict(CFG), ckpts[3])
    a = again.act(frames[0], states[0], 1)
    assert a.shape == (7,) and a[6] in (-1.0, 1.0)
    # unnormalised translation stays within the data's q01..q99 range
    assert actions[:, 0].min() - 1e-4 <= a[0] <= actions[:, 0].max() + 1e-4
    np.testing.assert_allclose(a, policy.act(frames[0], states[0], 1), atol=1e-5)


def test_encoder_is_a_timm_vit_for_feature_extraction():
    enc = bc.make_encoder(CFG)
    x = bc.to_input(torch.randint(0, 255, (4, 16, 16, 3), dtype=torch.uint8))
    assert x.shape == (4, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    f = extract_vision_features(enc, x, pool="cls", transform=False, progress=False)
    assert f.shape == (4, CFG.depth, CFG.embed_dim)


def test_errors():
    frames, states, actions, tasks = _data(n=8)
    with pytest.raises(ValueError, match="same length"):
        bc.train_bc(frames, states[:4], actions, tasks, CFG, progress=False)
    with pytest.raises(ValueError, match="match cfg.image_size"):
        bc.train_bc(frames[:, :8, :8], states, actions, tasks, CFG, progress=False)
    with pytest.raises(ValueError, match=r"checkpoint_epochs \[5\] outside"):
        bc.train_bc(frames, states, actions, tasks, CFG, (0, 5), progress=False)
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
        bc.to_input(torch.zeros(2, 3, 16, 16))


def test_a_few_batches_train():
    """Fewer than 10 optimiser steps still train (the warm-up keeps at least 2 steps)."""
    frames, states, actions, tasks = _data(n=20)
    cfg = bc.PolicyConfig(**{**bc.config_dict(CFG), "epochs": 1, "batch_size": 16})
    _, _, hist = bc.train_bc(frames, states, actions, tasks, cfg, progress=False)
    assert len(hist) == 1 and np.isfinite(hist[0])


def test_mobilenet_policy_pretrained_frozen_and_chunked():
    frames, states, actions, tasks = _data(n=24, size=32)
    episodes = np.repeat(np.arange(4), 6)
    cfg = bc.PolicyConfig(image_size=32, n_tasks=2, epochs=1, batch_size=12,
                          encoder="mobilenet_v2", pretrained=True, freeze_encoder=True, chunk=3)
    policy, ckpts, _ = bc.train_bc(frames, states, actions, tasks, cfg, (0, 1), progress=False,
                                   episodes=episodes)
    enc0 = {k: v for k, v in ckpts[0].items() if k.startswith("encoder.")}
    # frozen: encoder weights and BatchNorm running statistics are unchanged by training
    assert all(torch.equal(v, ckpts[1][k]) for k, v in enc0.items())
    assert not torch.equal(ckpts[0]["head.2.weight"], ckpts[1]["head.2.weight"])
    assert policy.act_chunk(frames[0], states[0], 0).shape == (3, 7)
    rand = bc.make_encoder(bc.PolicyConfig(encoder="mobilenet_v2", pretrained=False))
    assert not torch.equal(rand.features[0][0].weight, policy.encoder.features[0][0].weight)
    with pytest.raises(ValueError, match="needs episodes"):
        bc.train_bc(frames, states, actions, tasks, cfg, progress=False)
    np.testing.assert_array_equal(bc.chunk_rows(np.array([0, 0, 0, 1, 1]), 3),
                                  [[0, 1, 2], [1, 2, 2], [2, 2, 2], [3, 4, 4], [4, 4, 4]])
