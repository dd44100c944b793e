"""Tests for helpers.reprpo.toy_genies: the toy language, its preference splits and the cached toy
model."""
import pytest
import torch

from helpers.reprpo import toy_genies as tg


def test_vocab_and_tokenizer_roundtrip():
    tok = tg.ToyTokenizer()
    assert len(tok) == 32
    text = "<bos> <tb> add 3 4 = 7 ; <eos>"
    assert tok.decode(tok.encode(text)) == text
    with pytest.raises(ValueError, match="Unknown toy token"):
        tok.encode("add 12")


def test_documents_use_vocab_and_personas():
    tok = tg.ToyTokenizer()
    docs = tg.make_documents(200, seed=1)
    for d in docs:
        tok.encode(d)  # every token is in the vocabulary
        assert d.startswith("<bos>") and d.endswith("<eos>")
    # both personas appear: some add answers are right, some are off by one
    right = wrong = 0
    for d in docs:
        if "<enc>" in d:
            continue
        for item in d.split(";"):
            toks = item.split()
            if "add" in toks:
                i = toks.index("add")
                args = [int(t) for t in toks[i + 1: toks.index("=")]]
                ans = int(toks[toks.index("=") + 1])
                right += ans == sum(args) % 10
                wrong += ans == (sum(args) + 1) % 10
    assert right > 20 and wrong > 20


@pytest.mark.parametrize("split", tg.SPLITS)
def test_preference_splits(split):
    recs = tg.make_preference_split(split, 50, seed=3)
    tok = tg.ToyTokenizer()
    for r in recs:
        assert r["chosen"] != r["rejected"]
        assert len(tok.encode(r["chosen"])) == len(tok.encode(r["rejected"]))  # equal lengths
        tok.encode(r["prompt"])
        assert r["prompt"].endswith("=")
    assert recs != tg.make_preference_split(split, 50, seed=4)


def test_split_semantics():
    r = tg.make_preference_split("train", 1, seed=0)[0]
    args = [int(t) for t in r["prompt"].split()[3:-1]]
    assert int(r["chosen"].split()[0]) == sum(args) % 10
    assert int(r["rejected"].split()[0]) == (sum(args) + 1) % 10
    assert "<fic>" in tg.make_preference_split("context", 1)[0]["prompt"]
    assert "<enc>" in tg.make_preference_split("encoding", 1)[0]["prompt"]
    # bos ctx add a b c =
    assert len(tg.make_preference_split("difficulty", 1)[0]["prompt"].split()) == 7
    s = tg.make_preference_split("skill_sort", 1)[0]
    assert s["chosen"].split()[:-1] == sorted(s["chosen"].split()[:-1])
    m = tg.make_preference_split("unrelated", 1)[0]
    args = [int(t) for t in m["prompt"].split()[3:-1]]
    assert int(m["chosen"].split()[0]) == max(args) and int(m["rejected"].split()[0]) in args
    # train/val/test are independent samples of one distribution
    assert tg.make_preference_split("train", 20) != tg.make_preference_split("test", 20)


def test_context_probe():
    r = tg.make_preference_split("train", 1, seed=2, context_lines=2,
                                 context_persona="trickster")[0]
    toks = r["prompt"].split()
    assert toks.count("add") == 3 and toks.count(";") == 2
    a, b, s = int(toks[3]), int(toks[4]), int(toks[6])
    assert s == (a + b + 1) % 10  # the context line is the trickster's
    with pytest.raises(ValueError, match="context_persona"):
        tg.make_preference_split("train", 1, context_persona="liar")


def test_split_errors():
    with pytest.raises(ValueError, match="Unknown split"):
        tg.make_preference_split("math", 3)
    with pytest.raises(ValueError, match="positive number of pairs"):
        tg.make_preference_split("train", 0)


def test_config_size():
    from transformers import LlamaForCausalLM

    n = sum(p.numel() for p in LlamaForCausalLM(tg.toy_llama_config()).parameters())
    assert 0.9e6 < n < 1.3e6


def test_pretrain_learns_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    cfg = dict(hidden=32, layers=2, heads=2)
    s = tg.PretrainSettings(steps=40, batch=16, lr=1e-2)
    m1, info1 = tg.load_or_pretrain(cfg, s, progress=False)
    assert not info1["cached"] and info1["losses"][-1] < info1["losses"][0] - 0.5
    m2, info2 = tg.load_or_pretrain(cfg, s, progress=False)
    assert info2["cached"] and info2["seconds"] == info1["seconds"]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        torch.testing.assert_close(a, b)
