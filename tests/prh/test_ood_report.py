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
    assert (rep.split_phrase({"blog": 0.2, "PRH": -0.02})
            == "the agreement changes OOD (blog +0.20, PRH -0.02)")


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


def test_confidence_values_per_set_in_order():
    conf = pd.DataFrame(dict(image_set=["photos", "photos", "fashion", "fashion"],
                             model="m", confidence=[0.8, 0.6, 0.2, 0.4],
                             entropy=[1.0, 2.0, 5.0, 4.0], frac_confident=[1.0, 0.0, 0.0, 0.0]))
    mean, values = rep.confidence_values(conf, ["photos", "fashion"])
    assert list(mean.index) == ["photos", "fashion"]
    assert values["conf_photos"] == pytest.approx(0.7) and values["ent_fashion"] == 4.5
    assert values["ood_measured"].startswith("all 1 OOD sets get higher entropy")
    _, flipped = rep.confidence_values(conf.assign(entropy=[5.0, 4.0, 1.0, 2.0]),
                                       ["photos", "fashion"])
    assert flipped["ood_measured"].startswith("none of the OOD sets")


def test_objective_values_and_pair_views():
    idx = pd.MultiIndex.from_tuples([("a", "b"), ("a", "hed"), ("b", "hed")])
    diff = pd.DataFrame({"photos": [0.3, 0.1, 0.1], "fashion": [0.1, -0.1, -0.1]}, index=idx)
    v = rep.objective_values(diff, "hed")
    assert v["rv_diff_hed"] == pytest.approx(0.0) and v["rv_diff_nohed"] == pytest.approx(0.2)
    assert v["hed_sentence"].startswith("convergence here is weaker across objectives")
    fig = rep.pair_slider_figure(diff, ["a", "b", "hed"])
    assert len(fig.frames) == 2 and fig.data[0].zmax == pytest.approx(0.3)
    real_all = pd.DataFrame(dict(image_set="photos", view="plain",
                                 kind=["trained", "init", "pixels"], depth_a=[1.0, 0.0, 0.5],
                                 depth_b=[0.5, 0.0, 0.5]))
    picked = rep.picked_depth({"photos": real_all})
    assert picked.loc[("photos", "plain"), "trained"] == 0.75
    assert list(picked.columns) == ["init", "trained"]


def test_agreement_values_and_view_name_each_row():
    idx = pd.MultiIndex.from_tuples([("photos", "blog", "raw"), ("photos", "PRH", "corrected")],
                                    names=["set", "protocol", "value"])
    rows = pd.DataFrame(dict(mean=[0.5, 0.25], ci_low=[0.4, 0.1], ci_high=[0.6, 0.3],
                             null_mean=[0.3, 0.0], null_95=[0.45, 0.05], p_value=[0.005, 0.5],
                             passes=[True, False], n_pairs=10), index=idx)
    v = rep.agreement_values(rows)
    assert v["ragree_photos_blog"] == "0.50 [0.40, 0.60]" and v["ragree_null_photos_blog"] == 0.45
    assert v["ragree_photos_PRH_corr"] == "0.25 [0.10, 0.30]"
    assert set(v) == {"ragree_photos_blog", "ragree_null_photos_blog", "ragree_photos_PRH_corr",
                      "ragree_null_photos_PRH_corr"}
    view = rep.agreement_view(rows, 199)
    assert list(view.p) == ["p <= 1/200", "p = 0.5"]
    assert list(view.columns)[-3:] == ["p", "passes", "n_pairs"]


