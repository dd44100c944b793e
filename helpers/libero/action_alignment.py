"""Vision-action alignment: the PRH mutual-kNN metric between a vision encoder's per-layer
features of camera frames and the actions taken at those frames, with episode-aware baselines.

Adjacent frames of one episode share both image and action, so a plain mutual-kNN score is
inflated by temporal neighbours. This module therefore offers

* :func:`normalize_actions`: OpenVLA's q01/q99 normalisation of dims 0-5 to [-1, 1], gripper
  mapped to 1 = open / 0 = close (not normalised);
* :func:`action_windows` (a_t..a_{t+T-1} within one episode) and :func:`moving_mask` (drop
  near-zero actions);
* :func:`masked_mutual_knn`: mutual kNN where self, and optionally every pair from the same
  episode (``exclude="episode"``) or within +-w steps (``exclude=w``), is excluded from *both*
  neighbour sets;
* :func:`alignment_null`: a permutation null that re-pairs frames with actions either row by row
  (``mode="rows"``, the usual shuffle) or episode by episode (``mode="episodes"``: frames of
  episode e get the actions of another episode at the same relative time, which keeps the
  "where in the task are we" structure the frames share with any demo).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

ACTION_NAMES = ("dx", "dy", "dz", "rx", "ry", "rz", "grip")
"""The 7 LIBERO action dimensions: translation, rotation (axis-angle), gripper."""


def action_quantiles(actions: np.ndarray | torch.Tensor, q: tuple[float, float] = (0.01, 0.99)
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (q01, q99) of actions ``[N, 7]`` (OpenVLA's BOUNDS_Q99 statistics)."""
    a = np.asarray(actions, np.float64)
    if a.ndim != 2 or a.shape[1] != 7:
        raise ValueError(f"Expected actions of shape [N, 7], but got {tuple(a.shape)}.")
    return np.quantile(a, q[0], axis=0), np.quantile(a, q[1], axis=0)


def normalize_actions(actions: np.ndarray | torch.Tensor, q01: np.ndarray | None = None,
                      q99: np.ndarray | None = None) -> np.ndarray:
    """OpenVLA's action normalisation: dims 0-5 ->
    clip(2 (x - q01) / (q99 - q01 + 1e-8) - 1, -1, 1); gripper (dim 6, raw -1 open / +1 close)
    -> 1 - clip(x, 0, 1), i.e. 1 = open, 0 = close.

    Args:
        actions: ``[N, 7]`` raw LIBERO actions.
        q01, q99: ``[7]`` statistics; computed from ``actions`` when omitted.

    Returns:
        ``[N, 7]`` float32.
    """
    a = np.asarray(actions, np.float64)
    if a.ndim != 2 or a.shape[1] != 7:
        raise ValueError(f"Expected actions of shape [N, 7], but got {tuple(a.shape)}.")
    if q01 is None or q99 is None:
        q01, q99 = action_quantiles(a)
    out = np.empty_like(a)
    out[:, :6] = np.clip(2 * (a[:, :6] - q01[:6]) / (q99[:6] - q01[:6] + 1e-8) - 1, -1, 1)
    out[:, 6] = 1 - np.clip(a[:, 6], 0, 1)
    return out.astype(np.float32)


