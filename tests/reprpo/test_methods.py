"""Tests that pin the preference-optimisation methods of helpers.reprpo.methods (and the full-scale
loaders)."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.reprpo import methods as rp
from helpers.reprpo import toy_genies as tg


def _acts(seed=0, B=3, T=5, H=16, keys=("1.hs", "2.hs")):
    g = torch.Generator().manual_seed(seed)
    attn = torch.ones(2 * B, T, dtype=torch.long)
    attn[0, -2:] = 0
    mk = lambda: {"acts": {k: torch.randn(2 * B, T, H, generator=g) for k in keys}, "attn": attn,
                  "logp": torch.randn(2 * B, generator=g)}
    return mk(), mk()


def _tdict(kind, H=16, keys=("1.hs", "2.hs")):
    return torch.nn.ModuleDict({rp._tkey(k): rp.make_transform(kind, H, seed=i)
                                for i, k in enumerate(keys)})


def test_dpo_loss_hand_values():
    # delta = (-1 - -1.5) - (-2 - -1.5) = 1  ->  -log sigmoid(0.1) = log(1 + e^-0.1)
    loss = rp.dpo_loss(torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -3.0]),
                       torch.tensor([-1.5, -3.0]), torch.tensor([-1.5, -3.0]), beta=0.1)
    torch.testing.assert_close(loss, torch.tensor([math.log1p(math.exp(-0.1)), math.log(2.0)]))


def test_dpo_loss_matches_trl_dpotrainer(tmp_path):
    """Our DPO loss on our log-probs equals trl's DPOTrainer.compute_loss on the same collated
    batch."""
    pytest.importorskip("trl")
    import warnings

    from datasets import Dataset
    from peft import LoraConfig
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import DPOConfig, DPOTrainer

    warnings.filterwarnings("ignore")
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>"] + list("abcdefghij"))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", bos_token="<s>",
                                  eos_token="</s>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=16,
                                         intermediate_size=32,
                                         num_hidden_layers=2, num_attention_heads=2,
                                         num_key_value_heads=2,
                                         pad_token_id=0, bos_token_id=1, eos_token_id=2))
    ds = Dataset.from_dict({"prompt": ["a b c", "d e"], "chosen": [" f g", " h"],
                            "rejected": [" i", " j a b"]})
    args = DPOConfig(output_dir=str(tmp_path), beta=0.1, use_cpu=True, bf16=False,
                     gradient_checkpointing=False,
                     report_to="none", per_device_train_batch_size=2)
    tr = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
                    peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    batch = next(iter(tr.get_train_dataloader()))
    with torch.no_grad():
        trl_loss = tr.compute_loss(tr.model, batch)
        B = batch["input_ids"].shape[0] // 2
        data = {}
        for side, sl in (("chosen", slice(0, B)), ("rejected", slice(B, 2 * B))):
            data[f"{side}_ids"] = batch["input_ids"][sl]
            data[f"{side}_attn"] = batch["attention_mask"][sl]
            data[f"{side}_cmask"] = batch["completion_mask"][sl]
        pi = rp.forward_pairs(tr.model, data)
        with tr.model.disable_adapter():
            ref = rp.forward_pairs(tr.model, data)
    ours = rp.dpo_loss(pi["logp"][:B], pi["logp"][B:], ref["logp"][:B], ref["logp"][B:],
                       beta=0.1).mean()
    # the adapter is not the identity, so this is a real check
    assert abs(float(trl_loss) - math.log(2)) > 1e-3
    torch.testing.assert_close(ours, trl_loss.float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["ortho", "hra"])
def test_isometries_leave_mse_unchanged(kind):
    pi, ref = _acts()
    plain = rp.mse_loss(pi, ref, _tdict("none"))
    torch.testing.assert_close(rp.mse_loss(pi, ref, _tdict(kind)), plain, atol=1e-4, rtol=1e-5)


def test_non_isometries_change_losses():
    pi, ref = _acts()
    assert not torch.allclose(rp.mse_loss(pi, ref, _tdict("ether")),
                              rp.mse_loss(pi, ref, _tdict("none")))
    # rank works coordinate-wise (log-softmax over hidden units), so a rotation changes it
    assert not torch.allclose(rp.rank_loss(pi, ref, _tdict("ortho")),
                              rp.rank_loss(pi, ref, _tdict("none")))


@pytest.mark.parametrize("kind", ["ortho", "hra"])
def test_transforms_are_orthogonal(kind):
    t = rp.make_transform(kind, 12, seed=1)
    m = t(torch.eye(12))
    torch.testing.assert_close(m @ m.T, torch.eye(12), atol=1e-5, rtol=0)


def test_transform_errors():
    with pytest.raises(ValueError, match="Unknown transform"):
        rp.make_transform("svd", 8)
    with pytest.raises(ValueError, match="divisible by n_blocks"):
        rp.ETHER(10, n_blocks=4)


def test_losses_are_finite_and_differentiable():
    pi, ref = _acts()
    for k in pi["acts"]:
        pi["acts"][k].requires_grad_(True)
    for name, fn in rp.HS_LOSSES.items():
        loss = fn(pi, ref, _tdict("none"))
        assert torch.isfinite(loss), name
        (g,) = torch.autograd.grad(loss, pi["acts"]["1.hs"])
        assert torch.isfinite(g).all() and g.abs().sum() > 0, name


def test_prefvec_hand_formula_and_unsaturated_dpo_part():
    """prefvec = |1e5 * mean_h proj_pref(pi_cho - pi_rej)| + log sigmoid(-ptheta) (ref.
    7a23287)."""
    pi, ref = _acts(keys=("1.hs",))
    pi["logp"] = pi["logp"].requires_grad_(True)
    B = 3
    hp, hr = (rp.reduce_tokens(pi["acts"]["1.hs"], pi["attn"]),
              rp.reduce_tokens(ref["acts"]["1.hs"], ref["attn"]))
    u = (hr[:B] - hr[B:]) / (hr[:B] - hr[B:]).norm(dim=-1, keepdim=True)
    rel = (((hp[:B] - hp[B:]) * u).sum(-1, keepdim=True) * u).mean(-1)
    ptheta = (pi["logp"][:B] - pi["logp"][B:]) - (ref["logp"][:B] - ref["logp"][B:])
    want = (1e5 * rel).abs().mean() + torch.nn.functional.logsigmoid(-ptheta).mean()
    loss = rp.prefvec_loss(pi, ref, _tdict("none", keys=("1.hs",)))
    torch.testing.assert_close(loss, want)
    # the DPO part keeps its gradient however far the policy has moved (the 0700063 form had none)
    far = {**pi, "logp": pi["logp"] + torch.tensor([50.0, 50, 50, 0, 0, 0])}
    (g,) = torch.autograd.grad(rp.prefvec_loss(far, ref, _tdict("none", keys=("1.hs",))),
                               pi["logp"])
    assert g[:B].abs().min() > 0.1


def test_ether_matches_reference_layout():
    t = rp.make_transform("ether", 576, seed=0)
    assert t.n_blocks == 2 and t.down.shape == (576, 9)  # ETHERConfig: nb 2, reduction 60
    assert {n for n, _ in t.named_parameters()} == {"u", "up"}  # the down map is fixed (.data)
    x = torch.randn(4, 576)
    assert not torch.allclose(t(x), x)  # not the identity at initialisation, as in the reference
    t(x).sum().backward()
    assert t.u.grad.abs().sum() > 0 and t.up.grad.abs().sum() > 0


def test_prefvec_adapter_learns_and_changes_outputs(tiny_base):
    """A trained hs-ether-prefvec adapter: its loss falls on a fixed batch, its log-probs move off
    the base model's, and the moved log-probs survive saving and restoring the adapter."""
    from helpers.reprpo import experiment as ex

    tok = tg.ToyTokenizer()
    data = rp.tokenize_pairs(tg.make_preference_split("train", 8), tok.encode, tok.encode,
                             tok.pad_id)
    model, hist = rp.train_method(tiny_base, rp.Method.parse("hs-ether-prefvec"), data,
                                  rp.TrainSettings(lr=1e-2, batch=8, epochs=12), seed=0)
    losses = [h["loss"] for h in hist]
    assert np.mean(losses[-3:]) < losses[0] - 0.05 * abs(losses[0])
    restored = ex.restore_adapter(tiny_base, ex.adapter_state(model), lora_r=8)
    with torch.no_grad():
        trained, again = (rp.forward_pairs(model, data)["logp"],
                          rp.forward_pairs(restored, data)["logp"])
        base = rp.forward_pairs(tiny_base, data)["logp"]
    torch.testing.assert_close(trained, again)
    assert (trained - base).abs().max() > 1e-2
    chosen_gain = (trained - base)[:8] - (trained - base)[8:]
    assert chosen_gain.mean() > 0  # it moved towards the chosen answers


