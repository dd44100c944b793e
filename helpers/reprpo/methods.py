"""Preference optimisation on outputs (DPO) or on hidden states (ReprPO), in one training loop.

Every method trains a LoRA adapter (``peft``) on the same base model with the same loop,
data, budget and optimizer; the only variable is the loss or the gradient hook:

* ``dpo``: :func:`dpo_loss` on summed completion log-probabilities (beta = 0.1).
* ``projgrad``: DPO, then each ``lora_B`` gradient of ``q_proj``/``v_proj`` is split along the
  batch preference direction of that module's output, :func:`project_grad`.
* ``projbp``: DPO with a backward pre-hook on ``q_proj``/``v_proj`` that rewrites the gradient
  flowing into their output per token, :func:`projbp_rewrite`.
* ``reprpo``: a hidden-state loss (:func:`mse_loss`, :func:`rank_loss`, :func:`prefvec_loss`)
  on activations collected from residual hidden states (``hs``) or from the inputs of
  ``o_proj``/``down_proj`` (``side``), through a learned transform (:func:`make_transform`:
  ``none``, ``ortho``, ``hra``, ``ether``).

Reference semantics (what each formula follows, and where we deviate): ``shared/notes/reprpo.md``.
Evaluation is preference accuracy with length-normalised completion log-probabilities
(:func:`preference_correct`); the chapter's intervals come from
:func:`helpers.stats.hierarchical_means` (seeds, then pairs).
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("mse", "rank", "prefvec")
TRANSFORMS = ("none", "ortho", "hra", "ether")
COLLECT = ("hs", "side")
KINDS = ("dpo", "projgrad", "projbp", "reprpo")


# ----------------------------------------------------------------------------- data


def tokenize_pairs(records: list[dict], encode_prompt: Callable[[str], list[int]],
                   encode_completion: Callable[[str], list[int]], pad_id: int,
                   max_prompt_len: int = 96, max_len: int = 196) -> dict[str, torch.Tensor]:
    """Tokenise ``{"prompt", "chosen", "rejected"}`` records into right-padded tensors.

    As in the reference's ``TokenizeRow``: the prompt is left-truncated to ``max_prompt_len``
    tokens and the completion right-truncated so the whole fits in ``max_len``.

    Returns:
        dict with ``chosen_ids``, ``chosen_attn``, ``chosen_cmask`` (completion tokens) and the
        same for ``rejected``, each ``[N, T]`` (``T`` the longest sequence, at most ``max_len``).
    """
    if not records:
        raise ValueError("tokenize_pairs got no records; pass a non-empty list of "
                         "prompt/chosen/rejected dicts.")
    missing = {"prompt", "chosen", "rejected"} - set(records[0])
    if missing:
        raise ValueError(f"Records need the keys prompt, chosen, rejected; missing "
                         f"{sorted(missing)}.")
    seqs = {"chosen": [], "rejected": []}
    for r in records:
        p = encode_prompt(r["prompt"])[-max_prompt_len:]
        for side in ("chosen", "rejected"):
            c = encode_completion(r[side])[: max(1, max_len - len(p))]
            seqs[side].append((p, c))
    T = max(len(p) + len(c) for side in seqs.values() for p, c in side)
    out = {}
    for side, rows in seqs.items():
        ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
        attn = torch.zeros((len(rows), T), dtype=torch.long)
        cm = torch.zeros((len(rows), T), dtype=torch.long)
        for i, (p, c) in enumerate(rows):
            ids[i, : len(p) + len(c)] = torch.tensor(p + c)
            attn[i, : len(p) + len(c)] = 1
            cm[i, len(p): len(p) + len(c)] = 1
        out[f"{side}_ids"], out[f"{side}_attn"], out[f"{side}_cmask"] = ids, attn, cm
    return out


def _rows(data: dict[str, torch.Tensor], idx) -> dict[str, torch.Tensor]:
    return {k: v[idx] for k, v in data.items()}


# ----------------------------------------------------------------------------- forward


def collection_blocks(n_layers: int) -> list[int]:
    """Blocks whose activations ReprPO collects: ``int(0.3 n)`` to ``n - 2`` (the reference's
    ``range(.3,-2)``)."""
    lo, hi = int(0.3 * n_layers), n_layers - 2
    return list(range(lo, max(lo, hi) + 1))


def _layers(model) -> nn.ModuleList:
    """The decoder blocks of a Llama-style model (plain or peft-wrapped)."""
    for name, m in model.named_modules():
        if name.endswith("layers") and isinstance(m, nn.ModuleList):
            return m
    raise ValueError("Could not find the decoder layers; expected a Llama-style model with "
                     ".model.layers.")


@contextmanager
def _side_hooks(model, blocks: list[int], store: dict):
    """Forward hooks that store the *inputs* of ``o_proj`` and ``down_proj`` of ``blocks``."""
    handles = []
    layers = _layers(model)
    for b in blocks:
        for name, mod in (("o_proj", layers[b].self_attn.o_proj),
                          ("down_proj", layers[b].mlp.down_proj)):
            key = f"{b}.{name}"
            handles.append(mod.register_forward_hook(
                lambda m, args, out, key=key: store.__setitem__(key, args[0])))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def forward_pairs(model, batch: dict[str, torch.Tensor], collect: str | None = None,
                  blocks: list[int] | None = None) -> dict:
    """One forward pass over chosen and rejected rows stacked as ``[2B, T]`` (chosen first).

    Returns:
        dict with ``logp`` ``[2B]`` (summed completion log-probability), ``n_tok`` ``[2B]``,
        ``attn`` ``[2B, T]`` and, when ``collect`` is ``"hs"``/``"side"``, ``acts``: a dict of
        ``[2B, T, H]`` activations (``hs``: block outputs; ``side``: ``o_proj``/``down_proj``
        inputs).
    """
    ids = torch.cat([batch["chosen_ids"], batch["rejected_ids"]])
    attn = torch.cat([batch["chosen_attn"], batch["rejected_attn"]])
    cmask = torch.cat([batch["chosen_cmask"], batch["rejected_cmask"]])
    # logits only where some row predicts a completion token: the LM head is the costliest
    # matrix of a small model with a large vocabulary, and the prompt positions are not scored
    keep = torch.nonzero(cmask[:, 1:].any(0)).squeeze(1)
    if "chosen_embeds" in batch:  # cached outputs of frozen lower blocks (see helpers.reprpo.stem)
        inputs = {"inputs_embeds": torch.cat([batch["chosen_embeds"], batch["rejected_embeds"]])}
    else:
        inputs = {"input_ids": ids}
    store: dict = {}
    if collect == "side":
        with _side_hooks(model, blocks, store):
            out = model(**inputs, attention_mask=attn, logits_to_keep=keep)
    else:
        out = model(**inputs, attention_mask=attn, output_hidden_states=collect == "hs",
                    logits_to_keep=keep)
        if collect == "hs":
            store = {f"{b}.hs": out.hidden_states[b + 1] for b in blocks}
    logits = out.logits.float()
    tgt = ids[:, keep + 1]
    tok_logp = torch.gather(logits.log_softmax(-1), 2, tgt.unsqueeze(-1)).squeeze(-1)
    m = cmask[:, keep + 1].to(tok_logp.dtype)
    return {"logp": (tok_logp * m).sum(1), "n_tok": m.sum(1), "attn": attn, "acts": store}


# ----------------------------------------------------------------------------- losses


def dpo_loss(pi_cho: torch.Tensor, pi_rej: torch.Tensor, ref_cho: torch.Tensor,
             ref_rej: torch.Tensor,
             beta: float = 0.1) -> torch.Tensor:
    """Per-pair DPO loss ``-log sigmoid(beta * ((pi_c - pi_r) - (ref_c - ref_r)))``; inputs
    ``[B]``, output ``[B]``."""
    return -F.logsigmoid(beta * ((pi_cho - ref_cho) - (pi_rej - ref_rej)))


def reduce_tokens(x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens: ``[B, T, H]``, ``[B, T]`` -> ``[B, H]`` (the reference also drops
    'sink' tokens with outlying norm; our sequences are short, so we keep every token)."""
    w = attn.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def _log_msd(d: torch.Tensor, eps: float) -> torch.Tensor:
    """``log(mean_h d^2 + eps)``, ``[B, H]`` -> ``[B]``: invariant under any isometry of ``H``."""
    return torch.log(d.pow(2).mean(-1) + eps)