def action_windows(actions: np.ndarray, episode: np.ndarray,
                   horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate a_t .. a_{t+horizon-1} within each episode.

    Args:
        actions: ``[N, A]``, rows in time order within each episode.
        episode: ``[N]`` episode index of each row.
        horizon: window length T >= 1.

    Returns:
        (windows ``[M, T*A]``, rows ``[M]``): the windows and the row index t each starts at
        (rows whose window would run past the episode's end are dropped).
    """
    if horizon < 1:
        raise ValueError(f"Expected horizon >= 1, but got {horizon}.")
    a = np.asarray(actions)
    ep = np.asarray(episode)
    if len(a) != len(ep):
        raise ValueError(f"actions has {len(a)} rows but episode has {len(ep)}; pass one episode "
                         "id per row.")
    rows = [i for i in range(len(a) - horizon + 1) if ep[i + horizon - 1] == ep[i]]
    rows = np.asarray(rows, np.int64)
    if not len(rows):
        return np.zeros((0, horizon * a.shape[1]), a.dtype), rows
    win = np.stack([a[rows + s] for s in range(horizon)], axis=1).reshape(len(rows), -1)
    return win, rows


def moving_mask(actions: np.ndarray, threshold: float = 0.1,
                dims: tuple[int, ...] = (0, 1, 2)) -> np.ndarray:
    """Rows whose action norm over ``dims`` is at least ``threshold`` (drops near-no-op steps).

    Returns:
        ``[N]`` bool.
    """
    if threshold < 0:
        raise ValueError(f"Expected threshold >= 0, but got {threshold}.")
    a = np.asarray(actions)
    return np.linalg.norm(a[:, list(dims)], axis=1) >= threshold


def _exclusion(episode: torch.Tensor, step: torch.Tensor | None, exclude) -> torch.Tensor:
    """[N, N] bool: True where pair (i, j) may not be neighbours."""
    n = len(episode)
    mask = torch.eye(n, dtype=torch.bool)
    if exclude is None:
        return mask
    same = episode[:, None] == episode[None, :]
    if exclude == "episode":
        return mask | same
    if isinstance(exclude, int) and not isinstance(exclude, bool) and exclude >= 0:
        if step is None:
            raise ValueError("exclude=w (a step window) needs `step`; pass the step of each row.")
        return mask | (same & ((step[:, None] - step[None, :]).abs() <= exclude))
    raise ValueError(f"Expected exclude to be None, 'episode' or an int window >= 0, but got "
                     f"{exclude!r}.")


def _knn(sim: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    sim = sim.masked_fill(mask, float("-inf"))
    return sim.topk(k, dim=1).indices


def _overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean fraction of shared neighbours, per row -> scalar."""
    return (a[:, :, None] == b[:, None, :]).any(-1).float().mean()


def _prep(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    q = torch.quantile(x.abs().flatten()[: 2_000_000], 0.95)
    return torch.nn.functional.normalize(x.clamp(-q, q), dim=-1)


def _action_sim(actions: torch.Tensor, metric: str) -> torch.Tensor:
    a = actions.double()
    if metric == "euclidean":
        return -torch.cdist(a, a) ** 2
    if metric == "cosine":
        a = torch.nn.functional.normalize(a, dim=-1)
        return a @ a.T
    raise ValueError(f"Expected action_metric 'euclidean' or 'cosine', but got {metric!r}.")


def _check(feats: torch.Tensor, actions: torch.Tensor, episode, topk: int) -> None:
    if feats.ndim not in (2, 3):
        raise ValueError(f"Expected feats of shape [N, D] or [N, L, D], but got "
                         f"{tuple(feats.shape)}.")
    if actions.ndim != 2 or len(actions) != len(feats):
        raise ValueError(f"Expected actions [N, A] with N = {len(feats)} rows like feats, but got "
                         f"{tuple(actions.shape)}.")
    if episode is not None and len(episode) != len(feats):
        raise ValueError(f"episode has {len(episode)} entries but feats has {len(feats)} rows.")
    if not 1 <= topk < len(feats) - 1:
        raise ValueError(f"Expected 1 <= topk < N - 1 = {len(feats) - 1}, but got topk={topk}; "
                         "use more rows or a smaller topk.")


def feature_knn(feats: torch.Tensor, episode=None, step=None, exclude=None,
                topk: int = 10) -> torch.Tensor:
    """Neighbour indices per layer: ``[L, N, topk]`` for feats ``[N, L, D]`` (or ``[N, D]``),
    PRH-prepared (0.95-quantile clamp, L2 norm, inner product), excluded pairs masked."""
    f = torch.as_tensor(feats)
    f = f[:, None] if f.ndim == 2 else f
    ep = torch.as_tensor(np.asarray(episode)) if episode is not None else torch.arange(len(f))
    st = torch.as_tensor(np.asarray(step)) if step is not None else None
    mask = _exclusion(ep, st, exclude)
    out = []
    for layer in range(f.shape[1]):
        x = _prep(f[:, layer])
        out.append(_knn(x @ x.T, mask, topk))
    return torch.stack(out)


def masked_mutual_knn(feats, actions, episode=None, step=None, exclude=None, topk: int = 10,
                      action_metric: str = "euclidean") -> torch.Tensor:
    """Mutual-kNN alignment of per-layer features with actions, excluded pairs masked in both.

    Args:
        feats: ``[N, L, D]`` or ``[N, D]`` raw features (prepared here as PRH does).
        actions: ``[N, A]`` normalised actions (or action windows).
        episode, step: ``[N]`` episode index and step of each row (needed for ``exclude``).
        exclude: None (only self), ``"episode"`` (no same-episode neighbours) or an int w
            (no same-episode neighbours within +-w steps).
        topk: neighbours per row.
        action_metric: ``"euclidean"`` (keeps magnitude) or ``"cosine"`` (PRH's L2 norm).

    Returns:
        ``[L]`` scores in [0, 1]; chance is about topk / (number of allowed neighbours).
    """
    f = torch.as_tensor(feats)
    a = torch.as_tensor(np.asarray(actions))
    _check(f, a, episode, topk)
    fk = feature_knn(f, episode, step, exclude, topk)
    ep = torch.as_tensor(np.asarray(episode)) if episode is not None else torch.arange(len(a))
    st = torch.as_tensor(np.asarray(step)) if step is not None else None
    ak = _knn(_action_sim(a, action_metric), _exclusion(ep, st, exclude), topk)
    return torch.stack([_overlap(fk[layer], ak) for layer in range(len(fk))])


def episode_permutation(episode: np.ndarray, step: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
    """Row index map pairing each row of episode e with the row of episode pi(e) at the same
    relative time (pi a random derangement of episodes). Returns ``[N]`` int64."""
    ep = np.asarray(episode)
    ids = np.unique(ep)
    if len(ids) < 2:
        raise ValueError("An episode permutation needs at least 2 episodes; record more demos.")
    while True:
        perm = rng.permutation(ids)
        if not np.any(perm == ids):
            break
    st = np.asarray(step) if step is not None else np.arange(len(ep))
    # each episode's rows in time order
    rows = {e: np.flatnonzero(ep == e)[np.argsort(st[ep == e], kind="stable")] for e in ids}
    out = np.empty(len(ep), np.int64)
    for e, e2 in zip(ids, perm):
        src, dst = rows[e], rows[e2]
        rel = np.linspace(0, 1, len(src)) if len(src) > 1 else np.zeros(1)
        out[src] = dst[np.round(rel * (len(dst) - 1)).astype(int)]
    return out


@dataclass
class AlignmentResult:
    """Observed per-layer scores and a permutation null (``[n_perm, L]``)."""

    observed: torch.Tensor  # [L]
    null: torch.Tensor  # [n_perm, L]

    @property
    def null_mean(self) -> torch.Tensor:
        return self.null.mean(0)

    @property
    def null_std(self) -> torch.Tensor:
        return self.null.std(0)

    @property
    def corrected(self) -> torch.Tensor:
        """(observed - null mean) / (1 - null mean) per layer: 0 at the null, 1 at perfect."""
        m = self.null_mean
        return (self.observed - m) / (1 - m)

    @property
    def p_best(self) -> float:
        """p-value of the best layer against the null's max over layers (search-corrected)."""
        obs = self.observed.max()
        exceed = int((self.null.max(1).values >= obs).sum())
        return (1 + exceed) / (1 + len(self.null))  # exact, so the floor reads as 1/(n+1)


def alignment_null(feats, actions, episode, step, *, mode: str = "episodes", exclude=None,
                   topk: int = 10, n_perm: int = 50, seed: int = 0,
                   action_metric: str = "euclidean") -> AlignmentResult:
    """Observed :func:`masked_mutual_knn` and its null under re-paired actions.

    ``feats`` is ``[N, L, D]``, ``[N, D]``, or a list of per-layer ``[N, D_l]`` tensors.

    ``mode="rows"``: actions shuffled across all rows. ``mode="episodes"``: each episode's frames
    get another episode's actions at the same relative time (:func:`episode_permutation`).
    The feature neighbour sets are computed once; only the action side is permuted.
    """
    if mode not in ("rows", "episodes"):
        raise ValueError(f"Expected mode 'rows' or 'episodes', but got {mode!r}.")
    if n_perm < 1:
        raise ValueError(f"Expected n_perm >= 1, but got {n_perm}.")
    layers = list(feats) if isinstance(feats, (list, tuple)) else [torch.as_tensor(feats)]
    a = np.asarray(actions)
    for f in layers:
        _check(torch.as_tensor(f), torch.as_tensor(a), episode, topk)
    ep = np.asarray(episode)
    st = np.asarray(step) if step is not None else None
    # a list holds one [N, D_l] tensor per layer (CNN stages differ in width)
    fk = torch.cat([feature_knn(torch.as_tensor(f), ep, st, exclude, topk) for f in layers])
    mask = _exclusion(torch.as_tensor(ep), torch.as_tensor(st) if st is not None else None,
                      exclude)

    def score(ak: torch.Tensor) -> torch.Tensor:
        return torch.stack([_overlap(fk[layer], ak) for layer in range(len(fk))])

    observed, null = _action_knn_sets(a, ep, st, mask, mode=mode, topk=topk, n_perm=n_perm,
                                      seed=seed, action_metric=action_metric)
    return AlignmentResult(score(observed), torch.stack([score(ak) for ak in null]))


_NULL_KNN: dict[str, tuple[torch.Tensor, list[torch.Tensor]]] = {}
_NULL_KNN_MAX = 32  # memoised action sides (each n_perm x N x topk indices)


def _action_knn_sets(a: np.ndarray, ep: np.ndarray, st: np.ndarray | None, mask: torch.Tensor, *,
                     mode: str, topk: int, n_perm: int, seed: int,
                     action_metric: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Action neighbour sets of the observed pairing and of each null re-pairing.

    They depend only on the actions, episodes, mask and seed, never on the features, so every
    checkpoint scored on the same rows reuses them (memoised by a digest of the inputs)."""
    import hashlib

    digest = hashlib.sha1()
    for part in (a, ep, st if st is not None else np.zeros(0), mask.numpy()):
        digest.update(np.ascontiguousarray(part).tobytes())
        digest.update(str(np.asarray(part).shape).encode())
    digest.update(repr((mode, topk, n_perm, seed, action_metric)).encode())
    key = digest.hexdigest()
    if key not in _NULL_KNN:
        def knn(acts: np.ndarray) -> torch.Tensor:
            return _knn(_action_sim(torch.as_tensor(acts), action_metric), mask, topk)

        rng = np.random.default_rng(seed)
        null = []
        for _ in range(n_perm):
            idx = rng.permutation(len(a)) if mode == "rows" else episode_permutation(ep, st, rng)
            null.append(knn(a[idx]))
        if len(_NULL_KNN) >= _NULL_KNN_MAX:
            _NULL_KNN.pop(next(iter(_NULL_KNN)))
        _NULL_KNN[key] = (knn(a), null)
    return _NULL_KNN[key]


def neighbour_label_agreement(feats, labels, episode=None, step=None, exclude=None,
                              topk: int = 10) -> tuple[torch.Tensor, float]:
    """For a discrete action part (the gripper), the fraction of each row's feature neighbours
    that share its label, per layer, and the chance rate sum_c p_c^2 (labels drawn at random
    with the observed frequencies).

    Args:
        feats: ``[N, L, D]`` or ``[N, D]``.  labels: ``[N]`` discrete labels.

    Returns:
        (agreement ``[L]``, chance).
    """
    f = torch.as_tensor(feats)
    lab = torch.as_tensor(np.asarray(labels))
    if lab.ndim != 1 or len(lab) != len(f):
        raise ValueError(f"Expected labels [N] with N = {len(f)}, but got {tuple(lab.shape)}.")
    _check(f, lab[:, None].float(), episode, topk)
    fk = feature_knn(f, episode, step, exclude, topk)
    agree = torch.stack([(lab[fk[layer]] == lab[:, None]).float().mean()
                         for layer in range(len(fk))])
    _, counts = torch.unique(lab, return_counts=True)
    p = counts.double() / counts.sum()
    return agree, float((p ** 2).sum())


def mean_result(results: list[AlignmentResult]) -> AlignmentResult:
    """Average per-task results (observed ``[L]`` and null ``[n_perm, L]``) into one."""
    if not results:
        raise ValueError("mean_result needs at least one AlignmentResult; pass one per task.")
    return AlignmentResult(torch.stack([r.observed for r in results]).mean(0),
                           torch.stack([r.null for r in results]).mean(0))


def encoder_alignment(feats: dict[str, list[torch.Tensor]], actions: list[np.ndarray],
                      episodes: list[np.ndarray], steps: list[np.ndarray], *, topk: int = 10,
                      n_perm: int = 50,
                      seed: int = 0) -> dict[str, dict[str, AlignmentResult]]:
    """The chapter's two scores for several encoders on several tasks (the ``full`` scale path).

    Actions are OpenVLA-normalised with q01/q99 pooled over tasks, and scored on dims 0-5 with
    Euclidean neighbours, per task, then averaged over tasks:

    * ``"plain"``: only self excluded, against a row shuffle (``mode="rows"``);
    * ``"masked"``: same-episode neighbours excluded, against the episode null.

    Args:
        feats: encoder name -> one ``[N_t, L, D]`` tensor per task.
        actions: one raw ``[N_t, 7]`` action array per task.
        episodes, steps: one ``[N_t]`` array per task.

    Returns:
        encoder name -> {"plain": AlignmentResult, "masked": AlignmentResult}.
    """
    n_tasks = len(actions)
    if not (len(episodes) == len(steps) == n_tasks) or any(len(f) != n_tasks
                                                           for f in feats.values()):
        raise ValueError("feats (per encoder), actions, episodes and steps need one entry per "
                         "task each.")
    q01, q99 = action_quantiles(np.concatenate(actions))
    norm = [normalize_actions(a, q01, q99)[:, :6] for a in actions]
    out = {}
    for name, fs in feats.items():
        res = {}
        for label, mode, exclude in (("plain", "rows", None), ("masked", "episodes", "episode")):
            res[label] = mean_result([alignment_null(f, a, ep, st, mode=mode, exclude=exclude,
                                                     topk=topk, n_perm=n_perm, seed=seed)
                                      for f, a, ep, st in zip(fs, norm, episodes, steps)])
        out[name] = res
    return out