def test_project_grad_components():
    g = torch.randn(6, 3)
    d = torch.randn(6)
    u = d / d.norm()
    proj = torch.outer(u, u @ g)
    torch.testing.assert_close(rp.project_grad(g, d, beta=1.0, slope=1.0), g)  # identity settings
    # parallel part only
    torch.testing.assert_close(rp.project_grad(g, d, beta=0.0, slope=1.0), proj)
    orth = (rp.project_grad(g, -3 * d, beta=1.0, slope=1.0)
            - rp.project_grad(g, d, beta=0.0, slope=1.0))
    # what is left is orthogonal to d
    torch.testing.assert_close(u @ orth, torch.zeros(3), atol=1e-6, rtol=0)
    # the default rule
    torch.testing.assert_close(rp.project_grad(g, d), torch.relu(proj) + 0.8 * (g - proj))
    with pytest.raises(ValueError, match="output space"):
        rp.project_grad(g, torch.randn(5))


def test_projbp_rewrite():
    g = torch.randn(2, 4, 8)
    pref = torch.randn(2, 8)
    torch.testing.assert_close(rp.projbp_rewrite(g, pref, beta=1.0, slope=1.0), g)
    new = rp.projbp_rewrite(g, pref)
    torch.testing.assert_close(new.norm(dim=-1), g.norm(dim=-1))  # per-token norm preserved
    # leaky_relu acts element-wise on the projection: a gradient along a positive pref passes
    # unchanged
    pref = pref.abs()
    u = pref / pref.norm(dim=-1, keepdim=True)
    along = u.unsqueeze(1).expand(2, 4, 8).clone()
    torch.testing.assert_close(rp.projbp_rewrite(along, pref), along)


