"""helpers.reprpo.stem: the top-blocks model on cached stem outputs equals the full model."""
import numpy as np
import pytest
import torch

from helpers.reprpo import experiment as ex
from helpers.reprpo import methods as rp
from helpers.reprpo import stem
from helpers.reprpo import toy_genies as tg


@pytest.fixture(scope="module")
def toy():
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    base = LlamaForCausalLM(tg.toy_llama_config(hidden=16, layers=4, heads=2)).eval()
    tok = tg.ToyTokenizer()
    data = rp.tokenize_pairs(tg.make_preference_split("difficulty", 6), tok.encode, tok.encode,
                             tok.pad_id)
    return base, data


@pytest.mark.parametrize("n_top", [1, 2, 4])
def test_top_model_on_stem_equals_full_model(toy, n_top):
    base, data = toy
    top = stem.split_top(base, n_top)
    assert len(rp._layers(top)) == n_top
    cached = stem.stem_embeddings(base, data, n_top, batch_size=4)
    assert cached["chosen_embeds"].shape == (*data["chosen_ids"].shape, 16)
    with torch.no_grad():
        full = rp.forward_pairs(base, data)
        part = rp.forward_pairs(top, cached)
    torch.testing.assert_close(part["logp"], full["logp"], atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(rp.preference_correct(top, cached),
                                  rp.preference_correct(base, data))


def test_hidden_states_of_top_blocks_match(toy):
    base, data = toy
    top, cached = stem.split_top(base, 2), stem.stem_embeddings(base, data, 2)
    with torch.no_grad():
        full = rp.forward_pairs(base, data, "hs", [2])  # block 2 of 4 = block 0 of the top two
        part = rp.forward_pairs(top, cached, "hs", [0])
    torch.testing.assert_close(part["acts"]["0.hs"], full["acts"]["2.hs"], atol=1e-5, rtol=1e-4)


def test_training_on_stem_and_shuffling_keep_embeddings(toy):
    base, data = toy
    top, cached = stem.split_top(base, 2), stem.stem_embeddings(base, data, 2)
    model, hist = rp.train_method(top, rp.Method.parse("hs-ether-prefvec"), cached,
                                  rp.TrainSettings(lr=1e-2, batch=3, epochs=1), seed=0)
    assert len(hist) == 2 and np.isfinite(hist[-1]["loss"])
    sh = ex.shuffle_labels({"train": cached}, seed=1)["train"]
    swapped = (sh["chosen_ids"] != cached["chosen_ids"]).any(1)
    torch.testing.assert_close(sh["chosen_embeds"][swapped], cached["rejected_embeds"][swapped])


def test_bad_n_top(toy):
    base, data = toy
    with pytest.raises(ValueError, match="n_top must be between 1"):
        stem.split_top(base, 0)
    with pytest.raises(ValueError, match="n_top must be between 1"):
        stem.stem_embeddings(base, data, 5)
