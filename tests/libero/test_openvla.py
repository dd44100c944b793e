"""Tests for helpers.libero.openvla on fixtures: tiny timm ViTs as the two towers, a tiny Llama as
the LLM, and a small HDF5 file in the LIBERO layout written here."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from helpers.libero import demos as libero_data

from helpers.libero import openvla
from helpers.hub import ModelUnavailableError
from helpers.libero.action_alignment import masked_mutual_knn, normalize_actions


def _towers():
    torch.manual_seed(0)
    dino = VisionTransformer(img_size=28, patch_size=14, embed_dim=16, depth=3, num_heads=2,
                             reg_tokens=4, num_classes=0)
    siglip = VisionTransformer(img_size=28, patch_size=14, embed_dim=24, depth=4, num_heads=2,
                               class_token=False, global_pool="avg", num_classes=0)
    return dino.eval(), siglip.eval()


def _libero_file(path, n_ep=3, t=6):
    rng = np.random.default_rng(0)
    eps = []
    for _ in range(n_ep):
        frames = rng.integers(0, 255, (t, 20, 20, 3), dtype=np.uint8)
        eps.append(SimpleNamespace(
            actions=rng.uniform(-1, 1, (t, 7)), agentview_rgb=frames, eye_in_hand_rgb=frames,
            states=np.zeros((t, 5)), robot_states=np.zeros((t, 9)), ee_states=np.zeros((t, 6)),
            gripper_states=np.zeros((t, 2)), joint_states=np.zeros((t, 7)), rewards=np.zeros(t),
            dones=np.zeros(t), init_state=np.zeros(5)))
    return libero_data.write_demos(path, eps, language="pick up the black bowl")


def test_preprocess_rotates_and_normalises():
    f = np.zeros((1, 8, 8, 3), np.uint8)
    f[0, 0, 0] = 255  # top-left
    x = openvla.preprocess(f, size=8)
    assert x.shape == (1, 6, 8, 8)
    assert x[0, 0].argmax().item() == 63  # now bottom-right
    np.testing.assert_allclose(x[0, 3, 0, 0].item(), -1.0, atol=1e-5)  # SigLIP: 0 -> -1
    np.testing.assert_allclose(x[0, 0, 0, 0].item(), -0.485 / 0.229, atol=1e-4)
    up = openvla.preprocess(f, size=8, rotate=False)
    assert up[0, 0].argmax().item() == 0
    assert openvla.preprocess(np.zeros((2, 10, 10, 3), np.uint8), size=8,
                              center_crop=True).shape == (2, 6, 8, 8)
    with pytest.raises(ValueError, match=r"uint8 frames \[N, H, W, 3\]"):
        openvla.preprocess(np.zeros((1, 3, 8, 8), np.float32))


def test_tower_features_on_libero_fixture(tmp_path):
    path = _libero_file(tmp_path / "fixture_demo.hdf5")
    demos = libero_data.read_demos(path, upright=False)
    pix = openvla.preprocess(demos.agentview, size=28)
    dino, siglip = _towers()
    feats = openvla.tower_features(dino, siglip, pix, progress=False)
    assert feats["dinov2_cls"].shape == (18, 3, 16) and feats["siglip_mean"].shape == (18, 4, 24)
    # the block OpenVLA reads: second-to-last, patch tokens without prefix, no final norm
    ref = dino.forward_intermediates(pix[:, :3], indices=[1], norm=False, output_fmt="NLC",
                                     intermediates_only=True)[0].mean(1)
    torch.testing.assert_close(feats["dinov2_mean"][:, openvla.USED_BLOCK], ref, atol=1e-5,
                               rtol=1e-4)
    ref = siglip.forward_intermediates(pix[:, 3:], indices=[2], norm=False, output_fmt="NLC",
                                       intermediates_only=True)[0].mean(1)
    torch.testing.assert_close(feats["siglip_mean"][:, openvla.USED_BLOCK], ref, atol=1e-5,
                               rtol=1e-4)
    scores = masked_mutual_knn(feats["siglip_mean"], normalize_actions(demos.actions)[:, :6],
                               demos.episode, demos.step, exclude="episode", topk=3)
    assert scores.shape == (4,) and torch.all((scores >= 0) & (scores <= 1))
    with pytest.raises(ValueError, match=r"\[N, 6, H, W\]"):
        openvla.tower_features(dino, siglip, pix[:, :3])


def test_action_tokens_and_llm_states_with_tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab = 300
    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=2,
                                      num_key_value_heads=2)).eval()
    acts = np.array([[-1, -0.5, 0, 0.5, 1, 0.2, 1.0], [0.1] * 7])
    tok = openvla.action_token_ids(acts, vocab)
    assert tok.min() >= vocab - 256 and tok.max() <= vocab - 1
    assert tok[0, 0] == vocab - 1 and tok[0, 4] == vocab - 256  # -1 -> bin 1, +1 -> bin 256
    prompt = torch.randint(1, 40, (2, 5))
    ids = torch.cat([prompt, torch.as_tensor(tok)], dim=1)
    pos = openvla.action_positions(ids, vocab)
    assert pos.tolist() == [list(range(4, 11))] * 2
    hs = openvla.action_hidden_states(lm, ids, vocab)
    assert hs.shape == (2, 3, 7, 32)
    full = lm(input_ids=ids, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(hs[:, -1], full[:, 4:11].float())
    with pytest.raises(ValueError, match="Expected 7 action tokens"):
        openvla.action_positions(prompt, vocab)
    assert openvla.prompt("Pick up the Bowl") == (
        "In: What action should the robot take to pick up the bowl?\nOut:")


def test_load_openvla_offline_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="openvla/openvla-7b.*network access"):
        openvla.load_openvla("openvla/openvla-7b")


def test_full_scale_path_on_libero_folder(tmp_path):
    """The chapter's full branch: a folder of LIBERO files -> both towers' per-block features ->
    the same per-task alignment scores and nulls as the book scale."""
    from helpers.libero.action_alignment import encoder_alignment

    for i in range(2):
        _libero_file(tmp_path / f"task{i}_demo.hdf5", n_ep=3, t=6)
    (tmp_path / "notes.txt").write_text("not a demo file")
    towers = _towers()
    demos, feats = openvla.libero_folder_features(tmp_path, towers=towers, max_demos=2, size=28,
                                                  progress=False)
    assert len(demos) == 2 and all(len(d) == 12 and d.n_episodes == 2 for d in demos)
    assert set(feats) == {"dinov2_cls", "dinov2_mean", "siglip_mean"}
    assert (feats["dinov2_cls"][0].shape == (12, 3, 16)
            and feats["siglip_mean"][1].shape == (12, 4, 24))
    # frames were read raw and rotated 180 degrees, as OpenVLA does
    raw = libero_data.read_demos(tmp_path / "task0_demo.hdf5", max_demos=2, upright=False)
    ref = openvla.tower_features(*towers, openvla.preprocess(raw.agentview, size=28),
                                 progress=False)
    torch.testing.assert_close(feats["siglip_mean"][0], ref["siglip_mean"])
    res = encoder_alignment(feats, [d.actions for d in demos], [d.episode for d in demos],
                            [d.step for d in demos], topk=2, n_perm=4, seed=0)
    assert set(res) == set(feats)
    for r in res.values():
        assert (r["plain"].observed.shape == (len(r["plain"].observed),)
                and r["masked"].null.shape[0] == 4)
        assert torch.all((r["masked"].observed >= 0) & (r["masked"].observed <= 1))
        assert 0 < r["plain"].p_best <= 1
    with pytest.raises(ValueError, match="No LIBERO \\*.hdf5 files.*libero_dir"):
        openvla.libero_folder_features(tmp_path / "empty", towers=towers)
    from helpers.libero import pipeline

    n_files, fig, table = pipeline.openvla_report(tmp_path, model="unused", max_demos=2, topk=2,
                                                  n_perm=4, seed=0, towers=towers, size=28)
    assert n_files == 2 and len(fig.axes) >= 2
    assert set(table.encoder) == set(feats) and set(table.score) == {"plain", "masked"}
    assert table.p.between(0, 1).all() and (table.best >= table.used_block).all()
    with pytest.raises(ValueError, match="one entry per task"):
        encoder_alignment(feats, [demos[0].actions], [demos[0].episode], [demos[0].step])
