"""Chapter 5's tables and sentences: what the chapter glues into its prose, built from the
pipeline's results so every sentence reads correctly for every outcome.

Points are ``(variant name, epoch)`` pairs; alignment results are
:class:`~helpers.libero.action_alignment.AlignmentResult` (mean over tasks unless named
``*_tasks``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from helpers import stats
from helpers.chapter import format_interval, format_p
from helpers.libero import action_alignment as va
from helpers.libero.evaluation import success_row
from helpers.libero.pipeline import TaskSet, task_alignments


def plain_sentence(result: va.AlignmentResult, n_perm: int) -> str:
    """The best block's plain score against its row-shuffle null, with the layer-max p.

    >>> import torch
    >>> r = va.AlignmentResult(torch.tensor([0.2, 0.5]), torch.full((9, 2), 0.1))
    >>> plain_sentence(r, 9)
    'best block 0.500 against a row-shuffle null of 0.100, p <= 1/10'
    """
    best = int(result.observed.argmax())
    return (f"best block {float(result.observed[best]):.3f} against a row-shuffle null of "
            f"{float(result.null_mean[best]):.3f}, {format_p(result.p_best, n_perm)}")


def training_gain(masked: dict, pairs: Sequence[tuple[tuple, tuple]], *, n_boot: int = 1000,
                  seed: int = 0) -> tuple[list[float], str]:
    """What training adds to the best block's episode-masked corrected score, per seed.

    Args:
        masked: point -> mean-over-tasks episode-masked result.
        pairs: ``(untrained point, trained point)`` per seed of one architecture.
        n_boot, seed: bootstrap over seeds (the independent units).

    Returns:
        ``(gains, text)``: trained minus untrained per pair, and the mean with its bootstrap
        interval ("one seed, no interval" or "an unmeasured amount" when there are fewer).
    """
    gains = [float(masked[t].corrected.max() - masked[u].corrected.max()) for u, t in pairs]
    if len(gains) > 1:
        draws = stats.bootstrap(np.mean, np.asarray(gains), n_boot=n_boot, seed=seed)
        text = format_interval(np.mean(gains), *stats.interval(draws), signed=True)
    else:
        text = f"{gains[0]:+.3f} (one seed, no interval)" if gains else "an unmeasured amount"
    return gains, text


def masked_sentence(name: str, result: va.AlignmentResult, gains: list[float], gain_text: str,
                    n_perm: int) -> str:
    """The trained encoder's best block against the episode null, and what training adds."""
    n = len(gains)
    return (f"the trained {name}'s best block has a corrected score of "
            f"{float(result.corrected.max()):.3f} ({format_p(result.p_best, n_perm)} against the "
            f"layer-max episode null), and training adds {gain_text} over the untrained encoder "
            f"(bootstrap over {n} seed{'s' if n != 1 else ''})")


