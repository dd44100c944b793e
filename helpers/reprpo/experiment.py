"""The chapter's experiment plumbing: train-and-evaluate runs, label shuffling, the isometry check,
and per-split bootstrap summaries, so the chapter holds only parameters, calls, tables and figures.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from helpers import stats
from helpers.reprpo import methods as rp

Splits = dict[str, dict[str, torch.Tensor]]


def eval_view(splits: Splits, names: Sequence[str], n_eval: int) -> Splits:
    """The splits to evaluate: ``names`` of ``splits``, with ``train`` cut to its first ``n_eval``
    pairs (seen in training, scored as a fit check)."""
    missing = [n for n in names if n not in splits]
    if missing:
        raise ValueError(f"names {missing} are not splits; choose from {sorted(splits)}")
    return {n: ({k: v[:n_eval] for k, v in splits[n].items()} if n == "train" else splits[n])
            for n in names}


def train_and_evaluate(base: torch.nn.Module, method: str, lr: float, seed: int, splits: Splits,
                       settings: rp.TrainSettings, names: Sequence[str], n_eval: int) -> dict:
    """Train ``method`` at ``lr`` on ``splits['train']`` and score it on ``names``.

    Returns:
        split name -> bool ``[N]`` correct, plus ``_final_loss`` (float) and ``_model``.
    """
    s = rp.TrainSettings(**{**settings.__dict__, "lr": lr})
    model, hist = rp.train_method(base, rp.Method.parse(method), splits["train"], s, seed=seed)
    out = rp.evaluate_splits(model, eval_view(splits, names, n_eval))
    out["_final_loss"] = hist[-1]["loss"]
    out["_model"] = model
    return out


def shuffle_labels(splits: Splits, seed: int) -> Splits:
    """A copy of ``splits`` whose *training* pairs have chosen and rejected swapped with
    probability 1/2 each (the shuffled-label control: same texts, no preference)."""
    tr = splits["train"]
    gen = torch.Generator().manual_seed(seed)
    swap = torch.rand(tr["chosen_ids"].shape[0], generator=gen) < 0.5
    new = dict(tr)
    for k in ("ids", "attn", "cmask"):
        c, r = tr[f"chosen_{k}"], tr[f"rejected_{k}"]
        new[f"chosen_{k}"] = torch.where(swap[:, None], r, c)
        new[f"rejected_{k}"] = torch.where(swap[:, None], c, r)
    return {**splits, "train": new}


def isometry_gradients(base: torch.nn.Module, batch: dict[str, torch.Tensor], lora_r: int,
                       transforms: Sequence[str] = ("none", "ortho", "hra")) -> dict[str, dict]:
    """The ``mse`` hidden-state loss and its adapter gradient under each transform, for one fresh
    adapter whose LoRA weights are all non-zero (the same for every transform).

    Returns:
        transform -> ``{"loss": float, "grad_gap": float}``, where ``grad_gap`` is
        ``max |grad - grad(none)| / max |grad(none)|`` (0 for an isometry up to rounding).
    """
    blocks = rp.collection_blocks(len(rp._layers(base)))
    grads: dict[str, tuple[float, torch.Tensor]] = {}
    for name in ("none", *[t for t in transforms if t != "none"]):
        model = rp.add_lora(base, lora_r, seed=0)
        with torch.no_grad():
            gen = torch.Generator().manual_seed(0)
            for n, p in model.named_parameters():
                if "lora_" in n:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
        tf = torch.nn.ModuleDict({rp._tkey(f"{b}.hs"): rp.make_transform(
            name, base.config.hidden_size, seed=b) for b in blocks})
        with torch.no_grad(), model.disable_adapter():
            ref = rp.forward_pairs(model, batch, "hs", blocks)
        loss = rp.mse_loss(rp.forward_pairs(model, batch, "hs", blocks), ref, tf)
        loss.backward()
        grad = torch.cat([p.grad.flatten() for n, p in model.named_parameters()
                          if "lora_" in n and p.grad is not None])
        grads[name] = (loss.item(), grad)
    ref_grad = grads["none"][1]
    scale = ref_grad.abs().max()
    return {t: {"loss": v[0], "grad_gap": float((v[1] - ref_grad).abs().max() / scale)}
            for t, v in grads.items() if t in transforms}


def bootstrap_splits(correct: dict[str, dict[str, np.ndarray]], shifts: Sequence[str],
                     n_boot: int, seed: int = 1) -> dict[str, dict[str, np.ndarray]]:
    """Paired hierarchical bootstrap draws of accuracy per method and split, plus ``shift mean``.

    Args:
        correct: method -> split -> bool/float ``[seeds, pairs]``; every method has every split.
        shifts: the splits averaged into ``shift mean`` (each split's draw, then their mean).
        n_boot: bootstrap draws; the same seed and pair indices for every method of a split.

    Returns:
        method -> split (and ``"shift mean"``) -> ``[n_boot]`` mean accuracy draws.
    """
    methods = list(correct)
    names = list(correct[methods[0]])
    per_split = {s: stats.hierarchical_means({m: correct[m][s] for m in methods},
                                             n_boot=n_boot, seed=seed) for s in names}
    out = {m: {s: per_split[s][m] for s in names} for m in methods}
    if shifts:
        for m in methods:
            out[m]["shift mean"] = np.mean([out[m][s] for s in shifts], axis=0)
    return out


def interval_excludes_zero(draws: np.ndarray, side: Callable[[float, float], bool] | None = None) -> bool:
    """Whether the 95% percentile interval of ``draws`` lies above zero (or satisfies ``side``)."""
    lo, hi = stats.interval(draws)
    return side(lo, hi) if side is not None else lo > 0
