"""Tests for helpers.libero.action_alignment on procedural episodes with a known vision-action
relation."""
import numpy as np
import pytest
import torch

from helpers.libero import action_alignment as va


def _episodes(n_ep=8, t=30, seed=0, coupled=True):
    """Frames whose features encode (or not) the action; actions drift smoothly in time."""
    rng = np.random.default_rng(seed)
    acts, ep, st = [], [], []
    for e in range(n_ep):
        a = np.cumsum(rng.normal(0, 0.3, (t, 7)), 0)
        a[:, 6] = np.sign(rng.normal(size=t))
        acts.append(a)
        ep.append(np.full(t, e))
        st.append(np.arange(t))
    acts, ep, st = np.concatenate(acts), np.concatenate(ep), np.concatenate(st)
    proj = rng.normal(size=(7, 32))
    noise = rng.normal(size=(len(acts), 32))
    good = acts @ proj + 0.1 * noise if coupled else noise
    feats = np.stack([noise + 0.01 * rng.normal(size=noise.shape), good], 1)  # layer 0 unrelated
    return torch.tensor(feats, dtype=torch.float32), acts.astype(np.float32), ep, st


def test_normalize_actions_matches_openvla_formula():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (500, 7)).astype(np.float32)
    a[:, 6] = rng.choice([-1.0, 1.0], 500)
    q01, q99 = va.action_quantiles(a)
    out = va.normalize_actions(a, q01, q99)
    ref = np.clip(2 * (a[:, :6] - q01[:6]) / (q99[:6] - q01[:6] + 1e-8) - 1, -1, 1)
    np.testing.assert_allclose(out[:, :6], ref, atol=1e-6)
    np.testing.assert_array_equal(out[:, 6], (a[:, 6] < 0).astype(np.float32))  # 1 = open
    assert out[:, :6].min() == -1 and out[:, :6].max() == 1


def test_normalize_actions_bad_shape():
    with pytest.raises(ValueError, match=r"shape \[N, 7\]"):
        va.normalize_actions(np.zeros((5, 6)))


def test_action_windows_stay_within_episodes():
    a = np.arange(10, dtype=float)[:, None].repeat(7, 1)
    ep = np.array([0] * 4 + [1] * 6)
    win, rows = va.action_windows(a, ep, 3)
    assert list(rows) == [0, 1, 4, 5, 6, 7]
    assert win.shape == (6, 21)
    np.testing.assert_array_equal(win[2, ::7], [4, 5, 6])
    with pytest.raises(ValueError, match="horizon >= 1"):
        va.action_windows(a, ep, 0)
    with pytest.raises(ValueError, match="one episode id per row"):
        va.action_windows(a, ep[:5], 2)


def test_moving_mask():
    a = np.zeros((3, 7))
    a[1, :3] = [0.2, 0, 0]
    a[2, 3] = 1.0  # rotation only: dropped with default translation dims
    assert list(va.moving_mask(a, 0.1)) == [False, True, False]
    assert list(va.moving_mask(a, 0.1, dims=(0, 1, 2, 3, 4, 5))) == [False, True, True]
    with pytest.raises(ValueError, match="threshold >= 0"):
        va.moving_mask(a, -1)


def test_identical_representations_score_one_and_coupled_layer_wins():
    feats, acts, ep, st = _episodes()
    x = torch.tensor(acts)
    same = va.masked_mutual_knn(x[:, None], va._prep(x).numpy(), ep, st, exclude="episode",
                                action_metric="cosine")  # the feature side is PRH-prepared
    assert same.item() == pytest.approx(1.0)
    scores = va.masked_mutual_knn(feats, acts, ep, st, exclude="episode")
    assert scores[1] > 0.4 and scores[0] < 0.15


