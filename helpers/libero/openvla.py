"""OpenVLA-7B feature path for the ``full`` scale: per-block features of both vision towers
(DINOv2 and SigLIP) and LLM hidden states at action-token positions.

OpenVLA (``openvla/openvla-7b``, HF ``trust_remote_code``) reads two timm ViTs,
``vla.vision_backbone.featurizer`` (DINOv2 ViT-L/14 + 4 registers, 24 blocks) and
``vla.vision_backbone.fused_featurizer`` (SigLIP So400m/14, 27 blocks, no CLS), at their
second-to-last block (:data:`USED_BLOCK`). ``pixel_values`` is ``[B, 6, 224, 224]``: channels
0-2 DINOv2-normalised, 3-5 SigLIP-normalised. LIBERO frames are rotated 180 degrees first, as
OpenVLA's LIBERO conversion and eval do.

Differences from OpenVLA's eval pipeline, on purpose: we resize with torch bicubic
(antialiased) instead of JPEG round trip + TF lanczos3, and do not centre-crop unless asked.

Everything here runs on stand-ins (tiny timm ViTs, a tiny Llama) in the tests; the real
weights need network access, and :func:`load_openvla` says so offline.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from helpers.features import extract_vision_features
from helpers.libero.demos import Demos, read_demos
from helpers.hub import _is_network_error, _offline_env_respected, _offline_error, _looks_like_path

# OpenVLA reads both towers at the second-to-last block (no final norm, prefix dropped)
USED_BLOCK = -2
DINO_MEAN, DINO_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SIGLIP_MEAN, SIGLIP_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
ACTION_DIM = 7
N_ACTION_BINS = 256  # action tokens are the last 256 ids of the Llama vocabulary


def preprocess(frames: np.ndarray | torch.Tensor, size: int = 224, rotate: bool = True,
               center_crop: bool = False) -> torch.Tensor:
    """LIBERO frames -> OpenVLA ``pixel_values``.

    Args:
        frames: uint8 ``[N, H, W, 3]`` as stored in LIBERO HDF5 (raw robosuite convention; read
            them with ``read_demos(..., upright=False)``).
        size: model input side (224 for OpenVLA).
        rotate: rotate 180 degrees (reverse both image axes), as OpenVLA does for LIBERO.
        center_crop: crop 0.9 of the area and resize back (OpenVLA's fine-tuned checkpoints).

    Returns:
        ``[N, 6, size, size]`` float32: DINOv2-normalised channels, then SigLIP-normalised.
    """
    x = torch.as_tensor(np.asarray(frames))
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
        raise ValueError(f"Expected uint8 frames [N, H, W, 3], but got {tuple(x.shape)} "
                         f"{x.dtype}.")
    x = x.permute(0, 3, 1, 2).float() / 255
    if rotate:
        x = x.flip(-1, -2)
    if center_crop:
        h, w = x.shape[-2:]
        s = 0.9 ** 0.5
        ch, cw = int(round(h * s)), int(round(w * s))
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[..., top:top + ch, left:left + cw]
    x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True,
                      align_corners=False).clamp(0, 1)

    def norm(mean, std):
        return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]

    return torch.cat([norm(DINO_MEAN, DINO_STD), norm(SIGLIP_MEAN, SIGLIP_STD)], dim=1)


def tower_features(featurizer: torch.nn.Module, fused_featurizer: torch.nn.Module | None,
                   pixel_values: torch.Tensor, batch_size: int = 16, device=None,
                   progress: bool = True) -> dict[str, torch.Tensor]:
    """Per-block features of both towers.

    DINOv2 gives CLS (token 0) and mean-patch features; SigLIP has no CLS, so only mean-patch
    (its MAP head belongs after the final norm, which OpenVLA skips).

    Args:
        featurizer, fused_featurizer: timm ViTs (``vla.vision_backbone.featurizer`` /
            ``.fused_featurizer``, or stand-ins).
        pixel_values: ``[N, 6, H, W]`` from :func:`preprocess`.

    Returns:
        ``{"dinov2_cls", "dinov2_mean", "siglip_mean"}``: each ``[N, L, D]``; index
        :data:`USED_BLOCK` is the block the VLA itself reads.
    """
    if pixel_values.ndim != 4 or pixel_values.shape[1] != 6:
        raise ValueError(f"Expected pixel_values [N, 6, H, W] (DINOv2 + SigLIP channels), got "
                         f"{tuple(pixel_values.shape)}.")
    out = {}
    d = extract_vision_features(featurizer, pixel_values[:, :3], pool="both", transform=False,
                                batch_size=batch_size, device=device, progress=progress)
    out["dinov2_cls"], out["dinov2_mean"] = d["cls"], d["mean"]
    if fused_featurizer is not None:
        out["siglip_mean"] = extract_vision_features(
            fused_featurizer, pixel_values[:, 3:], pool="mean", transform=False,
            batch_size=batch_size, device=device, progress=progress)
    return out


def prompt(instruction: str) -> str:
    """OpenVLA's prompt for a LIBERO instruction."""
    return f"In: What action should the robot take to {instruction.lower()}?\nOut:"


def action_token_ids(actions_normalised: np.ndarray, vocab_size: int) -> np.ndarray:
    """OpenVLA's action tokens: 256 uniform bins on [-1, 1]; id = vocab_size - bin index.

    Args:
        actions_normalised: ``[N, 7]`` in [-1, 1] (see ``vla_alignment.normalize_actions``;
            the gripper there is in [0, 1], which maps into the upper half of the bins).

    Returns:
        ``[N, 7]`` int64 token ids in ``[vocab_size - 256, vocab_size - 1]``.
    """
    a = np.clip(np.asarray(actions_normalised, np.float64), -1, 1)
    bins = np.linspace(-1, 1, N_ACTION_BINS)
    idx = np.digitize(a, bins)  # 1..256
    return (vocab_size - np.clip(idx, 1, N_ACTION_BINS)).astype(np.int64)


def action_positions(input_ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Positions whose *next* token is an action token (the state at p predicts token p + 1).

    Args:
        input_ids: ``[B, T]`` with exactly 7 action tokens per row.

    Returns:
        ``[B, 7]`` positions.
    """
    nxt = input_ids[:, 1:] >= vocab_size - N_ACTION_BINS
    counts = nxt.sum(1)
    if not torch.all(counts == ACTION_DIM):
        raise ValueError(f"Expected {ACTION_DIM} action tokens per row, but found "
                         f"{counts.tolist()}; "
                         "append the 7 tokens from action_token_ids to each prompt.")
    return torch.nonzero(nxt)[:, 1].view(len(input_ids), ACTION_DIM)


@torch.no_grad()
def action_hidden_states(language_model: torch.nn.Module, input_ids: torch.Tensor,
                         vocab_size: int, attention_mask: torch.Tensor | None = None,
                         **kwargs: Any) -> torch.Tensor:
    """Hidden states at the 7 positions before each action token, every layer.

    Args:
        language_model: a HF causal LM (OpenVLA's forward also takes ``pixel_values`` via kwargs;
            its 256 patch positions are inserted after BOS, so pass ``offset`` handling to the
            caller by giving ``input_ids`` as the model sees them).
        input_ids: ``[B, T]`` prompt + 7 action tokens (teacher forcing).

    Returns:
        ``[B, L + 1, 7, D]`` (embeddings + every layer).
    """
    pos = action_positions(input_ids, vocab_size)
    out = language_model(input_ids=input_ids, attention_mask=attention_mask,
                         output_hidden_states=True, **kwargs)
    hs = torch.stack(out.hidden_states, dim=1)  # [B, L+1, T', D]
    shift = hs.shape[2] - input_ids.shape[1]  # OpenVLA: 256 patch tokens inserted after BOS
    idx = (pos + shift)[:, None, :, None].expand(-1, hs.shape[1], -1, hs.shape[-1])
    return hs.gather(2, idx).float().cpu()


def load_openvla(name_or_path: str = "openvla/openvla-7b", device=None, dtype=torch.bfloat16):
    """Load OpenVLA (``AutoModelForVision2Seq``, ``trust_remote_code``) and its processor.

    OpenVLA's remote code checks timm in {0.9.10, 0.9.11, 0.9.12, 0.9.16} and expects
    transformers 4.40.1; the book's environment has newer versions, so a GPU run may need those
    pins in a separate environment.

    Raises:
        ModelUnavailableError: offline without a local copy (names the model; needs network
            access to the HF hub, or a local path to a downloaded checkpoint).
    """
    import transformers
    from transformers import AutoProcessor

    # transformers 5 dropped AutoModelForVision2Seq; OpenVLA's remote code targets 4.40.1
    # (pin transformers==4.40.1 timm==0.9.16 tokenizers==0.19.1 on the GPU machine if loading
    # fails)
    auto_model = (getattr(transformers, "AutoModelForVision2Seq", None)
                  or transformers.AutoModelForImageTextToText)
    try:
        with _offline_env_respected():
            processor = AutoProcessor.from_pretrained(name_or_path, trust_remote_code=True)
            vla = auto_model.from_pretrained(name_or_path, torch_dtype=dtype,
                                             trust_remote_code=True, low_cpu_mem_usage=True)
    except Exception as err:
        if _looks_like_path(name_or_path) and not _is_network_error(err):
            raise
        raise _offline_error("OpenVLA", name_or_path, err) from err
    if device is not None:
        vla = vla.to(device)
    return vla.eval(), processor


def libero_folder_features(folder: str | Path, towers: tuple | None = None,
                           model: str = "openvla/openvla-7b", max_demos: int | None = None,
                           size: int = 224, batch_size: int = 16, device=None,
                           progress: bool = True
                           ) -> tuple[list[Demos], dict[str, list[torch.Tensor]]]:
    """Per-block tower features of every frame of every LIBERO ``*.hdf5`` file in ``folder``.

    Frames are read raw (``upright=False``), rotated 180 degrees and normalised per tower
    (:func:`preprocess`), then run through both towers (:func:`tower_features`).

    Args:
        folder: a folder of LIBERO demo files (one task each, e.g. ``libero_spatial/*.hdf5``).
        towers: ``(featurizer, fused_featurizer)`` timm ViTs; None loads ``model`` with
            :func:`load_openvla` and takes ``vla.vision_backbone.featurizer`` /
            ``.fused_featurizer``.
        max_demos: first demos per file (None: all).

    Returns:
        (one :class:`Demos` per file, sorted by name; ``{"dinov2_cls", "dinov2_mean",
        "siglip_mean"}`` -> one ``[N_t, L, D]`` tensor per file).
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.hdf5")) if folder.is_dir() else []
    if not files:
        raise ValueError(f"No LIBERO *.hdf5 files in {str(folder)!r}; set `libero_dir` to a "
                         "folder of LIBERO demo files (e.g. libero_spatial from HF "
                         "yifengzhu-hf/LIBERO-datasets).")
    if towers is None:
        vla, _ = load_openvla(model, device=device)
        # fp32 towers: the frames go in as float32, and per-block features are compared in fp32
        towers = (vla.vision_backbone.featurizer.float(),
                  vla.vision_backbone.fused_featurizer.float())
    demos, feats = [], {}
    for path in files:
        d = read_demos(path, max_demos=max_demos, upright=False)
        f = tower_features(towers[0], towers[1], preprocess(d.agentview, size=size),
                           batch_size=batch_size, device=device, progress=progress)
        demos.append(d)
        for name, x in f.items():
            feats.setdefault(name, []).append(x)
    return demos, feats