def mse_loss(pi: dict, ref: dict, transforms: nn.ModuleDict, alpha: float = 0.6,
             eps: float = 1e-6) -> torch.Tensor:
    """Distance loss: move the policy's rejected activations onto the reference's chosen ones.

    Per collected key (activations ``[2B, T, H]``, chosen rows first), with ``T_k`` its (linear)
    transform and ``d(a, b) = log(mean_h T_k(a - b)^2 + eps)`` on token-means (the table-era
    form: the difference is taken before the map, so an isometry changes nothing, not even the
    rounding of the subtraction): reroute = d(ref_cho, pi_rej) - sg[d(ref_cho, ref_rej)],
    retain = d(ref_cho, pi_cho) - sg[...]; loss = 100 * mean(reroute + alpha * retain) (HEAD
    ``mse`` weights).
    """
    total = 0.0
    for key, a_pi in pi["acts"].items():
        t = transforms[_tkey(key)]
        B = a_pi.shape[0] // 2
        hp, hr = reduce_tokens(a_pi, pi["attn"]), reduce_tokens(ref["acts"][key], ref["attn"])
        base = _log_msd(t(hr[:B] - hr[B:]), eps).detach()
        reroute = _log_msd(t(hr[:B] - hp[B:]), eps) - base
        retain = _log_msd(t(hr[:B] - hp[:B]), eps) - base
        total = total + (reroute + alpha * retain).mean()
    return 100 * total / len(pi["acts"])


