"""Behaviour cloning of a small timm ViT on LIBERO demonstrations, with checkpoints and
closed-loop rollouts in the simulator.

The policy sees the upright agentview frame (through a from-scratch timm ViT whose CLS output
is the visual feature), the 9-D robot state and a task embedding, and predicts the normalised
7-D action: dims 0-5 in OpenVLA's q01/q99 space ([-1, 1], L1 loss) and the gripper as
open/close (BCE). Random-shift augmentation (pad 4 px, random crop) is what makes BC from a
few dozen demos work at all (as in DrQ / diffusion-policy image pipelines).

Options beyond that baseline (each off by default, and written into a config's cache key only
when set, so earlier checkpoints keep their keys):

* ``encoder="mobilenet_v2"``: torchvision's MobileNetV2 trunk, ImageNet-pretrained
  (``pretrained=True``, strict-loaded by :func:`helpers.pretrained.load_pretrained`) or
  random-init, optionally
  frozen (``freeze_encoder=True``: weights and BatchNorm statistics fixed, only the head learns);
* ``chunk=T``: predict the next T actions (action chunking, as ACT and diffusion policies do);
* ``wrist=True``: the wrist camera through the same encoder, features concatenated;
* ``use_state=False``: no proprioception (OpenVLA uses none).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.libero.action_alignment import normalize_actions


@dataclass
class PolicyConfig:
    """Architecture and training settings (each field: what it sets)."""

    image_size: int = 64  # input frame side (px)
    patch_size: int = 8  # ViT patch side (px)
    embed_dim: int = 96  # ViT width
    depth: int = 4  # ViT blocks
    num_heads: int = 3  # attention heads
    n_tasks: int = 1  # size of the task embedding table
    state_dim: int = 9  # robot state size (gripper qpos 2, eef pos 3, eef quat 4)
    epochs: int = 10  # passes over the data
    batch_size: int = 64
    lr: float = 1e-3  # AdamW learning rate (cosine decay)
    weight_decay: float = 0.05
    shift: int = 4  # random-shift augmentation (px)
    seed: int = 0
    encoder: str = "vit"  # "vit" (from scratch) or "mobilenet_v2"
    pretrained: bool = False  # mobilenet_v2 only: ImageNet weights (else random init)
    freeze_encoder: bool = False  # keep encoder weights and BatchNorm statistics fixed
    chunk: int = 1  # actions predicted per decision (action chunking)
    wrist: bool = False  # also encode the wrist camera
    use_state: bool = True  # proprioception input

# fields added after the first checkpoints were cached: keyed only when not at their default
_LATE_FIELDS = ("encoder", "pretrained", "freeze_encoder", "chunk", "wrist", "use_state")
ENCODERS = ("vit", "mobilenet_v2")


def make_encoder(cfg: PolicyConfig) -> nn.Module:
    """The policy's image encoder: a from-scratch timm ViT (``num_classes=0``: forward returns
    the final-norm CLS) or a MobileNetV2 trunk (:class:`MobileNetEncoder`)."""
    if cfg.encoder not in ENCODERS:
        raise ValueError(f"Expected cfg.encoder in {ENCODERS}, but got {cfg.encoder!r}.")
    torch.manual_seed(cfg.seed)
    if cfg.encoder == "mobilenet_v2":
        return MobileNetEncoder(pretrained=cfg.pretrained, seed=cfg.seed)
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=cfg.image_size, patch_size=cfg.patch_size,
                             embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads,
                             num_classes=0, mlp_ratio=2.0)


class MobileNetEncoder(nn.Module):
    """MobileNetV2's convolutional trunk (``features``, 19 stages) + global average pooling,
    on the policy's [-1, 1] input (mapped to ImageNet's normalisation here).

    ``stage_names`` lists the 19 stages for per-block feature extraction."""

    width = 1280

    def __init__(self, pretrained: bool = False, seed: int = 0):
        super().__init__()
        from helpers import pretrained as zoo

        self.features = zoo.load_pretrained("mobilenet_v2", pretrained=pretrained, seed=seed)
        mean, std = zoo.REGISTRY["mobilenet_v2"].mean, zoo.REGISTRY["mobilenet_v2"].std
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.stage_names = [f"features.{i}" for i in range(len(self.features))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1) / 2 - self.mean) / self.std
        return self.features(x).mean((2, 3))


def encoder_width(cfg: PolicyConfig) -> int:
    """Width of the encoder's pooled output."""
    return MobileNetEncoder.width if cfg.encoder == "mobilenet_v2" else cfg.embed_dim


