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


def test_real_alignment_values_read_the_headline_view():
    idx = pd.MultiIndex.from_product([["photos"], ["plain", "same photo excluded"],
                                      ["trained pairs", "random-init pairs", "trained - init"]])
    summary = pd.DataFrame({"mean": [0.5, 0.2, 0.3, 0.4, 0.01, 0.39],
                            "ci_low": [0.4, 0.1, 0.2, 0.3, 0.0, 0.3],
                            "ci_high": [0.6, 0.3, 0.4, 0.5, 0.02, 0.45]}, index=idx)
    v = rep.real_alignment_values(summary, {"photos": "same photo excluded"})
    assert v["rv_photos"] == 0.4 and v["rv_photos_plain"] == 0.5
    assert v["rv_diff_photos"] == "+0.390 [+0.300, +0.450]"
    assert v["real_init_chance"] == "close to chance"
    v = rep.real_alignment_values(summary, {"photos": "plain"})
    assert v["real_init_chance"] == "far from chance"


def test_objective_floor_and_agreement_phrases_for_every_outcome():
    assert rep.objective_phrase(0.1, 0.2).startswith("convergence here is weaker")
    assert rep.objective_phrase(0.2, 0.2).startswith("pairs across objectives")
    assert "undefined" in rep.objective_phrase(float("nan"), 0.2)
    assert rep.floor_phrase(199, 0.00625) == "the permutation floor 1/200 lies below it."
    assert "no test can pass" in rep.floor_phrase(19, 0.00625)
    idx = pd.MultiIndex.from_tuples([("photos", "blog", "raw"), ("photos", "PRH", "corrected")])
    rows = pd.DataFrame({"passes": [False, False], "mean": [0.8, 0.1],
                         "null_mean": [0.7, 0.0]}, index=idx)
    assert rep.agreement_headline(rows, 2) == ("0 of the 2 agreement means pass the Bonferroni "
                                               "threshold")
    rows.loc[("photos", "blog", "raw"), "passes"] = True
    assert rep.agreement_headline(rows, 2).endswith("threshold (photos blog raw)")
    assert rep.blog_vs_null(rows, ["photos"]) == ("photos: 0.80 observed against a null mean "
                                                  "of 0.70")


def test_closing_values_read_each_number_from_its_table():
    gaps = {"ood - id": (-0.02, -0.05, 0.01), "trained - init": (0.1, 0.05, 0.15)}
    comp = pd.DataFrame({"id": [0.5, 0.2, 0.7], "ood": [0.1, -0.2, 0.4]},
                        index=["partial", "ci_low", "ci_high"])
    agree = pd.DataFrame({"id": [0.6, 0.3], "ood": [0.62, 0.35]},
                         index=pd.MultiIndex.from_tuples([("blog", "raw"), ("PRH", "corrected")]))
    vl = pd.DataFrame({"split": ["id", "id", "ood", "ood"], "model": ["m"] * 4,
                       "step": [0, 9, 0, 9], "corrected": [0.01, 0.11, 0.02, 0.07]})
    v = rep.closing_values(gaps, comp, agree, vl, {"m": 9})
    assert v["vv_gap_ci"] == "[-0.050, +0.010]" and v["vv_above_init"] == "+0.100 [+0.050, +0.150]"
    assert v["vv_verdict"].startswith("trained models are more aligned")
    assert v["comp_verdict"] == "alignment to language rises with competence only in distribution"
    assert v["agree_delta"] == "-0.30 in distribution and -0.27 OOD"
    assert v["protocol_verdict"].startswith("so the protocol changes")
    assert v["vl_rise"] == "+0.100 in distribution and +0.050 OOD"
    assert v["agree_split_verdict"].startswith("the metrics agree about as well OOD")


def test_interval_claims_take_each_verdict_from_its_interval():
    idx = pd.MultiIndex.from_tuples([("photos", "same photo excluded", "trained - init"),
                                     ("fashion", "plain", "trained - init")])
    real = pd.DataFrame({"mean": [0.2, -0.01], "ci_low": [0.1, -0.05], "ci_high": [0.3, 0.02]},
                        index=idx)
    comp = pd.DataFrame({"id": [0.5, 0.2, 0.7], "ood": [-0.4, -0.6, -0.1]},
                        index=["partial", "ci_low", "ci_high"])
    rows = rep.interval_claims(real, {"photos": "same photo excluded", "fashion": "plain"},
                               {"fashion": (0.05, 0.01, 0.09)}, (-0.1, -0.2, -0.05), comp)
    assert [r.verdict for r in rows] == ["replicated", "undecided", "replicated",
                                         "not replicated", "replicated", "not replicated"]
    assert rows[0].claim.endswith("natural photo crops") and "'fashion'" in rows[1].claim
    assert rows[4].number == "0.50 [0.20, 0.70]"


def test_competence_values_separate_init_and_final_checkpoints():
    comp_corr = pd.DataFrame({"id": [0.5, 0.2, 0.7, 0.3]},
                             index=["partial", "ci_low", "ci_high", "pooled"])
    vl = pd.DataFrame({"split": ["id"] * 3, "model": ["m"] * 3, "step": [0, 4, 9],
                       "corrected": [0.0, 0.1, 0.2]})
    comp = pd.DataFrame({"step": [0, 4, 9], "competence": [0.1, 0.4, 0.6]})
    v = rep.competence_values(comp_corr, vl, comp, {"m": 9})
    assert v["comp_partial_id"] == "0.50 [0.20, 0.70]" and v["comp_rho_id"] == 0.3
    assert (v["vl_init_id"], v["vl_final_id"]) == (0.0, 0.2)
    assert (v["comp_min"], v["comp_max"]) == (0.4, 0.6)


def test_vv_and_lone_values():
    idx = pd.MultiIndex.from_product([["id", "ood"], ["trained pair", "init-init"]])
    vv = pd.DataFrame({"corrected": [0.4, 0.2, 0.3, 0.01]}, index=idx)
    v = rep.vv_values(vv)
    assert (v["vv_id"], v["vv_rand_ood"], v["zoo_init_chance"]) == (0.4, 0.01, "far from chance")
    lone = pd.DataFrame({"id": [0.9, 0.1, 0.5], "ood": [0.7, 0.3, 0.1]}, index=["a", "b", "c"])
    v = rep.lone_values(lone)
    assert v == {"least_agree": "b (0.20) and c (0.30)", "most_agree": "a (0.80)"}