def rank_loss(pi: dict, ref: dict, transforms: nn.ModuleDict, alpha: float = 0.25,
              beta: float = 1.0) -> torch.Tensor:
    """Rank loss (HEAD ``RankLossConfig``): hidden states as pseudo-distributions.

    ``p = mean_t log_softmax_h(T(hs))``; ``ptheta = (p_pi_cho - p_ref_cho) - (p_pi_rej -
    p_ref_rej)`` ``[B, H]``; reroute = ``mean_h -log sigmoid(-beta * ptheta)`` (sign as in the
    reference code), retain = ``relu(-dpo_logit)`` on completion log-probs; loss = mean(reroute) +
    alpha * mean(retain).
    """
    rer = 0.0
    for key, a_pi in pi["acts"].items():
        t = transforms[_tkey(key)]
        B = a_pi.shape[0] // 2
        p = reduce_tokens(t(a_pi).log_softmax(-1), pi["attn"])
        r = reduce_tokens(t(ref["acts"][key]).log_softmax(-1), ref["attn"])
        ptheta = (p[:B] - r[:B]) - (p[B:] - r[B:])
        rer = rer + (-F.logsigmoid(-beta * ptheta)).mean(-1)
    rer = rer / len(pi["acts"])
    B = pi["logp"].shape[0] // 2
    dpo_logit = (pi["logp"][:B] - ref["logp"][:B]) - (pi["logp"][B:] - ref["logp"][B:])
    return rer.mean() + alpha * F.relu(-dpo_logit).mean()


