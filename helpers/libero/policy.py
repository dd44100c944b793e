"""Behaviour cloning of a small timm ViT on LIBERO demonstrations, with checkpoints and
closed-loop rollouts in the simulator.

The policy sees the upright agentview frame (through a from-scratch timm ViT whose CLS output
is the visual feature), the 9-D robot state and a task embedding, and predicts the normalised
7-D action: dims 0-5 in OpenVLA's q01/q99 space ([-1, 1], L1 loss) and the gripper as
open/close (BCE). Random-shift augmentation (pad 4 px, random crop) is what makes BC from a
few dozen demos work at all (as in DrQ / diffusion-policy image pipelines).
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


def make_encoder(cfg: PolicyConfig) -> nn.Module:
    """A from-scratch timm ViT (``num_classes=0``: forward returns the final-norm CLS)."""
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(cfg.seed)
    return VisionTransformer(img_size=cfg.image_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim,
                             depth=cfg.depth, num_heads=cfg.num_heads, num_classes=0, mlp_ratio=2.0)


class BCPolicy(nn.Module):
    """ViT(agentview) + robot state + task embedding -> normalised action [7]."""

    def __init__(self, cfg: PolicyConfig, q01: np.ndarray, q99: np.ndarray):
        super().__init__()
        self.cfg = cfg
        self.encoder = make_encoder(cfg)
        self.task_emb = nn.Embedding(cfg.n_tasks, 32)
        self.state_mlp = nn.Sequential(nn.Linear(cfg.state_dim, 64), nn.GELU())
        self.head = nn.Sequential(nn.Linear(cfg.embed_dim + 96, 256), nn.GELU(), nn.Linear(256, 7))
        self.register_buffer("q01", torch.as_tensor(q01, dtype=torch.float32))
        self.register_buffer("q99", torch.as_tensor(q99, dtype=torch.float32))
        self.register_buffer("state_mean", torch.zeros(cfg.state_dim))
        self.register_buffer("state_std", torch.ones(cfg.state_dim))

    def forward(self, images: torch.Tensor, state: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """images ``[B, 3, H, W]`` already scaled by :func:`to_input`; state ``[B, 9]``; task ``[B]``
        -> ``[B, 7]`` (dims 0-5 normalised actions, dim 6 gripper logit for "open")."""
        z = self.encoder(images)
        s = self.state_mlp((state - self.state_mean) / self.state_std)
        return self.head(torch.cat([z, s, self.task_emb(task)], dim=-1))

    @torch.no_grad()
    def act(self, frame: np.ndarray, state: np.ndarray, task: int) -> np.ndarray:
        """Raw LIBERO action [7] for one upright uint8 frame ``[H, W, 3]``."""
        self.eval()
        x = to_input(torch.as_tensor(frame[None].copy()))
        out = self(x, torch.as_tensor(state[None], dtype=torch.float32), torch.tensor([task]))[0]
        a = torch.empty(7)
        a[:6] = (out[:6].clamp(-1, 1) + 1) / 2 * (self.q99[:6] - self.q01[:6]) + self.q01[:6]
        a[6] = -1.0 if out[6] > 0 else 1.0  # logit > 0: open (-1 in raw LIBERO)
        return a.numpy()


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


def train_bc(frames: np.ndarray, states: np.ndarray, actions: np.ndarray, tasks: np.ndarray,
             cfg: PolicyConfig, checkpoint_epochs: tuple[int, ...] = (), progress: bool = True):
    """Train :class:`BCPolicy` and keep state dicts at the requested epochs (0 = untrained).

    Args:
        frames: upright uint8 ``[N, H, W, 3]`` (H = W = cfg.image_size).
        states: ``[N, 9]`` robot states.  actions: ``[N, 7]`` raw actions.  tasks: ``[N]`` task ids.
        checkpoint_epochs: epochs after which to keep a checkpoint (0: before training).

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
        raise ValueError(f"checkpoint_epochs {bad} outside [0, {cfg.epochs}]; pass epochs within training.")
    from helpers.libero.action_alignment import action_quantiles

    q01, q99 = action_quantiles(actions)
    policy = BCPolicy(cfg, q01, q99)
    policy.state_mean.copy_(torch.as_tensor(states.mean(0)))
    policy.state_std.copy_(torch.as_tensor(states.std(0) + 1e-6))
    x_all = torch.as_tensor(frames)
    s_all = torch.as_tensor(states, dtype=torch.float32)
    y_all = torch.as_tensor(normalize_actions(actions, q01, q99))
    t_all = torch.as_tensor(tasks, dtype=torch.long)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * ((n + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1), pct_start=0.1)
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
            out = policy(x, s_all[idx], t_all[idx])
            y = y_all[idx]
            loss = F.l1_loss(out[:, :6], y[:, :6]) + F.binary_cross_entropy_with_logits(out[:, 6], y[:, 6])
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
    """The config as a plain dict (for cache keys and checkpoints)."""
    return asdict(cfg)


def rollout_success(policies, task, task_index: int, init_indices, *, image_size: int,
                    max_steps: int = 220, action_repeat: int = 2, seed: int = 0,
                    progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Closed-loop success of each policy on a LIBERO task from the given init states (one env
    for all policies; only the agentview camera, the policies' input, is rendered).

    Args:
        policies: a :class:`BCPolicy` or a list of them (e.g. checkpoints).

    Returns:
        (success ``[P, n]`` bool, progress ``[P, n]`` float in [0, 1]: how much closer the bowl
        got to the plate, 1 on success).
    """
    from helpers.libero import sim as libero_sim

    policies = [policies] if isinstance(policies, BCPolicy) else list(policies)
    env = libero_sim.make_env(task, image_size=image_size, seed=seed)
    succ = np.zeros((len(policies), len(init_indices)), bool)
    prog = np.zeros((len(policies), len(init_indices)), np.float32)
    bar = tqdm(total=succ.size, desc=f"rollouts task {task.task_id}", disable=not progress)
    for p, policy in enumerate(policies):
        fn = lambda frames, state, policy=policy: policy.act(frames["agentview"][::-1], state, task_index)
        for j, i in enumerate(init_indices):
            ep = libero_sim.run_episode(env, task, int(i), policy=fn, max_steps=max_steps,
                                        action_repeat=action_repeat, record=False, cameras=("agentview",))
            succ[p, j], prog[p, j] = ep.success, ep.progress
            bar.update(1)
    bar.close()
    env.close()
    return succ, prog