def test_mask_excludes_same_episode_neighbours():
    feats, acts, ep, st = _episodes()
    fk = va.feature_knn(feats, ep, st, exclude="episode", topk=5)
    assert not (torch.as_tensor(ep)[fk[1]] == torch.as_tensor(ep)[:, None]).any()
    fk = va.feature_knn(feats, ep, st, exclude=2, topk=5)
    i = torch.arange(len(ep))[:, None]
    close = (torch.as_tensor(ep)[fk[1]] == torch.as_tensor(ep)[:, None]) & ((fk[1] - i).abs() <= 2)
    assert not close.any()
    fk = va.feature_knn(feats, ep, st, exclude=None, topk=5)
    assert not (fk[1] == i).any()


def test_plain_score_agrees_with_python_loop():
    feats, acts, ep, st = _episodes(n_ep=4, t=15)
    k = 4
    got = va.masked_mutual_knn(feats[:, 1], acts, ep, st, exclude=None, topk=k,
                               action_metric="cosine").item()
    f = torch.nn.functional.normalize(va._prep(feats[:, 1]), dim=-1).numpy()
    a = acts / np.linalg.norm(acts, axis=1, keepdims=True)
    total = 0.0
    for i in range(len(f)):
        sf = f @ f[i]
        sa = a @ a[i]
        sf[i] = sa[i] = -np.inf
        total += len(set(np.argsort(-sf)[:k]) & set(np.argsort(-sa)[:k])) / k
    assert got == pytest.approx(total / len(f), abs=1e-6)


def test_episode_permutation_is_derangement_with_relative_time():
    ep = np.array([0] * 3 + [1] * 5 + [2] * 4)
    st = np.concatenate([np.arange(3), np.arange(5), np.arange(4)])
    idx = va.episode_permutation(ep, st, np.random.default_rng(0))
    assert (ep[idx] != ep).all()
    for e in range(3):
        src = idx[ep == e]
        assert len(set(ep[src])) == 1  # one partner episode
        assert st[src][0] == 0 and np.all(np.diff(st[src]) >= 0)  # time order kept
    with pytest.raises(ValueError, match="at least 2 episodes"):
        va.episode_permutation(np.zeros(5), np.arange(5), np.random.default_rng(0))


def test_nulls_calibrated_on_uncoupled_and_detect_coupled():
    feats, acts, ep, st = _episodes(coupled=False)
    res = va.alignment_null(feats, acts, ep, st, mode="rows", exclude="episode", n_perm=30)
    assert res.p_best > 0.05
    assert abs(res.corrected.max().item()) < 0.1
    feats, acts, ep, st = _episodes(coupled=True)
    res = va.alignment_null(feats, acts, ep, st, mode="episodes", exclude="episode", n_perm=20)
    assert res.p_best < 0.06
    assert res.corrected[1] > 0.3


def test_time_shared_structure_is_absorbed_by_episode_null():
    """Frames and actions that only share 'progress through the task' beat a row shuffle but
    not the episode-permutation null."""
    rng = np.random.default_rng(1)
    n_ep, t = 10, 25
    phase = np.tile(np.linspace(0, 1, t), n_ep)
    ep = np.repeat(np.arange(n_ep), t)
    st = np.tile(np.arange(t), n_ep)
    acts = (np.stack([np.sin(3 * phase + k) for k in range(7)], 1)
            + 0.05 * rng.normal(size=(n_ep * t, 7)))
    feats = torch.tensor(np.stack([np.cos(2 * phase + k) for k in range(16)], 1)
                         + 0.05 * rng.normal(size=(n_ep * t, 16)))
    rows = va.alignment_null(feats, acts, ep, st, mode="rows", exclude="episode", n_perm=20)
    eps = va.alignment_null(feats, acts, ep, st, mode="episodes", exclude="episode", n_perm=20)
    assert rows.p_best < 0.06
    assert eps.corrected.item() < rows.corrected.item() - 0.2