def test_accuracy_objective_and_agreement_summaries():
    acc = pd.DataFrame(dict(subset=["id", "held_out_combo", "novel_shape", "novel_texture"],
                            shape=[0.9, 0.5, 0.0, 0.6], color=1.0, texture=1.0, all_factors=0.5))
    summary, v = rep.accuracy_summary(acc)
    assert summary.index[0] == "id" and v == {"acc_id_shape": 0.9, "acc_combo_shape": 0.5}
    vv = pd.DataFrame(dict(kind=["trained pair"] * 3 + ["init-init"], split="id",
                           model_a=["a", "a", "b", "a"], model_b=["b", "c", "c", "b"],
                           corrected=[0.5, 0.1, 0.3, 0.0]))
    pairs = rep.objective_pairs(vv, {"a": "sup", "b": "sup", "c": "ae"})
    assert pairs.loc[("id", True), "mean"] == 0.5 and pairs.loc[("id", False), "count"] == 2
    idx = pd.MultiIndex.from_product([["id", "ood"], ["blog", "PRH"], ["raw", "corrected"]])
    rows = pd.DataFrame({"mean": np.arange(8) / 10}, index=idx)
    s, sv = rep.shapes_agreement_values(rows)
    assert sv == {"agree_blog_id": 0.0, "agree_corr_id": 0.3, "agree_blog_ood": 0.4,
                  "agree_corr_ood": pytest.approx(0.7)}
    comp = pd.DataFrame({"id": [0.5], "ood": [-0.25]}, index=["partial"])
    assert rep.competence_titles(comp) == {"id": "in distribution: partial rho 0.50",
                                           "ood": "out of distribution: partial rho -0.25"}


def test_protocol_scores_average_one_configuration():
    t = pd.DataFrame(dict(config=["mknn@10", "mknn@10", "cka"], raw=[0.2, 0.4, 0.9],
                          null_mean=[0.1, 0.1, 0.5], corrected=[0.1, 0.3, 0.8]))
    out = rep.protocol_scores({("id", "blog"): t, ("ood", "blog"): t.assign(raw=0.0)}, "mknn@10")
    assert out.loc[("blog", "id"), "raw"] == pytest.approx(0.3)
    assert out.loc[("blog", "ood"), "raw"] == 0.0 and len(out) == 2


def test_zoo_table_and_world():
    class Member:
        name, arch, objective, seed = "m", "mlp", "sup", 0
        history = [{"loss": float(i)} for i in range(10)]
    table = rep.zoo_table([Member()])
    assert table.final_loss.iloc[0] == 7.0
    world = rep.make_world(False, 6, 1, "unused", "unused")
    assert set(world) == {"id", "ood"} and len(world["ood"]) == 6


def test_check_full_scale_names_vit_models():
    rep.check_full_scale(False, [])
    rep.check_full_scale(True, ["a", "b"])
    with pytest.raises(ValueError, match="at least two vit_models"):
        rep.check_full_scale(True, ["a"])


def test_shapes_features_key_each_split_like_the_chapter(monkeypatch):
    seen = []
    monkeypatch.setattr(rep, "zoo_vision_features", lambda zoo, world, key: {"key": key})
    monkeypatch.setattr(rep, "text_features",
                        lambda lm, caps, key, full, bs: seen.append((lm, key, full, bs)) or [lm])
    world = {"id": type("D", (), {"captions": ["a"]})(),
             "ood": type("D", (), {"captions": ["b"]})()}
    vision, n_params, lang = rep.shapes_features([], world, ["enc"], full=False, n=8, seed=1,
                                                 sources={"id": "x", "ood": "y"}, batch_size=32)
    assert vision == {"key": {"world": "shapes", "n": 8, "seed": 1}} and n_params is None
    assert lang == {"id": {"enc": ["enc"]}, "ood": {"enc": ["enc"]}}
    assert seen[1] == ("enc", {"world": "shapes", "split": "ood", "n": 8, "seed": 1}, False, 64)
    monkeypatch.setattr(rep, "pretrained_vision_features", lambda *a: ({"v": 1}, {"m": 5}))
    seen.clear()
    _, n_params, _ = rep.shapes_features([], world, ["enc"], full=True, n=8, seed=1,
                                         sources={"id": "x", "ood": "y"}, batch_size=32)
    assert n_params == {"m": 5}
    assert seen[0] == ("enc", {"world": "prh", "source": "x", "split": "id", "n": 8, "seed": 1},
                       True, 32)


