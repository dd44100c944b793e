"""The chapter's experiment plumbing: train-and-evaluate runs, label shuffling, the isometry check,
and per-split bootstrap summaries, so the chapter holds only parameters, calls, tables and figures.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from helpers import stats
from helpers.chapter import above_zero
from helpers.reprpo import methods as rp

Splits = dict[str, dict[str, torch.Tensor]]


def load_base_model(name: str, device: str = "cpu", random_hidden: int = 32,
                    random_layers: int = 4, spec=None) -> tuple[torch.nn.Module, object]:
    """``(model, tokenizer)`` for the chapter's ``base_model`` parameter.

    Args:
        name: ``"smollm2"`` (the packaged, dequantised SmolLM2-135M-Instruct),
            ``"random-llama"`` (a randomly initialised Llama of width ``random_hidden`` and
            ``random_layers`` blocks with that model's tokenizer: the smoke stand-in), or a hub
            id / local folder (the full scale).
        spec: the packaged GGUF (:class:`helpers.pretrained_lm.PackagedGGUF`); None for SmolLM2.

    Raises:
        ModelUnavailableError: the package or the model is missing (the message says how to
            get it).
    """
    from helpers import pretrained_lm as plm

    spec = spec or plm.SMOLLM2_135M_INSTRUCT
    if name == "smollm2":
        return plm.load_packaged_lm(spec, device=device)
    if name != "random-llama":
        from helpers.reprpo.genies import load_causal_lm

        return load_causal_lm(name, device=device)
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = plm.load_packaged_tokenizer(spec)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=random_hidden, intermediate_size=2 * random_hidden,
        num_hidden_layers=random_layers, num_attention_heads=2, num_key_value_heads=1,
        tie_word_embeddings=True))
    return model.to(device).eval(), tokenizer


def eval_view(splits: Splits, names: Sequence[str], n_eval: int) -> Splits:
    """The splits to evaluate: ``names`` of ``splits``, with ``train`` cut to its first ``n_eval``
    pairs (seen in training, scored as a fit check)."""
    missing = [n for n in names if n not in splits]
    if missing:
        raise ValueError(f"names {missing} are not splits; choose from {sorted(splits)}")
    return {n: ({k: v[:n_eval] for k, v in splits[n].items()} if n == "train" else splits[n])
            for n in names}


def train_and_evaluate(base: torch.nn.Module, method: str, lr: float, seed: int, splits: Splits,
                       settings: rp.TrainSettings, names: Sequence[str], n_eval: int,
                       reference: dict | None = None) -> dict:
    """Train ``method`` at ``lr`` on ``splits['train']`` and score it on ``names``.

    Args:
        reference: :func:`helpers.reprpo.methods.reference_outputs` on ``splits['train']`` for
            this method (shared between runs), or None to compute it per run.

    Returns:
        split name -> bool ``[N]`` correct, plus ``_final_loss`` (float) and ``_model``.
    """
    s = rp.TrainSettings(**{**settings.__dict__, "lr": lr})
    model, hist = rp.train_method(base, rp.Method.parse(method), splits["train"], s, seed=seed,
                                  reference=reference)
    out = rp.evaluate_splits(model, eval_view(splits, names, n_eval))
    out["_final_loss"] = hist[-1]["loss"]
    out["_model"] = model
    return out


def train_run(base: torch.nn.Module, method: str, lr: float, seed: int, splits: Splits,
              settings: rp.TrainSettings, references: dict | None = None) -> dict:
    """One run of the learning-rate search: train, keep the adapter weights (kilobytes) and the
    validation accuracy per pair; a run that diverged gives NaN scores and no weights (a result
    of that rate, not a crash).

    Args:
        references: collect kind (None for DPO, ``"hs"``, ``"side"``) -> reference outputs on
            ``splits['train']`` (see :func:`reference_for`); None computes them per run.

    Returns:
        ``{"state": adapter state or None, "val": float [N_val]}``.
    """
    reference = reference_for(references, method)
    try:
        res = train_and_evaluate(base, method, lr, seed, splits, settings, ["val"], n_eval=0,
                                 reference=reference)
    except FloatingPointError:
        return {"state": None, "val": np.full(len(splits["val"]["chosen_ids"]), np.nan)}
    return {"state": adapter_state(res.pop("_model")), "val": res["val"].astype(float)}


def collect_kind(method: str) -> str | None:
    """What a method's reference outputs must hold: ``"hs"``/``"side"`` activations for a
    hidden-state method, None (log-probabilities only) for the others."""
    m = rp.Method.parse(method)
    return m.collect if m.kind == "reprpo" else None


def reference_for(references: dict | None, method: str) -> dict | None:
    """The shared reference outputs a method reads, by :func:`collect_kind`, from a dict built
    with :func:`helpers.reprpo.methods.reference_outputs`; None for the gradient methods
    (their hooks need a reference pass per step) or when ``references`` is None."""
    if references is None or rp.Method.parse(method).kind in ("projgrad", "projbp"):
        return None
    return references.get(collect_kind(method))


def seed_search(run: Callable[[float, int], dict], grid: Sequence[float], n_seeds: int,
                max_extra: int = 1) -> tuple[float, dict[float, float], bool, dict]:
    """:func:`search_lr` on the mean validation accuracy over ``n_seeds`` seeds per rate.

    Args:
        run: ``(lr, seed) -> {"val": [N_val] correct (NaN if diverged), ...}``.

    Returns:
        ``(best, scores, interior, runs)`` with ``runs`` (lr, seed) -> what ``run`` returned.
    """
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be >= 1; got {n_seeds}")
    runs: dict[tuple[float, int], dict] = {}

    def score(lr: float) -> float:
        for seed in range(n_seeds):
            runs[(lr, seed)] = run(lr, seed)
        return float(np.mean([np.mean(runs[(lr, s)]["val"]) for s in range(n_seeds)]))

    best, scores, interior = search_lr(score, grid, max_extra=max_extra)
    return best, scores, interior, runs


def evaluate_states(base: torch.nn.Module, states: Sequence[dict], splits: Splits,
                    lora_r: int) -> dict[str, np.ndarray]:
    """Score saved adapters (one per seed) on every split: split -> bool ``[seeds, N]``.

    Raises:
        ValueError: a state is None (its run diverged): choose a rate whose runs all finished.
    """
    if any(s is None for s in states):
        raise ValueError("a chosen run diverged (no adapter state); choose a lower learning rate")
    per_seed = [rp.evaluate_splits(restore_adapter(base, s, lora_r), splits) for s in states]
    return {name: np.stack([r[name] for r in per_seed]) for name in splits}


def shuffle_labels(splits: Splits, seed: int) -> Splits:
    """A copy of ``splits`` whose *training* pairs have chosen and rejected swapped with
    probability 1/2 each (the shuffled-label control: same texts, no preference)."""
    tr = splits["train"]
    gen = torch.Generator().manual_seed(seed)
    swap = torch.rand(tr["chosen_ids"].shape[0], generator=gen) < 0.5
    new = dict(tr)
    for k in [k.removeprefix("chosen_") for k in tr if k.startswith("chosen_")]:
        c, r = tr[f"chosen_{k}"], tr[f"rejected_{k}"]
        mask = swap.view(-1, *([1] * (c.dim() - 1)))  # ids/masks [N, T]; stem embeds [N, T, H]
        new[f"chosen_{k}"] = torch.where(mask, r, c)
        new[f"rejected_{k}"] = torch.where(mask, c, r)
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


def reference_claims(draws: dict[str, dict[str, np.ndarray]], rival: str, dpo: str = "dpo",
                     control: str = "dpo-shuffled") -> dict:
    """The chapter's gates and the reference's two claims, read from bootstrap draws.

    Gates: ``dpo`` beats ``control`` (shuffled labels) on ``test`` with a 95% interval above 0,
    and ``rival`` gains over ``base`` on ``test`` the same way. Claim 1 (``rival`` generalises
    better): ``rival - dpo`` on ``shift mean`` above 0 (True), below (False), else None. Claim 2
    (``dpo`` falls below base while ``rival`` holds): None if ``dpo - base`` straddles 0, else
    whether it lies below 0 while ``rival - base`` does not. Both claims are None unless both
    gates pass.

    Args:
        draws: method -> split (with ``test``, ``shift mean``) -> ``[n_boot]`` paired draws, as
            :func:`bootstrap_splits` returns them (``base``, ``dpo``, ``rival``, ``control``).

    Returns:
        dict of draw differences (``gate_draws``, ``rival_gain``, ``d_shift``, ``dpo_drop``,
        ``rival_drop``), the gates (``gate``, ``rival_learned``) and ``claim1``, ``claim2``.
    """
    def diff(a: str, b: str, split: str) -> np.ndarray:
        return draws[a][split] - draws[b][split]

    out = {"gate_draws": diff(dpo, control, "test"), "rival_gain": diff(rival, "base", "test"),
           "d_shift": diff(rival, dpo, "shift mean"), "dpo_drop": diff(dpo, "base", "shift mean"),
           "rival_drop": diff(rival, "base", "shift mean")}
    out["gate"] = bool(above_zero(*stats.interval(out["gate_draws"])))
    out["rival_learned"] = bool(above_zero(*stats.interval(out["rival_gain"])))
    (dlo, dhi), (_, rhi) = stats.interval(out["dpo_drop"]), stats.interval(out["rival_drop"])
    passed = out["gate"] and out["rival_learned"]
    out["claim1"] = above_zero(*stats.interval(out["d_shift"])) if passed else None
    out["claim2"] = None if not passed or dlo <= 0 <= dhi else bool(dhi < 0 and rhi >= 0)
    return out


def interval_excludes_zero(draws: np.ndarray,
                           side: Callable[[float, float], bool] | None = None) -> bool:
    """Whether the 95% percentile interval of ``draws`` lies above zero (or satisfies ``side``)."""
    lo, hi = stats.interval(draws)
    return side(lo, hi) if side is not None else lo > 0


def search_lr(evaluate: Callable[[float], float], grid: Sequence[float], factor: float = 3.0,
              max_extra: int = 2) -> tuple[float, dict[float, float], bool]:
    """The learning rate with the best ``evaluate(lr)`` (validation accuracy), widening the grid
    by ``factor`` past whichever edge wins, up to ``max_extra`` more rates.

    Args:
        evaluate: lr -> validation score (higher is better; NaN for a diverged run).
        grid: the starting rates (>= 3 distinct positive values).
        factor: the step of each widening.
        max_extra: the most rates added beyond ``grid``.

    Returns:
        ``(best, scores, interior)``: the chosen rate (ties go to the smaller), every rate tried
        with its score, and whether the choice is inside the tried range (not at its edge).

    Raises:
        ValueError: fewer than 3 distinct positive rates, ``factor <= 1``, or every score NaN.
    """
    rates = sorted({float(x) for x in grid})
    if len(rates) < 3 or rates[0] <= 0:
        raise ValueError(f"grid needs >= 3 distinct positive learning rates; got {list(grid)}")
    if factor <= 1:
        raise ValueError(f"factor must be > 1 (the widening step); got {factor}")
    scores = {lr: float(evaluate(lr)) for lr in rates}

    def best_rate() -> float:
        finite = {lr: s for lr, s in scores.items() if np.isfinite(s)}
        if not finite:
            raise ValueError("every learning rate diverged (NaN score); lower the grid")
        return rp.select_lr(finite)

    for _ in range(max_extra):
        best, tried = best_rate(), sorted(scores)
        if tried[0] < best < tried[-1]:
            break
        new = tried[0] / factor if best == tried[0] else tried[-1] * factor
        scores[new] = float(evaluate(new))
    best, tried = best_rate(), sorted(scores)
    return best, dict(sorted(scores.items())), bool(tried[0] < best < tried[-1])


def adapter_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trainable (LoRA) weights of a trained peft model, copied: a run's result in kilobytes,
    so many runs can be kept and re-evaluated later with :func:`restore_adapter`."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def restore_adapter(base: torch.nn.Module, state: dict[str, torch.Tensor],
                    lora_r: int) -> torch.nn.Module:
    """``base`` with a LoRA adapter of rank ``lora_r`` holding ``state`` (from
    :func:`adapter_state`)."""
    from peft import set_peft_model_state_dict

    model = rp.add_lora(base, lora_r, seed=0)
    result = set_peft_model_state_dict(model, state)
    if getattr(result, "unexpected_keys", None):
        raise ValueError(f"adapter state does not fit this base: unexpected "
                         f"{result.unexpected_keys[:3]}")
    return model.eval()


def normalised_score(method: np.ndarray, base: np.ndarray, target: np.ndarray) -> np.ndarray:
    """GENIES-style normalised generalisation per draw: ``(method - base) / (target - base)``,
    where ``target`` is the same adapter trained on the target split itself.

    A draw whose target-tuned gain is not positive gives NaN (the ratio has no meaning when
    training on the target did not help), never a confident number.
    """
    gain = np.asarray(target, dtype=float) - np.asarray(base, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.asarray(method, dtype=float) - np.asarray(base, dtype=float)) / gain
    return np.where(gain > 0, out, np.nan)