def test_errors():
    feats, acts, ep, st = _episodes(n_ep=2, t=5)
    with pytest.raises(ValueError, match="topk < N - 1"):
        va.masked_mutual_knn(feats, acts, ep, st, topk=20)
    with pytest.raises(ValueError, match="same episode|N = 10"):
        va.masked_mutual_knn(feats, acts[:5], ep, st, topk=2)
    with pytest.raises(ValueError, match="exclude to be None"):
        va.masked_mutual_knn(feats, acts, ep, st, exclude="time", topk=2)
    with pytest.raises(ValueError, match="needs `step`"):
        va.masked_mutual_knn(feats, acts, ep, None, exclude=2, topk=2)
    with pytest.raises(ValueError, match="action_metric"):
        va.masked_mutual_knn(feats, acts, ep, st, topk=2, action_metric="l1")
    with pytest.raises(ValueError, match=r"\[N, D\] or \[N, L, D\]"):
        va.masked_mutual_knn(feats[:, 0, 0], acts, ep, st, topk=2)
    with pytest.raises(ValueError, match="mode 'rows' or 'episodes'"):
        va.alignment_null(feats, acts, ep, st, mode="global", topk=2)
    with pytest.raises(ValueError, match="n_perm >= 1"):
        va.alignment_null(feats, acts, ep, st, n_perm=0, topk=2)
    with pytest.raises(ValueError, match="episode has 3 entries"):
        va.masked_mutual_knn(feats, acts, ep[:3], st, topk=2)


def test_gripper_label_agreement():
    feats, acts, ep, st = _episodes()
    lab = (acts[:, 6] > 0).astype(int)
    feats = feats.clone()
    feats[:, 1, 0] += 50 * torch.as_tensor(lab, dtype=torch.float32)  # layer 1 encodes the gripper
    agree, chance = va.neighbour_label_agreement(feats, lab, ep, st, exclude="episode", topk=5)
    assert 0.4 < chance < 0.6
    assert agree[1] > 0.95 and abs(agree[0] - chance) < 0.1
    with pytest.raises(ValueError, match="labels \\[N\\]"):
        va.neighbour_label_agreement(feats, lab[:5], ep, st)


def test_mean_result_averages_tasks():
    a = va.AlignmentResult(torch.tensor([0.2, 0.4]), torch.zeros(3, 2))
    b = va.AlignmentResult(torch.tensor([0.4, 0.6]), torch.full((3, 2), 0.2))
    m = va.mean_result([a, b])
    torch.testing.assert_close(m.observed, torch.tensor([0.3, 0.5]))
    torch.testing.assert_close(m.null_mean, torch.tensor([0.1, 0.1]))
    with pytest.raises(ValueError, match="at least one"):
        va.mean_result([])


def test_p_best_sits_exactly_at_the_permutation_floor():
    from helpers.chapter import format_p

    r = va.AlignmentResult(torch.tensor([0.9, 0.5]), torch.zeros(10, 2))
    assert r.p_best == 1 / 11 and format_p(r.p_best, 10) == "p <= 1/11"


@pytest.mark.parametrize("mode", ["rows", "episodes"])
def test_memoised_null_equals_scoring_each_repairing_directly(mode):
    """The null's action neighbour sets are reused across feature sets (checkpoints); each
    null draw must still equal the score of the features against that re-paired action set."""
    feats, acts, ep, st = _episodes(n_ep=5, t=20)
    va._NULL_KNN.clear()
    first = va.alignment_null(feats, acts, ep, st, mode=mode, exclude="episode", n_perm=4, seed=3)
    other = va.alignment_null(feats.flip(1), acts, ep, st, mode=mode, exclude="episode",
                              n_perm=4, seed=3)  # a second "checkpoint" on the same rows
    assert len(va._NULL_KNN) == 1
    rng = np.random.default_rng(3)
    for b in range(4):
        idx = rng.permutation(len(acts)) if mode == "rows" else va.episode_permutation(ep, st, rng)
        direct = va.masked_mutual_knn(feats, acts[idx], ep, st, exclude="episode", topk=10)
        assert torch.allclose(first.null[b], direct)
        assert torch.allclose(other.null[b], direct.flip(0))
    assert torch.allclose(first.observed, va.masked_mutual_knn(feats, acts, ep, st,
                                                               exclude="episode", topk=10))
    changed = va.alignment_null(feats, acts, ep, st, mode=mode, exclude="episode", n_perm=4,
                                seed=4)
    assert len(va._NULL_KNN) == 2 and not torch.equal(changed.null, first.null)