class BCPolicy(nn.Module):
    """Encoder(agentview [, wrist]) + robot state + task embedding -> normalised actions
    ``[chunk, 7]`` (flattened to ``[7 * chunk]``)."""

    def __init__(self, cfg: PolicyConfig, q01: np.ndarray, q99: np.ndarray):
        super().__init__()
        if cfg.chunk < 1:
            raise ValueError(f"Expected cfg.chunk >= 1, but got {cfg.chunk}.")
        self.cfg = cfg
        self.encoder = make_encoder(cfg)
        if cfg.freeze_encoder:
            self.encoder.requires_grad_(False)
        self.task_emb = nn.Embedding(cfg.n_tasks, 32)
        self.state_mlp = nn.Sequential(nn.Linear(cfg.state_dim, 64), nn.GELU())
        width = encoder_width(cfg) * (2 if cfg.wrist else 1) + (96 if cfg.use_state else 32)
        self.head = nn.Sequential(nn.Linear(width, 256), nn.GELU(), nn.Linear(256, 7 * cfg.chunk))
        self.register_buffer("q01", torch.as_tensor(q01, dtype=torch.float32))
        self.register_buffer("q99", torch.as_tensor(q99, dtype=torch.float32))
        self.register_buffer("state_mean", torch.zeros(cfg.state_dim))
        self.register_buffer("state_std", torch.ones(cfg.state_dim))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.cfg.freeze_encoder:  # frozen BatchNorm keeps its ImageNet statistics
            self.encoder.eval()
        return self

    def forward(self, images: torch.Tensor, state: torch.Tensor, task: torch.Tensor,
                wrist: torch.Tensor | None = None) -> torch.Tensor:
        """images (and wrist) ``[B, 3, H, W]`` already scaled by :func:`to_input`; state
        ``[B, 9]``;
        task ``[B]`` -> ``[B, 7 * chunk]`` (per step: dims 0-5 normalised actions, dim 6 gripper
        logit for "open")."""
        parts = [self.encoder(images)]
        if self.cfg.wrist:
            if wrist is None:
                raise ValueError("This policy reads the wrist camera (cfg.wrist); pass wrist "
                                 "frames.")
            parts.append(self.encoder(wrist))
        if self.cfg.use_state:
            parts.append(self.state_mlp((state - self.state_mean) / self.state_std))
        parts.append(self.task_emb(task))
        return self.head(torch.cat(parts, dim=-1))

    @torch.no_grad()
    def act_chunk(self, frame: np.ndarray, state: np.ndarray, task: int,
                  wrist: np.ndarray | None = None) -> np.ndarray:
        """Raw LIBERO actions ``[chunk, 7]`` for one upright uint8 frame ``[H, W, 3]``."""
        self.eval()
        x = to_input(torch.as_tensor(frame[None].copy()))
        w = to_input(torch.as_tensor(wrist[None].copy())) if wrist is not None else None
        out = self(x, torch.as_tensor(state[None], dtype=torch.float32), torch.tensor([task]), w)
        out = out[0].view(self.cfg.chunk, 7)
        a = torch.empty(self.cfg.chunk, 7)
        a[:, :6] = (out[:, :6].clamp(-1, 1) + 1) / 2 * (self.q99[:6] - self.q01[:6]) + self.q01[:6]
        a[:, 6] = torch.where(out[:, 6] > 0, -1.0, 1.0)  # logit > 0: open (-1 in raw LIBERO)
        return a.numpy()

    def act(self, frame: np.ndarray, state: np.ndarray, task: int,
            wrist: np.ndarray | None = None) -> np.ndarray:
        """The first raw LIBERO action [7] of :meth:`act_chunk`."""
        return self.act_chunk(frame, state, task, wrist)[0]


def to_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, H, W, 3]`` -> float ``[B, 3, H, W]`` in [-1, 1] (the policy's own scaling;
    feed these to feature extraction with ``transform=False``)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"Expected frames of shape [B, H, W, 3], but got {tuple(frames.shape)}.")
    return frames.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _random_shift(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    if pad == 0:
        return x
    b, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    return torch.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])


def chunk_rows(episode: np.ndarray, chunk: int) -> np.ndarray:
    """``[N, chunk]`` row indices of a_t .. a_{t+chunk-1} for every row t, held at the episode's
    last row once the episode ends (rows in time order within each episode)."""
    ep = np.asarray(episode)
    idx = np.arange(len(ep))[:, None] + np.arange(chunk)[None]
    last = np.zeros(len(ep), np.int64)
    for e in np.unique(ep):
        rows = np.flatnonzero(ep == e)
        last[rows] = rows.max()
    return np.minimum(idx, last[:, None])