def prefvec_loss(pi: dict, ref: dict, transforms: nn.ModuleDict, alpha: float = 1.0,
                 proj_scale: float = 1e5, eps: float = 1e-12) -> torch.Tensor:
    """Preference-vector loss as in reference commit ``7a23287`` (2025-05-13), the code behind
    its README's best row, "hs-ETHER-PrefVec abs_proj_loss" (``PrefVecLossConfig`` defaults:
    projection and absolute-projection terms on, DPO term on, orthogonal and angle terms off).

    Per key on (transformed) token-means: ``pref = ref_cho - ref_rej``; ``rel_pref`` is the
    coordinate mean of the projection of ``pi_cho - pi_rej`` on ``pref``; averaged over keys,
    ``inner = |-proj_scale * rel_pref|``. With ``ptheta`` the DPO logit on summed completion
    log-probabilities (beta 1), loss = ``mean(inner) + alpha * mean(log sigmoid(-ptheta))``:
    the DPO part never saturates (it is unbounded below), as in the reference.

    The earlier form (commit ``0700063``: ``tanh`` of a ``1e6``-scaled projection) saturates on
    any movement at all: each pair's loss becomes +-0.01 with no gradient, so an adapter trained
    with it stays where it started (``tests/reprpo/test_methods.py`` checks that this one learns).
    """
    rel = 0.0
    for key, a_pi in pi["acts"].items():
        t = transforms[_tkey(key)]
        B = a_pi.shape[0] // 2
        hp, hr = (t(reduce_tokens(a_pi, pi["attn"])),
                  t(reduce_tokens(ref["acts"][key], ref["attn"])))
        pref = hr[:B] - hr[B:]
        unit = pref / pref.norm(dim=-1, keepdim=True).clamp_min(eps)
        diff = hp[:B] - hp[B:]
        rel = rel + ((diff * unit).sum(-1, keepdim=True) * unit).mean(-1)
    inner = (proj_scale * rel / len(pi["acts"])).abs()
    B = pi["logp"].shape[0] // 2
    ptheta = (pi["logp"][:B] - pi["logp"][B:]) - (ref["logp"][:B] - ref["logp"][B:])
    return inner.mean() + alpha * F.logsigmoid(-ptheta).mean()


HS_LOSSES = {"mse": mse_loss, "rank": rank_loss, "prefvec": prefvec_loss}


# ----------------------------------------------------------------------------- transforms