def filter_window_sweep(data: TaskSet, feats: dict, points: Sequence[tuple], *, window: int,
                        n_sweep: Sequence[int], n_perm: int, workers: int = 1,
                        **masked) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The episode-masked best-block score of each point with and without the moving-step
    filter, for single actions and ``window``-step action windows, and over the number of demos.

    Args:
        data, feats: the task set and point -> per-block features.
        points: e.g. the main variant untrained and trained.
        window: action window length T.
        n_sweep: demos per task for the curve (values outside 2..n_demos are skipped).
        n_perm: permutations per null (for the p column).
        workers: processes for the scores (:func:`~helpers.libero.pipeline.task_alignments`).
        masked: :func:`~helpers.libero.pipeline.task_alignment` options (exclude, mode, topk,
            seed).

    Returns:
        ``(table, curve)``: one row per (epoch, filter, window) with corrected score and p; one
        row per (epoch, episodes) with observed, null mean and corrected score.
    """
    n_demos = min(d.n_episodes for d in data.demos.values())
    rows = [dict(epoch=p[1], filter=filt, window=h, point=p, options=dict(horizon=h, filt=filt))
            for p in points for filt in (False, True) for h in (1, window)]
    curve = [dict(epoch=p[1], episodes=n, point=p, options=dict(episodes=n))
             for p in points for n in n_sweep if 2 <= n <= n_demos]
    results = task_alignments(data, [(feats[r["point"]], dict(r["options"], n_perm=n_perm,
                                                              **masked)) for r in rows + curve],
                              workers, progress=False)
    for r, res in zip(rows + curve, results):
        mean = va.mean_result(res)
        best = int(mean.observed.argmax())
        del r["point"], r["options"]
        if "episodes" in r:
            r.update(observed=float(mean.observed[best]), null=float(mean.null_mean[best]))
        r["corrected"] = float(mean.corrected.max())
        if "window" in r:
            r["p"] = format_p(mean.p_best, n_perm)
    return pd.DataFrame(rows), pd.DataFrame(curve)


def validation_table(pooled: dict, selected: tuple) -> tuple[pd.DataFrame, str]:
    """Validation success per candidate and the sentence naming the selected one.

    Args:
        pooled: point -> ``{"success": [n] bool, "progress": [n] float}`` over tasks.
        selected: the chosen point.

    >>> t, s = validation_table({("ViT", 5): dict(success=np.array([1, 0]),
    ...                                            progress=np.array([1, .5]))}, ("ViT", 5))
    >>> s
    'ViT, epoch 5 (1 of 2 validation rollouts succeed)'
    """
    table = pd.DataFrame([dict(variant=n, epoch=e, **success_row(v["success"]),
                               progress=float(np.mean(v["progress"])), selected=(n, e) == selected)
                          for (n, e), v in pooled.items()])
    won = np.asarray(pooled[selected]["success"], bool)
    return table, (f"{selected[0]}, epoch {selected[1]} ({int(won.sum())} of {len(won)} "
                   f"validation rollouts succeed)")


def best_task_sentence(table: pd.DataFrame, variant: str) -> tuple[pd.Series, str]:
    """The best task of one success-table ``variant`` and its rate with interval.

    Args:
        table: from :func:`~helpers.libero.evaluation.success_table`.
        variant: the label of the rows to read.

    Raises:
        ValueError: no row has that variant label.
    """
    rows = table[table.variant == variant]
    if rows.empty:
        raise ValueError(f"variant {variant!r} is not in the success table; pass one of "
                         f"{sorted(set(table.variant))}.")
    top = rows.sort_values("success").iloc[-1]
    return top, (f"{format_interval(top.success, top.lo, top.hi, digits=2)} (task "
                 f"{int(top.task)}, {top.successes} of {top.rollouts} test rollouts)")


def budget_sentence(n_vit_seeds: int, cnn_epochs: Sequence[int], n_rollouts: int,
                    n_val: int) -> str:
    """What this run's budget allowed, for the chapter's "open" paragraph.

    >>> budget_sentence(1, [], 1, 2)[:60]
    '1 ViT seed, no MobileNetV2 variants, 1 test rollout per task'
    >>> budget_sentence(3, [6], 6, 5)[:60]
    '3 ViT seeds, MobileNetV2 variants trained for 6 epochs, 6 te'
    """
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'s' if n != 1 else ''}"

    epochs = ", ".join(map(str, cnn_epochs))
    unit = "epoch" if list(cnn_epochs) == [1] else "epochs"
    cnn = (f"MobileNetV2 variants trained for {epochs} {unit}" if len(cnn_epochs)
           else "no MobileNetV2 variants")
    return (f"{plural(n_vit_seeds, 'ViT seed')}, {cnn}, "
            f"{plural(n_rollouts, 'test rollout')} per task and checkpoint, "
            f"{plural(n_val, 'validation rollout')} per task and candidate")


def success_points(data: TaskSet, variants, masked_tasks: dict, success: dict) -> pd.DataFrame:
    """One row per rolled-out (point, task): the episode-masked corrected alignment on that task
    at the point's best block and at the last block, its held-out success rate and its offline
    action error (:func:`~helpers.libero.pipeline.offline_error` on the task's demo frames).

    Args:
        data: the task set.
        variants: :class:`~helpers.libero.pipeline.TrainedVariants`.
        masked_tasks: point -> per-task episode-masked results (task order).
        success: point -> {task: [n] bool}, e.g. ``HeldOutRollouts.success``.

    Returns:
        Columns variant, epoch, task, encoder, best, fixed, success, error.
    """
    from helpers.libero.pipeline import offline_error

    rows = []
    for n, e in variants.points:
        for i, k in enumerate(data.task_ids):
            r = masked_tasks[n, e][i]
            rows.append(dict(variant=n, epoch=e, task=k, encoder=variants.encoder[n],
                             best=float(r.corrected.max()), fixed=float(r.corrected[-1]),
                             success=float(success[n, e][k].mean()),
                             error=offline_error(variants.policies[n, e], data, data.per_task[k])))
    return pd.DataFrame(rows)


def correlation_tables(points: pd.DataFrame, success: dict, encoder: str, family: str, *,
                       n_perm: int, n_boot: int, seed: int) -> dict[str, pd.DataFrame]:
    """:func:`~helpers.libero.evaluation.correlation_table` over all ``points`` and over the
    points whose ``encoder`` column equals ``encoder`` (the fairer test: architecture alone can
    drive alignment and success), each point's rollouts from ``success``.

    Returns:
        ``{"<n> points": all, "<m> <family> points": within}`` (the labels the verdicts print).
    """
    from helpers.libero.evaluation import correlation_table

    rollouts = [success[n, e][k] for n, e, k in zip(points.variant, points.epoch, points.task)]
    mine = (points.encoder == encoder).to_numpy()
    options = dict(n_perm=n_perm, n_boot=n_boot, seed=seed)
    return {f"{len(points)} points": correlation_table(points, rollouts, **options),
            f"{int(mine.sum())} {family} points": correlation_table(
                points[mine].reset_index(drop=True), [s for s, f in zip(rollouts, mine) if f],
                **options)}


def rho_summary(tables: dict[str, pd.DataFrame], n_perm: int, level: float) -> str:
    """:func:`~helpers.libero.evaluation.rho_sentence` of :func:`correlation_tables`: the
    test over all points, then the within-family one, each read at ``level``."""
    from helpers.libero.evaluation import rho_sentence

    if len(tables) != 2:
        raise ValueError(f"Expected the two tables of correlation_tables (all points, one "
                         f"family), but got {len(tables)}: {list(tables)}.")
    (_, corr), (label, within) = tables.items()
    return rho_sentence(corr, n_perm, level, within=within, family=label.removesuffix(" points"))