def test_tokenize_pairs_masks_and_truncation():
    tok = tg.ToyTokenizer()
    recs = [{"prompt": "<bos> <tb> add 1 2 =", "chosen": "3 ;", "rejected": "4 ;"}]
    d = rp.tokenize_pairs(recs, tok.encode, tok.encode, tok.pad_id)
    assert d["chosen_ids"].shape == (1, 8) and d["chosen_cmask"][0].tolist() == [0] * 6 + [1, 1]
    assert tok.decode(d["rejected_ids"][0][d["rejected_cmask"][0].bool()]) == "4 ;"
    short = rp.tokenize_pairs(recs, tok.encode, tok.encode, tok.pad_id, max_prompt_len=3,
                              max_len=4)
    # prompt left-, completion right-truncated
    assert tok.decode(short["chosen_ids"][0]) == "1 2 = 3"
    with pytest.raises(ValueError, match="no records"):
        rp.tokenize_pairs([], tok.encode, tok.encode, 0)
    with pytest.raises(ValueError, match="missing"):
        rp.tokenize_pairs([{"prompt": "a"}], tok.encode, tok.encode, 0)


def test_method_names():
    assert rp.Method.parse("side-hra-rank").name == "side-hra-rank"
    assert rp.Method.parse("dpo").kind == "dpo"
    assert rp.Method.parse("side-hra-mse").canonical == "side-none-mse"  # isometry + distance loss
    assert rp.Method.parse("hs-ortho-rank").canonical == "hs-ortho-rank"
    with pytest.raises(ValueError, match="Cannot parse method"):
        rp.Method.parse("reprpo")
    with pytest.raises(ValueError, match="Unknown transform"):
        rp.Method.parse("hs-svd-mse")


def test_select_lr():
    assert rp.select_lr({1e-3: 0.9, 1e-2: 0.9, 1e-1: 0.5}) == 1e-3
    with pytest.raises(ValueError, match="no scores"):
        rp.select_lr({})


@pytest.fixture(scope="module")
def tiny_base():
    torch.manual_seed(0)
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM(tg.toy_llama_config(hidden=16, layers=3, heads=2)).eval()


@pytest.mark.parametrize("name", ["dpo", "projgrad", "projbp", "hs-ortho-mse", "side-ether-rank",
                                  "hs-hra-prefvec"])
def test_train_method_runs_and_keeps_base(tiny_base, name):
    tok = tg.ToyTokenizer()
    data = rp.tokenize_pairs(tg.make_preference_split("train", 8), tok.encode, tok.encode,
                             tok.pad_id)
    before = {k: v.clone() for k, v in tiny_base.state_dict().items()}
    model, hist = rp.train_method(tiny_base, rp.Method.parse(name), data,
                                  rp.TrainSettings(lr=1e-2, batch=4, epochs=1), seed=0)
    assert len(hist) == 2 and all(np.isfinite(h["loss"]) for h in hist)
    for k, v in tiny_base.state_dict().items():  # the shared base model is untouched
        torch.testing.assert_close(v, before[k])
    assert any(n for n, p in model.named_parameters() if "lora_B" in n and p.abs().sum() > 0)
    with model.disable_adapter():
        base_acc = rp.preference_correct(model, data)
    np.testing.assert_array_equal(base_acc, rp.preference_correct(tiny_base, data))


