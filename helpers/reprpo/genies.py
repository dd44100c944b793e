"""Full-scale data and model loaders for the ReprPO chapter: GENIES preference sets and a causal
LM.

The reference's table-era runs used ``wassname/genie_dpo`` (one config per GENIES
distribution, string columns ``prompt``/``chosen``/``rejected``, splits ``train``/``test``):
train on ``us_history_textbook``, evaluate on its test split, on ``us_history_fiction`` (the
out-of-sample context shift) and on ``code_hard`` (the unrelated split). Everything here also
reads a local copy (``local_dir/<config>/<split>.{json,jsonl,parquet}``), which is what the
tests use; without network access and without a local copy the loaders raise an error
naming the dataset (``RuntimeError``) or model (``helpers.hub.ModelUnavailableError``).
"""
from __future__ import annotations

import os
from pathlib import Path

GENIES_DATASET = "wassname/genie_dpo"
TABLE_ERA_SPLITS = {
    "train": ("us_history_textbook", "train"),
    "test": ("us_history_textbook", "test"),
    "context": ("us_history_fiction", "test"),
    "unrelated": ("code_hard", "test"),
}
"""Split name -> (GENIES config, hub split) behind the reference README table (see the notes)."""

COLUMNS = ("prompt", "chosen", "rejected")


def _read_local(local_dir: Path, config: str, split: str) -> list[dict]:
    import pandas as pd

    for suffix, reader in ((".parquet", pd.read_parquet),
                           (".jsonl", lambda p: pd.read_json(p, lines=True)),
                           (".json", pd.read_json)):
        path = local_dir / config / f"{split}{suffix}"
        if path.exists():
            try:
                return reader(path).to_dict("records")
            except ValueError as err:  # malformed JSON or parquet: say which file
                raise ValueError(f"{path} could not be read as {suffix[1:]} records ({err}); fix "
                                 f"or "
                                 "re-export the file") from err
    raise FileNotFoundError(f"No local copy of {config}/{split} under {local_dir}; expected "
                            f"{local_dir}/{config}/{split}.parquet, .jsonl or .json.")


def load_preference_records(config: str, split: str, n: int | None = None,
                            dataset: str = GENIES_DATASET,
                            local_dir: str | Path | None = None) -> list[dict[str, str]]:
    """Up to ``n`` ``{"prompt", "chosen", "rejected"}`` records of one GENIES distribution.

    Args:
        config: GENIES distribution, e.g. ``"us_history_textbook"``.
        split: ``"train"`` or ``"test"``.
        n: keep the first ``n`` records (``None``: all).
        dataset: hub dataset id.
        local_dir: read ``<local_dir>/<config>/<split>.{parquet,jsonl,json}`` instead of the hub.

    Raises:
        RuntimeError: the hub cannot be reached and no ``local_dir`` was given.
        ValueError: the records lack the ``prompt``/``chosen``/``rejected`` columns or a record
            lacks one of those texts (None/NaN), a local file is malformed (named), or ``config``,
            ``split``, ``n`` or ``local_dir`` is of the wrong type.
        FileNotFoundError: ``local_dir`` holds no ``<config>/<split>`` file.
    """
    for name, value in (("config", config), ("split", split)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string; got {value!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ValueError(f"n must be None (all records) or an integer >= 0; got {n!r}")
    if local_dir is not None and not isinstance(local_dir, (str, os.PathLike)):
        raise ValueError(f"local_dir must be a folder path (str or Path) or None; got "
                         f"{type(local_dir).__name__}")
    if local_dir is not None:
        rows = _read_local(Path(local_dir), config, split)
    else:
        try:
            import datasets

            rows = datasets.load_dataset(dataset, config, split=split).to_list()
        except Exception as e:  # offline, missing config, ...: say what is needed
            raise RuntimeError(
                f"Could not load the hub dataset {dataset!r} (config {config!r}, split "
                f"{split!r}): {type(e).__name__}: {str(e)[:200]}. The full scale needs network "
                "access to the Hugging Face Hub, or a local copy passed as local_dir=<folder "
                f"with {config}/{split}.parquet>.") from e
    if rows and not set(COLUMNS) <= set(rows[0]):
        raise ValueError(f"{dataset}/{config}/{split} records need columns {COLUMNS}; got "
                         f"{sorted(rows[0])}.")
    missing = [i for i, r in enumerate(rows) if any(r[k] is None or r[k] != r[k] for k in COLUMNS)]
    if missing:  # None or NaN would become the text "None"/"nan" and be trained on
        raise ValueError(f"{dataset}/{config}/{split}: {len(missing)} record(s) lack a prompt, "
                         f"chosen or rejected text (first at row {missing[0]}); drop them first")
    rows = [{k: str(r[k]) for k in COLUMNS} for r in rows]
    return rows[:n] if n is not None else rows


def load_causal_lm(name_or_path: str, dtype=None, device: str | None = None):
    """``(model, tokenizer)`` with the LM head, float32 on the CPU unless told otherwise, from a
    hub id or a local ``save_pretrained`` folder; the tokenizer gets a pad token.

    Raises:
        helpers.hub.ModelUnavailableError: (an ``OSError``) the model cannot be loaded (offline and
        not a local path).
    """
    import torch

    from helpers.hub import load_language_model

    return load_language_model(name_or_path, dtype=dtype or torch.float32, device=device or "cpu",
                               causal_lm=True)


def hf_encoders(tokenizer):
    """``(encode_prompt, encode_completion, pad_id)`` for
    :func:`helpers.reprpo.methods.tokenize_pairs`: the prompt gets the tokenizer's special tokens
    (BOS), the completion none plus a final EOS."""
    def encode_prompt(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=True)["input_ids"]

    def encode_completion(text: str) -> list[int]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])

    return encode_prompt, encode_completion, tokenizer.pad_token_id


def load_table_era_splits(n_train: int, n_val: int, n_eval: int,
                          local_dir: str | Path | None = None) -> dict[str, list[dict[str, str]]]:
    """The reference table's splits (:data:`TABLE_ERA_SPLITS`): ``train`` is the first ``n_train``
    training records, ``val`` the next ``n_val`` (held out from training), the others ``n_eval``
    each."""
    full_train = load_preference_records(*TABLE_ERA_SPLITS["train"], n=n_train + n_val,
                                         local_dir=local_dir)
    if len(full_train) < n_train + n_val:
        raise ValueError(f"Only {len(full_train)} training records; lower n_train + n_val "
                         f"(now {n_train} + {n_val}).")
    out = {"train": full_train[:n_train], "val": full_train[n_train:]}
    for name in ("test", "context", "unrelated"):
        out[name] = load_preference_records(*TABLE_ERA_SPLITS[name], n=n_eval, local_dir=local_dir)
    return out