class HRA(nn.Module):
    """Householder reflection adaptation as an activation map: ``x -> x H_1 ... H_r`` with
    ``H_i = I - 2 u_i u_i^T / |u_i|^2`` (orthogonal for any ``u``). ``[..., H] -> [..., H]``."""

    def __init__(self, dim: int, r: int = 8, generator: torch.Generator | None = None):
        super().__init__()
        self.u = nn.Parameter(torch.randn(r, dim, generator=generator) / math.sqrt(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for u in self.u:
            u = u / u.norm().clamp_min(1e-12)
            x = x - 2 * (x @ u).unsqueeze(-1) * u
        return x


class ETHER(nn.Module):
    """ETHER-style map (reference ``ETHERLinearSmall``, ``ETHERConfig`` defaults): block-diagonal
    Householder reflections (``n_blocks`` 2), a fixed random projection down to ``dim // 60``
    (the reference reads that weight through ``.data``, so it never trains) and a trained linear
    map back up: **not** an isometry, and not the identity at initialisation (as in the
    reference). ``[..., H] -> [..., H]``."""

    def __init__(self, dim: int, n_blocks: int = 2, bottleneck: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        if dim % n_blocks:
            raise ValueError(f"ETHER needs dim divisible by n_blocks, got dim={dim}, "
                             f"n_blocks={n_blocks}.")
        k = bottleneck or max(8, dim // 60)
        self.n_blocks = n_blocks
        self.u = nn.Parameter(torch.randn(n_blocks, dim // n_blocks, generator=generator))
        self.register_buffer("down", torch.randn(dim, k, generator=generator) / math.sqrt(dim))
        self.up = nn.Parameter(torch.randn(k, dim, generator=generator) / math.sqrt(k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xb = x.unflatten(-1, (self.n_blocks, -1))
        u = self.u / self.u.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        xb = xb - 2 * (xb * u).sum(-1, keepdim=True) * u
        return xb.flatten(-2) @ self.down @ self.up


def make_transform(kind: str, dim: int, seed: int = 0) -> nn.Module:
    """A transform applied to collected activations inside the loss. ``[..., H] -> [..., H]``.

    ``none`` identity; ``ortho`` a learned orthogonal matrix (torch's Householder
    parametrisation); ``hra`` a product of 8 Householder reflections; ``ether``: :class:`ETHER`.
    """
    g = torch.Generator().manual_seed(seed)
    if kind == "none":
        return nn.Identity()
    if kind == "ortho":
        lin = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(dim, dim, generator=g) / math.sqrt(dim))
        return nn.utils.parametrizations.orthogonal(lin, orthogonal_map="householder")
    if kind == "hra":
        return HRA(dim, generator=g)
    if kind == "ether":
        return ETHER(dim, generator=g)
    raise ValueError(f"Unknown transform {kind!r}; expected one of {TRANSFORMS}.")


def _tkey(key: str) -> str:
    return key.replace(".", "_")


# ----------------------------------------------------------------------------- gradient methods


def project_grad(g: torch.Tensor, direction: torch.Tensor, beta: float = 0.8,
                 slope: float = 0.0) -> torch.Tensor:
    """ProjGrad rewrite of a gradient ``g`` ``[out, r]`` with a direction ``[out]`` in its row
    space.

    ``proj = d d^T g`` (the component of each column along unit ``d``), returns
    ``leaky_relu(proj, slope) + beta * (g - proj)``. With ``slope=1, beta=1`` it returns ``g``.
    """
    if g.shape[0] != direction.shape[0]:
        raise ValueError(f"direction has {direction.shape[0]} entries but the gradient has "
                         f"{g.shape[0]} rows; "
                         "pass the preference direction in the module's output space.")
    d = direction / direction.norm().clamp_min(1e-12)
    proj = torch.outer(d, d @ g)
    return F.leaky_relu(proj, slope) + beta * (g - proj)


def projbp_rewrite(g: torch.Tensor, pref: torch.Tensor, beta: float = 0.2,
                   slope: float = 0.01) -> torch.Tensor:
    """ProjBP rewrite of an output gradient ``g`` ``[N, T, H]`` with a per-sample direction
    ``pref`` ``[N, H]``: ``leaky_relu(proj, slope) + beta * orth`` per token, rescaled to the
    original per-token norm."""
    d = pref / pref.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    d = d.unsqueeze(1)
    proj = (g * d).sum(-1, keepdim=True) * d
    new = F.leaky_relu(proj, slope) + beta * (g - proj)
    return new * (g.norm(dim=-1, keepdim=True) / new.norm(dim=-1, keepdim=True).clamp_min(1e-12))


def _lora_modules(model) -> dict[str, nn.Module]:
    """The peft-wrapped ``q_proj``/``v_proj`` modules (those with ``lora_B``)."""
    return {n: m for n, m in model.named_modules() if hasattr(m, "lora_B")
            and n.split(".")[-1] in ("q_proj", "v_proj")}


# ----------------------------------------------------------------------------- training


@dataclass
class Method:
    """One preference-optimisation method; ``name`` follows the reference (``dpo``,
    ``hs-none-mse``, ...)."""

    kind: str  # dpo | projgrad | projbp | reprpo
    loss: str = "mse"  # reprpo only: mse | rank | prefvec
    transform: str = "none"  # reprpo only: none | ortho | hra | ether
    collect: str = "hs"  # reprpo only: hs | side
    beta: float = 0.1  # DPO beta (dpo, projgrad, projbp)

    def __post_init__(self):
        for val, allowed, what in ((self.kind, KINDS, "kind"), (self.loss, LOSSES, "loss"),
                                   (self.transform, TRANSFORMS, "transform"),
                                   (self.collect, COLLECT, "collect")):
            if val not in allowed:
                raise ValueError(f"Unknown {what} {val!r}; expected one of {allowed}.")

    @property
    def name(self) -> str:
        return (f"{self.collect}-{self.transform}-{self.loss}" if self.kind == "reprpo"
                else self.kind)

    @property
    def canonical(self) -> str:
        """The name of the method this one is identical to: ``mse`` cannot see an isometry, so
        ``ortho``/``hra`` with ``mse`` train exactly as ``none`` (see the isometry test)."""
        if self.kind == "reprpo" and self.loss == "mse" and self.transform in ("ortho", "hra"):
            return f"{self.collect}-none-mse"
        return self.name

    @classmethod
    def parse(cls, name: str) -> "Method":
        """``"dpo"``, ``"projgrad"``, ``"projbp"`` or ``"{hs|side}-{transform}-{loss}"``."""
        if name in ("dpo", "projgrad", "projbp"):
            return cls(kind=name)
        parts = name.split("-")
        if len(parts) != 3:
            raise ValueError(f"Cannot parse method {name!r}; use dpo, projgrad, projbp or "
                             "'{hs|side}-{none|ortho|hra|ether}-{mse|rank|prefvec}'.")
        return cls(kind="reprpo", collect=parts[0], transform=parts[1], loss=parts[2])


@dataclass
class TrainSettings:
    """Budget and optimiser shared by every method (only ``lr`` is chosen per method)."""

    lr: float = 1e-3  # AdamW learning rate (constant after warm-up)
    epochs: int = 2  # passes over the training pairs
    batch: int = 16  # pairs per optimizer step
    lora_r: int = 8  # LoRA rank on q_proj and v_proj (rank-stabilised, alpha 16)
    grad_clip: float = 0.3  # as in the reference
    warmup_frac: float = 0.03  # linear warm-up fraction, as in the reference
    max_steps: int | None = None  # optional cap on optimizer steps
    # collection blocks; None -> collection_blocks(n_layers)
    blocks: list[int] | None = field(default=None)


def add_lora(base: nn.Module, r: int, seed: int):
    """A deep copy of ``base`` with a fresh LoRA adapter on q_proj/v_proj (rsLoRA, alpha 16, no
    dropout)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    cfg = LoraConfig(r=r, lora_alpha=16, use_rslora=True, target_modules=["q_proj", "v_proj"],
                     lora_dropout=0.0)
    with warnings.catch_warnings():  # peft calls a deprecated transformers property
        warnings.filterwarnings("ignore", category=FutureWarning,
                                message=".*gradient_checkpointing.*")
        return get_peft_model(copy.deepcopy(base), cfg)


@torch.no_grad()
def reference_outputs(base: nn.Module, data: dict[str, torch.Tensor], collect: str | None,
                      blocks: list[int], batch_size: int = 32) -> dict:
    """The frozen reference model's outputs for every pair of ``data``, computed once.

    The reference is the base model (the policy with its adapter disabled), so its
    log-probabilities and collected activations never change during training, or between runs
    on the same data: :func:`train_method` reads its batches from here instead of running a
    fourth forward pass per step.

    Returns:
        dict with ``logp`` ``[2, N]`` (chosen, rejected) and ``acts``: key -> ``[2, N, T, H]``.
    """
    was_training = base.training
    base.eval()
    n = data["chosen_ids"].shape[0]
    device = next(base.parameters()).device
    logp, acts = [], {}
    for i in range(0, n, batch_size):
        b = {k: v[i:i + batch_size].to(device) for k, v in data.items()}
        out = forward_pairs(base, b, collect, blocks)
        B = b["chosen_ids"].shape[0]
        logp.append(out["logp"].view(2, B))
        for k, a in out["acts"].items():
            acts.setdefault(k, []).append(a.view(2, B, *a.shape[1:]))
    base.train(was_training)
    return {"logp": torch.cat(logp, 1), "acts": {k: torch.cat(v, 1) for k, v in acts.items()}}


def _reference_batch(reference: dict, idx: torch.Tensor, attn: torch.Tensor) -> dict:
    """Rows ``idx`` of :func:`reference_outputs`, stacked as :func:`forward_pairs` returns them."""
    return {"logp": reference["logp"][:, idx].flatten(), "attn": attn,
            "acts": {k: a[:, idx].flatten(0, 1) for k, a in reference["acts"].items()}}


def train_method(base: nn.Module, method: Method, data: dict[str, torch.Tensor],
                 settings: TrainSettings,
                 seed: int = 0, progress: bool = False, reference: dict | None = None):
    """Train one LoRA adapter on ``data`` (from :func:`tokenize_pairs`) with ``method``.

    As in the reference, each step scores the reference (the adapter disabled) and the policy
    on chosen and rejected (each pair stacked in one ``[2B, T]`` batch). For DPO and the
    hidden-state losses the reference pass runs once over ``data`` before training
    (:func:`reference_outputs`, or ``reference`` when given: the same outputs, shared between
    runs); the gradient methods keep a reference pass per step, as their hooks need it.

    Args:
        reference: :func:`reference_outputs` of ``base`` on ``data`` with this method's
            ``collect`` and blocks, or None to compute it here.

    Returns:
        ``(peft_model, history)`` where history is a list of dicts (step, loss, seconds).
    """
    from tqdm.auto import tqdm

    model = add_lora(base, settings.lora_r, seed)
    n_layers = len(_layers(model))
    blocks = settings.blocks if settings.blocks is not None else collection_blocks(n_layers)
    hidden = model.config.hidden_size
    params = [p for p in model.parameters() if p.requires_grad]
    transforms = nn.ModuleDict()
    collect = None
    if method.kind == "reprpo":
        collect = method.collect
        dims = {f"{b}.hs": hidden for b in blocks} if collect == "hs" else {
            **{f"{b}.o_proj": _layers(model)[b].self_attn.o_proj.in_features for b in blocks},
            **{f"{b}.down_proj": _layers(model)[b].mlp.down_proj.in_features for b in blocks}}
        for i, (k, d) in enumerate(dims.items()):
            transforms[_tkey(k)] = make_transform(method.transform, d, seed=seed * 1000 + i)
        transforms.to(next(model.parameters()).device)
        params += list(transforms.parameters())

    # gradient-method hooks: cache q/v outputs for the reference pass (and grads for projbp)
    lora_mods = _lora_modules(model) if method.kind in ("projgrad", "projbp") else {}
    cache: dict = {"phase": None, "ref": {}, "pol": {}}
    handles = []
    for name, mod in lora_mods.items():
        def fwd(m, args, out, name=name):
            if cache["phase"] is not None:
                cache[cache["phase"]][name] = out.detach()
        handles.append(mod.register_forward_hook(fwd))
        if method.kind == "projbp":
            def bwd(m, grad_out, name=name):
                ref_out = cache["ref"][name]
                B = ref_out.shape[0] // 2
                # [B, H] per sample
                pref = reduce_tokens(ref_out[:B] - ref_out[B:], cache["attn"][:B])
                return (projbp_rewrite(grad_out[0], torch.cat([pref, pref])),)
            handles.append(mod.register_full_backward_pre_hook(bwd))

    if method.kind in ("dpo", "reprpo") and reference is None:
        reference = reference_outputs(base, data, collect, blocks)
    elif method.kind not in ("dpo", "reprpo"):
        reference = None  # projgrad/projbp read the reference pass through their hooks
    g = torch.Generator().manual_seed(seed)
    n = data["chosen_ids"].shape[0]
    steps_per_epoch = math.ceil(n / settings.batch)
    total = steps_per_epoch * settings.epochs
    if settings.max_steps:
        total = min(total, settings.max_steps)
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    warm = max(1, int(settings.warmup_frac * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
    device = next(model.parameters()).device
    history, step, t0 = [], 0, time.perf_counter()
    model.train()
    bar = tqdm(total=total, desc=f"train {method.name}", disable=not progress, leave=False)
    try:
        while step < total:
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, settings.batch):
                if step >= total:
                    break
                idx = perm[i:i + settings.batch]
                batch = {k: v.to(device) for k, v in _rows(data, idx).items()}
                cache["attn"] = torch.cat([batch["chosen_attn"], batch["rejected_attn"]])
                if reference is not None:
                    ref = _reference_batch(reference, idx, cache["attn"])
                else:
                    with torch.no_grad(), model.disable_adapter():
                        cache["phase"] = "ref"
                        ref = forward_pairs(model, batch, collect, blocks)
                cache["phase"] = "pol"
                pi = forward_pairs(model, batch, collect, blocks)
                cache["phase"] = None
                B = batch["chosen_ids"].shape[0]
                if method.kind == "reprpo":
                    loss = HS_LOSSES[method.loss](pi, ref, transforms)
                else:
                    loss = dpo_loss(pi["logp"][:B], pi["logp"][B:], ref["logp"][:B],
                                    ref["logp"][B:],
                                    method.beta).mean()
                # projbp: "no inputs require gradients" is expected
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Full backward hook is firing")
                    loss.backward()
                if method.kind == "projgrad":
                    for name, mod in lora_mods.items():
                        r = cache["ref"][name]
                        # batch-mean preference direction of this module's output, [H_out]
                        pref = (reduce_tokens(r[:B], cache["attn"][:B])
                                - reduce_tokens(r[B:], cache["attn"][B:])).mean(0)
                        for p in mod.lora_B.parameters():
                            if p.grad is not None:
                                p.grad = project_grad(p.grad, pref)
                torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{method.name}: non-finite loss at step {step}; "
                                             f"lower the learning rate.")
                history.append({"step": step, "loss": loss.item(),
                                "seconds": time.perf_counter() - t0})
                step += 1
                bar.update(1)
    finally:
        bar.close()
        for h in handles:
            h.remove()
    model.eval()
    return model, history


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def preference_correct(model: nn.Module, data: dict[str, torch.Tensor],
                       batch_size: int = 256) -> np.ndarray:
    """Whether each pair's chosen completion has the higher *mean* token log-probability.

    Returns a bool array ``[N]`` (ties count as wrong). The length-normalised score follows
    the reference evaluation (``open_pref_eval`` ``score_ipo``).
    """
    model.eval()
    device = next(model.parameters()).device
    out = []
    n = data["chosen_ids"].shape[0]
    for i in range(0, n, batch_size):
        b = {k: v[i:i + batch_size].to(device) for k, v in data.items()}
        f = forward_pairs(model, b)
        score = f["logp"] / f["n_tok"].clamp_min(1)
        B = b["chosen_ids"].shape[0]
        out.append((score[:B] > score[B:]).cpu().numpy())
    return np.concatenate(out)


def select_lr(scores: dict[float, float], tol: float = 0.0) -> float:
    """The learning rate with the best validation score (the smallest among those within ``tol`` of
    it)."""
    if not scores:
        raise ValueError("select_lr got no scores; run the learning-rate search first.")
    best = max(scores.values())
    return min(lr for lr, s in scores.items() if s >= best - tol)


def evaluate_splits(model: nn.Module, splits: dict[str, dict[str, torch.Tensor]],
                    batch_size: int = 256) -> dict[str, np.ndarray]:
    """:func:`preference_correct` on every split: name -> bool ``[N_split]``."""
    return {name: preference_correct(model, data, batch_size) for name, data in splits.items()}