def train_bc(frames: np.ndarray, states: np.ndarray, actions: np.ndarray, tasks: np.ndarray,
             cfg: PolicyConfig, checkpoint_epochs: tuple[int, ...] = (), progress: bool = True,
             episodes: np.ndarray | None = None, wrist: np.ndarray | None = None):
    """Train :class:`BCPolicy` and keep state dicts at the requested epochs (0 = untrained).

    Args:
        frames: upright uint8 ``[N, H, W, 3]`` (H = W = cfg.image_size).
        states: ``[N, 9]`` robot states.  actions: ``[N, 7]`` raw actions.
        tasks: ``[N]`` task ids.
        checkpoint_epochs: epochs after which to keep a checkpoint (0: before training).
        episodes: ``[N]`` episode id of each row (needed for ``cfg.chunk > 1``: a chunk never
            crosses into the next episode).
        wrist: upright uint8 wrist frames ``[N, H, W, 3]`` (needed for ``cfg.wrist``).

    Returns:
        (policy, checkpoints, history): the final policy, ``{epoch: state_dict}`` and a list of
        per-epoch mean losses.
    """
    n = len(frames)
    if not (len(states) == len(actions) == len(tasks) == n):
        raise ValueError(f"frames/states/actions/tasks must have the same length, got "
                         f"{n}/{len(states)}/{len(actions)}/{len(tasks)}.")
    if frames.shape[1:] != (cfg.image_size, cfg.image_size, 3):
        raise ValueError(f"Expected frames [N, {cfg.image_size}, {cfg.image_size}, 3] to match "
                         f"cfg.image_size, but got {tuple(frames.shape)}.")
    bad = [e for e in checkpoint_epochs if not 0 <= e <= cfg.epochs]
    if bad:
        raise ValueError(f"checkpoint_epochs {bad} outside [0, {cfg.epochs}]; pass epochs within "
                         "training.")
    if cfg.chunk > 1 and (episodes is None or len(episodes) != n):
        raise ValueError(f"cfg.chunk = {cfg.chunk} needs episodes, one id per row ({n}).")
    if cfg.wrist and (wrist is None or wrist.shape != frames.shape):
        raise ValueError(f"cfg.wrist needs wrist frames shaped like frames {tuple(frames.shape)}.")
    from helpers.libero.action_alignment import action_quantiles

    q01, q99 = action_quantiles(actions)
    policy = BCPolicy(cfg, q01, q99)
    policy.state_mean.copy_(torch.as_tensor(states.mean(0)))
    policy.state_std.copy_(torch.as_tensor(states.std(0) + 1e-6))
    x_all = torch.as_tensor(frames)
    s_all = torch.as_tensor(states, dtype=torch.float32)
    y_all = torch.as_tensor(normalize_actions(actions, q01, q99))
    t_all = torch.as_tensor(tasks, dtype=torch.long)
    w_all = torch.as_tensor(wrist) if cfg.wrist else None
    rows = torch.as_tensor(chunk_rows(episodes, cfg.chunk)) if cfg.chunk > 1 else None
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    steps = max(cfg.epochs * ((n + cfg.batch_size - 1) // cfg.batch_size), 4)
    # warm up over 10% of the steps, but at least 2 (OneCycleLR divides by zero with fewer)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps,
                                                pct_start=max(0.1, 2.0 / steps))
    gen = torch.Generator().manual_seed(cfg.seed)
    checkpoints = {0: copy.deepcopy(policy.state_dict())} if 0 in checkpoint_epochs else {}
    history = []
    for epoch in tqdm(range(1, cfg.epochs + 1), desc="BC epochs", disable=not progress):
        policy.train()
        perm = torch.randperm(n, generator=gen)
        losses = []
        for s in range(0, n, cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            x = _random_shift(to_input(x_all[idx]), cfg.shift, gen)
            w = _random_shift(to_input(w_all[idx]), cfg.shift, gen) if cfg.wrist else None
            out = policy(x, s_all[idx], t_all[idx], w).view(len(idx), cfg.chunk, 7)
            y = y_all[rows[idx]] if rows is not None else y_all[idx][:, None]
            loss = (F.l1_loss(out[..., :6], y[..., :6])
                    + F.binary_cross_entropy_with_logits(out[..., 6], y[..., 6]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
        if epoch in checkpoint_epochs:
            checkpoints[epoch] = copy.deepcopy(policy.state_dict())
    return policy, checkpoints, history


def load_policy(cfg: PolicyConfig | dict, state_dict: dict) -> BCPolicy:
    """Rebuild a :class:`BCPolicy` from its config and a checkpoint."""
    cfg = PolicyConfig(**cfg) if isinstance(cfg, dict) else cfg
    policy = BCPolicy(cfg, np.zeros(7), np.ones(7))
    policy.load_state_dict(state_dict)
    return policy.eval()


def config_dict(cfg: PolicyConfig) -> dict:
    """The config as a plain dict (for cache keys and checkpoints); the later options appear only
    when they differ from their defaults, so earlier keys are unchanged."""
    out = asdict(cfg)
    default = PolicyConfig()
    for name in _LATE_FIELDS:
        if out[name] == getattr(default, name):
            del out[name]
    return out
