"""Train only the top blocks of a causal LM: the frozen lower blocks ("stem") run once per text.

Every method in :mod:`helpers.reprpo.methods` puts its LoRA adapter on the same top blocks
and collects hidden states from them, so the blocks below never change. Their output for a
given text is therefore the same in every run, for the reference model and the policy alike;
:func:`stem_embeddings` computes it once per split and :func:`split_top` builds the model that
continues from it. A training step then costs the top blocks only, and the result is exactly
that of the full model with adapters on the top blocks (a test checks the log-probabilities).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from helpers.reprpo.methods import _layers


def _n_layers(model: nn.Module) -> int:
    return len(_layers(model))


def split_top(model: nn.Module, n_top: int) -> nn.Module:
    """A copy of a Llama-style causal LM keeping only its last ``n_top`` blocks (plus the final
    norm, LM head and embedding, which the head may share); it takes ``inputs_embeds`` from
    :func:`stem_embeddings`.

    Raises:
        ValueError: ``n_top`` outside ``1..n_layers``.
    """
    n = _n_layers(model)
    if not 1 <= n_top <= n:
        raise ValueError(f"n_top must be between 1 and the model's {n} blocks; got {n_top}")
    cfg = copy.deepcopy(model.config)
    cfg.num_hidden_layers = n_top
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = list(cfg.layer_types)[-n_top:]
    top = type(model)(cfg)
    first = n - n_top
    state = {}
    for k, v in model.state_dict().items():
        if ".layers." in k:
            head, rest = k.split(".layers.", 1)
            idx, tail = rest.split(".", 1)
            if int(idx) < first:
                continue
            k = f"{head}.layers.{int(idx) - first}.{tail}"
        state[k] = v.clone()
    top.load_state_dict(state, strict=True)
    return top.to(next(model.parameters()).device).eval()


@torch.no_grad()
def stem_embeddings(model: nn.Module, data: dict[str, torch.Tensor], n_top: int,
                    batch_size: int = 64) -> dict[str, torch.Tensor]:
    """``data`` (from :func:`helpers.reprpo.methods.tokenize_pairs`) plus ``chosen_embeds`` and
    ``rejected_embeds`` ``[N, T, H]``: the hidden state entering block ``n_layers - n_top``.

    Raises:
        ValueError: ``n_top`` outside ``1..n_layers``.
    """
    n = _n_layers(model)
    if not 1 <= n_top <= n:
        raise ValueError(f"n_top must be between 1 and the model's {n} blocks; got {n_top}")
    model.eval()
    device = next(model.parameters()).device
    out = dict(data)
    for side in ("chosen", "rejected"):
        parts = []
        for i in range(0, data[f"{side}_ids"].shape[0], batch_size):
            ids = data[f"{side}_ids"][i:i + batch_size].to(device)
            attn = data[f"{side}_attn"][i:i + batch_size].to(device)
            res = model(input_ids=ids, attention_mask=attn, output_hidden_states=True,
                        logits_to_keep=1)
            parts.append(res.hidden_states[n - n_top].float().cpu())
        out[f"{side}_embeds"] = torch.cat(parts)
    return out