def test_real_and_shapes_agreement_match_their_parts():
    g = torch.Generator().manual_seed(3)
    shared = torch.randn(40, 4, generator=g)
    feats = {"set": {m: _layers(10 + i, n=40, shared=shared) for i, m in enumerate("abc")}}
    configs = rep.agreement_configs([5])
    tables, rows = rep.real_agreement(feats, list("abc"), ["set"], configs, 9, 2, 50, 0.1)
    direct = rep.protocol_tables(feats["set"], configs, 9, 2)
    assert tables[("set", "PRH")].corrected.tolist() == direct["PRH"].corrected.tolist()
    assert list(rows.passes) == list(rows.p_value <= 0.1)
    vision = {split: {(m, 3): [x[:30] for x in feats["set"][m]] for m in "abc"}
              for split in ("id", "ood")}
    t2, rows2, corr = rep.shapes_agreement(vision, {m: 3 for m in "abc"}, configs, 20, 9, 50)
    assert set(t2) == {("id", "blog"), ("id", "PRH"), ("ood", "blog"), ("ood", "PRH")}
    short = rep.protocol_tables({m: [x[:20] for x in vision["id"][(m, 3)]] for m in "abc"},
                                configs, 9, None)
    assert t2[("id", "PRH")].corrected.tolist() == short["PRH"].corrected.tolist()
    assert set(corr) == {(s, p, v) for s in ("id", "ood") for p in ("blog", "PRH")
                         for v in ("raw", "corrected")} and len(rows2) == 8


def test_competence_correlations_per_split(monkeypatch):
    import helpers.prh.competence as cp
    monkeypatch.setattr(cp, "competence_correlation",
                        lambda d, n_boot: pd.Series({"partial": float(len(d)), "n": n_boot}))
    vl = pd.DataFrame(dict(split=["id", "id", "ood"]))
    out = rep.competence_correlations(vl, 7)
    assert list(out.columns) == ["id", "ood"] and out.loc["partial"].tolist() == [2.0, 1.0]


def test_shown_values_and_thresholds():
    assert rep.shown_values(topk=10, alpha=0.05, agree_ks=[10, 30]) == {
        "topk_shown": 10, "alpha_shown": 0.05, "agree_ks_shown": "10, 30"}
    assert rep.agreement_threshold(0.05, ["photos", "fashion"]) == (8, pytest.approx(0.00625))
    assert rep.agreement_threshold(0.05, ["photos"]) == (4, pytest.approx(0.0125))
    assert rep.competence_xlabel(True).startswith("competence: log10 parameters")
    assert rep.competence_xlabel(False) == "competence (probe accuracy, fraction)"


def test_caption_gain_subtracts_each_control():
    rows = [("fashion", "a", 0.5), ("fashion", "a (init)", 0.1), ("fashion", "b", 0.3),
            ("fashion", "b (init)", 0.1), ("shapes", "a", 0.0), ("shapes", "a (init)", 0.2),
            ("shapes", "b", 0.1), ("shapes", "b (init)", 0.3)]
    # two encoders per model: the mean over encoders is the value above
    vl = pd.DataFrame([dict(image_set=s, model_a=m, corrected=c + d)
                       for s, m, c in rows for d in (-0.05, 0.05)])
    by_model, diff, values = rep.caption_gain(vl, ["a", "b"], n_boot=200)
    assert by_model.loc["a", "fashion"] == pytest.approx(0.5)
    assert diff["fashion"][0] == pytest.approx(0.3) and diff["shapes"][0] == pytest.approx(-0.2)
    lo, hi = diff["fashion"][1:]
    assert 0.2 - 1e-9 <= lo <= 0.3 <= hi <= 0.4 + 1e-9  # bootstrap over the two models
    assert values["vl_real_diff_shapes"].startswith("-0.200 [")
    assert set(values) == {"vl_real_diff_fashion", "vl_real_diff_shapes"}


def _agreement_rows(p_blog=0.005):
    idx = pd.MultiIndex.from_product([["photos", "fashion"], ["blog", "PRH"],
                                      ["raw", "corrected"]])
    first = np.arange(8) == 0  # photos, blog, raw
    fashion_blog_raw = np.arange(8) == 4
    rows = pd.DataFrame(dict(mean=np.where(fashion_blog_raw, 0.2, 0.5), ci_low=0.4,
                             ci_high=np.where(fashion_blog_raw, 0.3, 0.6), null_mean=0.3,
                             null_95=0.45, p_value=np.where(first, p_blog, 0.5)), index=idx)
    rows["passes"] = rows.p_value <= 0.00625
    return rows


