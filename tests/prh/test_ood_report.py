"""Tests of helpers/prh/ood_report.py: the PRH-OOD chapter's tables (layer spacing, protocol
tables, agreement rows, pair matrices, the shapes-world scores and their summaries)."""
import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from helpers.prh import ood_report as rep

matplotlib.use("Agg")


def _layers(seed, n=60, n_layers=3, shared=None):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_layers):
        x = torch.randn(n, 12, generator=g)
        out.append(x if shared is None else x + 3 * shared @ torch.randn(4, 12, generator=g))
    return out


def test_spaced_layers_keeps_first_and_last():
    layers = [torch.full((2, 1), float(i)) for i in range(10)]
    picked = rep.spaced_layers(layers, 4)
    assert [int(x[0, 0]) for x in picked] == [0, 3, 6, 9]
    assert len(rep.spaced_layers(layers, None)) == 10 and len(rep.spaced_layers(layers, 20)) == 10
    with pytest.raises(ValueError, match="n must be >= 1"):
        rep.spaced_layers(layers, 0)


def test_agreement_configs_follow_the_blog():
    assert rep.agreement_configs([10, 50]) == [("mutual_knn", 10), ("mutual_knn", 50),
                                               ("cknna", 10), ("cknna", 50),
                                               ("unbiased_cka", 10)]


def test_protocol_tables_and_agreement_rows():
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(60, 4, generator=g)
    raw = {f"m{i}": _layers(i, shared=shared if i % 2 else None) for i in range(4)}
    configs = rep.agreement_configs([5])
    tables = rep.protocol_tables(raw, configs, n_perm=9, n_layers=2)
    assert set(tables) == {"blog", "PRH"}
    # blog: one layer per model, so the chosen layer is always 0; PRH searches two
    assert (tables["blog"][["layer_a", "layer_b"]] == 0).all().all()
    assert tables["PRH"][["layer_a", "layer_b"]].max().max() <= 1
    rows = rep.agreement_rows({("x", p): t for p, t in tables.items()}, n_boot=50)
    assert list(rows.index) == [("x", p, v) for p in ("blog", "PRH") for v in ("raw", "corrected")]
    assert (rows.n_pairs == 6).all() and (rows.n_perm == 9).all()
    assert ((rows.p_value >= 0.1 - 1e-9) & (rows.p_value <= 1)).all()  # floor 1/10
    fig = rep.plot_agreement_means(rows, ["C0", "C1"], "grey")
    assert len(fig.axes) == 1


def test_pair_matrix_objective_gap_and_init_gain():
    idx = pd.MultiIndex.from_tuples([("a", "b"), ("a", "hed"), ("b", "hed")])
    diff = pd.DataFrame({"photos": [0.3, 0.1, 0.1], "fashion": [0.1, -0.1, -0.1]}, index=idx)
    with_hed, without = rep.objective_gap(diff, "hed")
    assert with_hed == pytest.approx(0.0) and without == pytest.approx(0.2)
    m = rep.pair_matrix(diff["photos"], ["a", "b", "hed"])
    assert m[0, 1] == m[1, 0] == 0.3 and np.isnan(m[0, 0])
    by_model = pd.DataFrame({"fashion": [0.5, 0.1, 0.4, 0.2]},
                            index=["a", "a (init)", "b", "b (init)"])
    mean, lo, hi = rep.init_gain(by_model, ["a", "b"], n_boot=100)["fashion"]
    assert mean == pytest.approx(0.3) and lo <= mean <= hi


def test_vv_scores_kinds_and_summary():
    g = torch.Generator().manual_seed(1)
    shared = torch.randn(60, 4, generator=g)
    prepared = {s: {(n, st): __import__("helpers").alignment.prepare(
        _layers(10 * k + st + (s == "ood"), shared=shared if st else None))
        for k, n in enumerate(("p", "q", "r")) for st in (0, 5)} for s in ("id", "ood")}
    vv_models = {"p": 5, "q": 5, "r": 5, "p (init)": 0, "q (init)": 0}
    vv = rep.vv_scores(prepared, vv_models, topk=5, n_perm=5)
    assert set(vv.kind) == {"trained pair", "random-init control", "init-init"}
    assert len(vv) == 2 * 10
    s = rep.summarise_vv(vv, n_boot=50)
    assert s.loc[("id", "trained pair"), "corrected"] > s.loc[("id", "init-init"), "corrected"]
    depth = rep.layer_depth(vv, {"p": 3, "q": 3, "r": 3}, {"p": "a", "q": "a", "r": "b"})
    assert ((depth >= 0) & (depth <= 1)).all().all()