def test_full_scale_path_on_fixtures(tmp_path):
    """The full-scale loaders on a tiny saved Llama + tokenizer and hub-schema parquet records."""
    import pandas as pd
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from helpers.reprpo import genies as gd

    words = ["<pad>", "<s>", "</s>"] + "the war began in year one two yes no".split()
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>")
    tokenizer.save_pretrained(tmp_path / "m")
    config = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "m")
    (tmp_path / "d" / "us_history_textbook").mkdir(parents=True)
    pd.DataFrame({"prompt": ["the war began in"] * 6, "chosen": ["year one"] * 6,
                  "rejected": ["year two"] * 6}).to_parquet(tmp_path / "d" / "us_history_textbook"
                                                            / "train.parquet")
    recs = gd.load_preference_records("us_history_textbook", "train", n=4,
                                      local_dir=tmp_path / "d")
    assert len(recs) == 4 and set(recs[0]) == {"prompt", "chosen", "rejected"}
    model, tok = gd.load_causal_lm(str(tmp_path / "m"))
    ep, ec, pad = gd.hf_encoders(tok)
    data = rp.tokenize_pairs(recs, ep, ec, pad)
    assert data["chosen_cmask"][0].sum() == 3  # "year one" + EOS
    trained, hist = rp.train_method(model, rp.Method.parse("side-none-mse"), data,
                                    rp.TrainSettings(lr=1e-2, batch=2, epochs=1), seed=0)
    assert len(hist) == 2 and rp.preference_correct(trained, data).shape == (4,)
    with pytest.raises(FileNotFoundError, match="No local copy"):
        gd.load_preference_records("math", "train", local_dir=tmp_path / "d")
    pd.DataFrame({"prompt": ["a"], "answer": ["b"]}).to_json(tmp_path / "d" / "us_history_textbook"
                                                             / "test.json")
    with pytest.raises(ValueError, match="need columns"):
        gd.load_preference_records("us_history_textbook", "test", local_dir=tmp_path / "d")


def test_full_scale_offline_errors_name_model_and_dataset():
    code = ("from helpers.reprpo import genies as gd\n"
            "for f, a in ((gd.load_preference_records, ('us_history_textbook', 'train')),"
            " (gd.load_causal_lm, ('TinyLlama/TinyLlama-1.1B-Chat-v1.0',))):\n"
            "    try:\n        f(*a)\n"
            "    except (RuntimeError, OSError) as e:\n        print(e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120).stdout
    assert "wassname/genie_dpo" in out and "TinyLlama/TinyLlama-1.1B-Chat-v1.0" in out
    assert out.count("needs network access") == 2


@pytest.mark.parametrize("collect", [None, "hs", "side"])
def test_reference_outputs_equal_the_disabled_adapter_pass(tiny_base, collect):
    """Training reads the reference from one pass over the data; it must equal the per-batch
    pass of the policy with its adapter disabled (what the reference code runs every step)."""
    tok = tg.ToyTokenizer()
    data = rp.tokenize_pairs(tg.make_preference_split("train", 6), tok.encode, tok.encode,
                             tok.pad_id)
    blocks = [1, 2]
    reference = rp.reference_outputs(tiny_base, data, collect, blocks, batch_size=4)
    model = rp.add_lora(tiny_base, 4, seed=0)
    with torch.no_grad():
        for p in (p for n, p in model.named_parameters() if "lora_B" in n):
            p.normal_()  # a non-trivial adapter, so 'disabled' is a real condition
        idx = torch.tensor([4, 1, 3])
        batch = {k: v[idx] for k, v in data.items()}
        with model.disable_adapter():
            want = rp.forward_pairs(model, batch, collect, blocks)
        moved = rp.forward_pairs(model, batch, collect, blocks)
    got = rp._reference_batch(reference, idx, want["attn"])
    torch.testing.assert_close(got["logp"], want["logp"], atol=1e-4, rtol=1e-5)
    assert not torch.allclose(moved["logp"], want["logp"])
    assert set(got["acts"]) == set(want["acts"]) == (set() if collect is None
                                                     else set(want["acts"]))
    for k in want["acts"]:
        torch.testing.assert_close(got["acts"][k], want["acts"][k], atol=1e-5, rtol=1e-4)