def test_real_agreement_glue_reads_the_rows():
    values, texts = rep.real_agreement_glue(_agreement_rows(), ["photos", "fashion"], 199,
                                            0.00625, 8)
    assert values["agree_n_tests"] == 8 and values["agree_threshold"] == 0.00625
    assert values["ragree_photos_blog"] == "0.50 [0.40, 0.60]"
    assert texts["agree_floor_sentence"] == "the permutation floor 1/200 lies below it."
    assert texts["ragree_headline"].endswith("(photos blog raw)")
    assert texts["ragree_blog_vs_null"].startswith("photos: 0.50 observed")
    _, texts = rep.real_agreement_glue(_agreement_rows(0.5), ["photos"], 19, 0.00625, 8)
    assert texts["ragree_headline"] == "0 of the 8 agreement means pass the Bonferroni threshold"
    assert "no test can pass" in texts["agree_floor_sentence"]
    assert "fashion" not in texts["ragree_blog_vs_null"]


def test_verdict_claims_count_and_order_the_rows():
    idx = pd.MultiIndex.from_tuples([("photos", "same photo excluded", "trained - init")])
    real = pd.DataFrame({"mean": [0.2], "ci_low": [0.1], "ci_high": [0.3]}, index=idx)
    comp = pd.DataFrame({"id": [0.5, 0.2, 0.7], "ood": [0.0, -0.2, 0.2]},
                        index=["partial", "ci_low", "ci_high"])
    gaps = {"ood - id": (0.0, -0.1, 0.1), "trained - init": (-0.1, -0.2, -0.05)}
    claims, values = rep.verdict_claims(real, {"photos": "same photo excluded"},
                                        {"fashion": (0.05, 0.01, 0.09)}, gaps, comp,
                                        _agreement_rows(), 0.00625, 8, 199)
    assert [c.verdict for c in claims] == ["replicated", "replicated", "not replicated",
                                           "replicated", "undecided", "replicated",
                                           "not replicated"]
    assert claims[-2].claim.endswith("(photos)") and claims[-1].claim.endswith("(fashion)")
    assert values == {"n_interval_claims": 5, "expected_false": pytest.approx(0.125),
                      "n_claims": 7}
    assert rep.gaps_table(gaps).loc["trained - init", "value"] == "-0.100 [-0.200, -0.050]"


def test_agreement_figures_lone_table_and_prepare_vision():
    configs = ["a", "b", "c"]
    m = pd.DataFrame([[1.0, 0.8, 0.2], [0.8, 1.0, 0.4], [0.2, 0.4, 1.0]], configs, configs)
    corr = {(s, p, v): m * (0.5 if s == "ood" else 1.0) for s in ("id", "ood")
            for p in ("blog", "PRH") for v in ("raw", "corrected")}
    lone = rep.lone_table(corr)
    assert lone.loc["a", "id"] == pytest.approx(0.5)
    assert lone.loc["c", "ood"] == pytest.approx(0.15)
    fig = rep.plot_shapes_agreement(corr)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["in distribution, raw scores", "in distribution, corrected scores",
                      "OOD, raw scores", "OOD, corrected scores"]
    g = torch.Generator().manual_seed(1)
    shared = torch.randn(30, 4, generator=g)
    raw = {f"m{i}": _layers(i, n=30, shared=shared) for i in range(3)}
    tables = rep.protocol_tables(raw, rep.agreement_configs([5]), n_perm=4, n_layers=2)
    fig = rep.plot_real_agreement({("photos", p): t for p, t in tables.items()}, ["photos"])
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == [
        "photos: blog, raw", "photos: blog, corrected", "photos: PRH, raw",
        "photos: PRH, corrected"]
    vision = {"id": {("m0", 3): raw["m0"]}}
    prepared = rep.prepare_vision(vision)
    from helpers import alignment
    for got, want in zip(prepared["id"][("m0", 3)], alignment.prepare(raw["m0"])):
        assert torch.equal(got, want)