def test_phrases_read_right_for_every_outcome():
    assert "not distinguishable" in rep.vv_phrase(-0.1, 0.2)
    assert "more aligned" in rep.vv_phrase(0.01, 0.2)
    assert "*less* aligned" in rep.vv_phrase(-0.3, -0.1)
    assert "not distinguishable" in rep.vv_phrase(float("nan"), 0.2)

    def comp(lo_id, lo_ood):
        return pd.DataFrame({"id": {"ci_low": lo_id, "ci_high": 0.9},
                             "ood": {"ci_low": lo_ood, "ci_high": 0.9}})
    assert "both splits" in rep.competence_phrase(comp(0.1, 0.2))
    assert rep.competence_phrase(comp(0.1, -0.2)).endswith("only in distribution")
    assert rep.competence_phrase(comp(-0.1, 0.2)).endswith("only OOD")
    assert "does not clearly rise" in rep.competence_phrase(comp(-0.1, -0.2))
    assert "barely" in rep.protocol_phrase({"id": 0.01, "ood": -0.02})
    assert "agree less" in rep.protocol_phrase({"id": -0.1, "ood": -0.05})
    assert "agree more" in rep.protocol_phrase({"id": 0.1, "ood": 0.05})
    assert "largely" in rep.protocol_phrase({"id": 0.5, "ood": 0.0})
    assert "undefined" in rep.protocol_phrase({"id": float("nan"), "ood": 0.0})
    assert "about as well" in rep.split_phrase({"blog": 0.05, "PRH": -0.02})
    assert rep.split_phrase({"blog": 0.2, "PRH": -0.02}) == "the agreement changes OOD (blog +0.20, PRH -0.02)"


def test_claims_take_their_verdict_from_the_numbers():
    assert rep.interval_claim("c", "s", 0.2, 0.1, 0.3, "ctl").verdict == "replicated"
    assert rep.interval_claim("c", "s", -0.2, -0.3, -0.1, "ctl").verdict == "not replicated"
    assert rep.interval_claim("c", "s", 0.0, -0.1, 0.1, "ctl").verdict == "undecided"
    row = pd.Series({"mean": 0.9, "ci_low": 0.5, "ci_high": 1.0, "null_95": 0.6, "p_value": 0.005})
    v = rep.agreement_claim("photos", row, threshold=0.00625, n_tests=8, n_perm=199)
    assert v.verdict == "replicated" and "p <= 1/200" in v.number
    low = row.copy()
    low[["p_value", "ci_high"]] = [0.4, 0.5]
    assert rep.agreement_claim("photos", low, 0.00625, 8, 199).verdict == "not replicated"
    mid = row.copy()
    mid["p_value"] = 0.02
    assert rep.agreement_claim("photos", mid, 0.00625, 8, 199).verdict == "undecided"


def test_shapes_gaps_pair_members_with_their_controls():
    rows = []
    names = ["p", "q", "r", "s"]
    for split, shift in (("id", 0.0), ("ood", 0.05)):
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                rows.append(dict(split=split, kind="trained pair", model_a=a, model_b=b,
                                 corrected=0.3 + shift))
                rows.append(dict(split=split, kind="init-init", model_a=a + rep.INIT,
                                 model_b=b + rep.INIT, corrected=0.1))
    g = rep.shapes_gaps(pd.DataFrame(rows), n_boot=100)
    assert g["ood - id"][0] == pytest.approx(0.05)
    assert g["trained - init"][0] == pytest.approx(0.25)
    assert g["trained - init"][1] == pytest.approx(0.25) == pytest.approx(g["trained - init"][2])


def test_ood_phrase_for_every_outcome():
    e = pd.Series({"photos": 2.0, "fashion": 3.0, "abstract": 2.5})
    assert rep.ood_phrase(e).startswith("all 2 OOD sets get higher entropy")
    e["fashion"] = 1.0
    assert rep.ood_phrase(e) == ("only abstract of the OOD sets get higher entropy than the "
                                 "photos; by this measure fashion is not measurably OOD for these "
                                 "classifiers")
    e["abstract"] = 1.5
    assert rep.ood_phrase(e).startswith("none of the OOD sets gets higher entropy")


def test_chance_phrase():
    assert rep.chance_phrase(0.3) == "far from chance"
    assert rep.chance_phrase(0.01) == "close to chance"
    assert rep.chance_phrase(float("nan")) == "of undefined distance from chance"
