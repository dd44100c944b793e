"""A procedural image world with known latent factors, and a caption for every image.

Each image is one coloured shape on a textured, coloured background. Seven categorical
factors generate it (``shape``, ``color``, ``size``, ``row``, ``col``, ``bg_color``,
``texture``) plus continuous jitter (centre, radius, texture phase), and the caption is
written from the factors, e.g. "a small red triangle at the top left on a striped blue
background".

Two splits, in the spirit of ImageNet-O:

* ``"id"`` (in distribution): the training world. Some (shape, colour) pairs never occur.
* ``"ood"``: a third each of (a) those held-out (shape, colour) combinations, (b) novel
  shapes (star, ring, cross) and (c) novel background textures (dots, waves). A classifier
  trained on ``"id"`` cannot name a novel shape and has never seen the held-out pairs.

Rendering is vectorised in torch (signed-distance masks over a pixel grid), so thousands of
64x64 images render in well under a second.

Example:
    >>> data = make_dataset(8, split="id", seed=0)
    >>> tuple(data.images.shape), len(data.captions), data.factors.shape[0]
    ((8, 3, 64, 64), 8, 8)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

SHAPES = ("circle", "square", "triangle", "diamond")
"""Shapes of the in-distribution world (the supervised ``shape`` classes)."""
NOVEL_SHAPES = ("star", "ring", "cross")
"""Shapes that appear only in the OOD split."""
COLORS = {
    "red": (0.85, 0.15, 0.15),
    "green": (0.15, 0.70, 0.20),
    "blue": (0.15, 0.30, 0.90),
    "yellow": (0.95, 0.85, 0.10),
    "purple": (0.60, 0.20, 0.75),
    "orange": (1.00, 0.55, 0.05),
}
"""Foreground colour names and their RGB in [0, 1]."""
BG_COLORS = {
    "white": (0.92, 0.92, 0.92),
    "gray": (0.50, 0.50, 0.50),
    "black": (0.10, 0.10, 0.10),
    "teal": (0.20, 0.55, 0.55),
    "pink": (0.95, 0.65, 0.75),
}
"""Background colour names and their RGB in [0, 1]."""
SIZES = {"small": 0.12, "medium": 0.19, "large": 0.27}
"""Size names and their mean radius as a fraction of the image side."""
ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")
TEXTURES = ("plain", "striped", "checkered")
"""Background textures of the in-distribution world."""
NOVEL_TEXTURES = ("dotted", "wavy")
"""Background textures that appear only in the OOD split."""

FACTORS = ("shape", "color", "size", "row", "col", "bg_color", "texture")
"""The categorical factors, in column order of :attr:`ShapesData.factors`."""
FACTOR_CLASSES = {
    "shape": SHAPES,
    "color": tuple(COLORS),
    "size": tuple(SIZES),
    "row": ROWS,
    "col": COLS,
    "bg_color": tuple(BG_COLORS),
    "texture": TEXTURES,
}
"""The in-distribution classes of each factor (what a supervised model learns to name)."""

SPLITS = ("id", "ood")
OOD_KINDS = ("held_out_combo", "novel_shape", "novel_texture")


def held_out(shape: str, color: str) -> bool:
    """Whether the (shape, colour) pair is withheld from the in-distribution split.

    Roughly a quarter of the pairs: those with (shape index + colour index) divisible by 4.
    """
    return (SHAPES.index(shape) + list(COLORS).index(color)) % 4 == 0


@dataclass
class ShapesData:
    """A rendered sample of the world.

    Attributes:
        images: float tensor ``[N, 3, H, W]`` in [0, 1].
        factors: one row per image; categorical columns :data:`FACTORS`, continuous
            ``cx``, ``cy``, ``radius`` (fractions of the side) and ``subset`` ("id" or one
            of :data:`OOD_KINDS`).
        captions: ``N`` strings written from the factors.
    """

    images: torch.Tensor
    factors: pd.DataFrame
    captions: list[str]

    def __len__(self) -> int:
        return len(self.captions)

    def labels(self, factor: str) -> torch.Tensor:
        """Integer class of ``factor`` per image ``[N]`` (index into :data:`FACTOR_CLASSES`),
        ``-1`` where the value is not an in-distribution class (novel shape or texture)."""
        if factor not in FACTOR_CLASSES:
            raise ValueError(f"factor must be one of {FACTORS}, got {factor!r}")
        lookup = {name: i for i, name in enumerate(FACTOR_CLASSES[factor])}
        return torch.tensor([lookup.get(v, -1) for v in self.factors[factor]], dtype=torch.long)


def caption(row: dict) -> str:
    """The caption of one image from its factor values, e.g.
    "a small red triangle at the top left on a striped blue background"."""
    if row["row"] == "middle" and row["col"] == "center":
        where = "in the center"
    elif row["row"] == "middle":
        where = f"on the {row['col']}"
    elif row["col"] == "center":
        where = f"at the {row['row']}"
    else:
        where = f"at the {row['row']} {row['col']}"
    tex = "" if row["texture"] == "plain" else f"{row['texture']} "
    return (f"a {row['size']} {row['color']} {row['shape']} {where} on a {tex}{row['bg_color']} "
            f"background")


def sample_factors(n: int, split: str = "id", seed: int = 0) -> pd.DataFrame:
    """Draw the factors of ``n`` images of ``split`` ("id" or "ood"); see the module doc."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer number of images, got {n!r}")
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    colors = list(COLORS)
    subset = np.array(["id"] * n, dtype=object)
    if split == "ood":
        subset = np.array(OOD_KINDS, dtype=object)[np.arange(n) % len(OOD_KINDS)]
        rng.shuffle(subset)
    shape = rng.choice(SHAPES, n).astype(object)
    color = rng.choice(colors, n).astype(object)
    texture = rng.choice(TEXTURES, n).astype(object)
    for i in range(n):
        if subset[i] == "held_out_combo":  # only the withheld (shape, colour) pairs
            pairs = [(s, c) for s in SHAPES for c in colors if held_out(s, c)]
            shape[i], color[i] = pairs[rng.integers(len(pairs))]
        elif held_out(shape[i], color[i]):  # every other subset avoids them
            allowed = [c for c in colors if not held_out(shape[i], c)]
            color[i] = allowed[rng.integers(len(allowed))]
        if subset[i] == "novel_shape":
            shape[i] = NOVEL_SHAPES[rng.integers(len(NOVEL_SHAPES))]
        elif subset[i] == "novel_texture":
            texture[i] = NOVEL_TEXTURES[rng.integers(len(NOVEL_TEXTURES))]
    size = rng.choice(list(SIZES), n)
    row_i, col_i = rng.integers(3, size=n), rng.integers(3, size=n)
    radius = np.array([SIZES[s] for s in size]) * rng.uniform(0.9, 1.1, n)
    # centres: the middle of the 3x3 cell plus jitter, kept inside the image
    cx = np.clip((col_i + 0.5) / 3 + rng.uniform(-0.06, 0.06, n), radius, 1 - radius)
    cy = np.clip((row_i + 0.5) / 3 + rng.uniform(-0.06, 0.06, n), radius, 1 - radius)
    return pd.DataFrame(
        {
            "shape": shape.astype(str),
            "color": color.astype(str),
            "size": size,
            "row": np.array(ROWS)[row_i],
            "col": np.array(COLS)[col_i],
            "bg_color": rng.choice(list(BG_COLORS), n),
            "texture": texture.astype(str),
            "cx": cx,
            "cy": cy,
            "radius": radius,
            "angle": rng.uniform(-0.3, 0.3, n),  # small rotation in radians
            "phase": rng.uniform(0, 1, n),  # texture offset
            "subset": subset.astype(str),
        }
    )


def render(factors: pd.DataFrame, size: int = 64) -> torch.Tensor:
    """Render images ``[N, 3, size, size]`` in [0, 1] from a factor table (vectorised)."""
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels so shapes are recognisable, got {size}")
    n = len(factors)
    t = torch.linspace(0.5 / size, 1 - 0.5 / size, size)
    gy, gx = torch.meshgrid(t, t, indexing="ij")  # [H, W] in (0, 1)
    col = lambda name: torch.tensor(factors[name].to_numpy(dtype=np.float64), dtype=torch.float32)
    cx, cy, r, ang, phase = (col(k)[:, None, None] for k in ("cx", "cy", "radius", "angle",
                                                             "phase"))
    # coordinates relative to the centre, rotated by the shape's angle, in units of the radius
    dx, dy = (gx - cx), (gy - cy)
    u = (dx * torch.cos(ang) + dy * torch.sin(ang)) / r
    v = (-dx * torch.sin(ang) + dy * torch.cos(ang)) / r
    masks = {
        "circle": u**2 + v**2 <= 1,
        "square": (u.abs() <= 0.85) & (v.abs() <= 0.85),
        "triangle": (v <= 0.7) & (v >= -1 + 2 * u.abs() * 1.0) & (v >= -1),
        "diamond": u.abs() + v.abs() <= 1.1,
        "ring": ((u**2 + v**2) <= 1) & ((u**2 + v**2) >= 0.45**2),
        "cross": ((u.abs() <= 0.3) & (v.abs() <= 1)) | ((v.abs() <= 0.3) & (u.abs() <= 1)),
    }
    theta = torch.atan2(v, u)
    masks["star"] = torch.sqrt(u**2 + v**2) <= 0.55 + 0.45 * torch.cos(5 * theta).clamp(min=0) ** 2
    shape = factors["shape"].to_numpy()
    fg_mask = torch.zeros(n, size, size, dtype=torch.bool)
    for name, m in masks.items():
        idx = torch.from_numpy(shape == name)
        fg_mask[idx] = m[idx]
    # background texture: a [N, H, W] modulation in [0, 1]; 1 = background colour, lower = darker
    p = phase * 2 * math.pi
    patterns = {
        "plain": torch.ones(1, size, size).expand(n, -1, -1),
        "striped": (torch.sin(2 * math.pi * 6 * (gx + gy) + p) > 0).float(),
        "checkered": ((torch.floor(gx * 8 + phase) + torch.floor(gy * 8)) % 2).float(),
        "dotted": (((gx * 7 + phase) % 1 - 0.5) ** 2 + ((gy * 7) % 1 - 0.5) ** 2 > 0.06).float(),
        "wavy": (torch.sin(2 * math.pi * (5 * gy + 0.6 * torch.sin(2 * math.pi * 3 * gx)) + p)
                 > 0).float(),
    }
    tex = factors["texture"].to_numpy()
    mod = torch.ones(n, size, size)
    for name, pat in patterns.items():
        idx = torch.from_numpy(tex == name)
        mod[idx] = pat.expand(n, -1, -1)[idx]
    bg_rgb = torch.tensor([BG_COLORS[c] for c in factors["bg_color"]], dtype=torch.float32)
    fg_rgb = torch.tensor([COLORS[c] for c in factors["color"]], dtype=torch.float32)
    # textured pixels mix the background colour with its complement-ish shade for contrast
    shade = 0.55 * bg_rgb + 0.45 * (1 - bg_rgb)
    bg = bg_rgb[:, :, None, None] * mod[:, None] + shade[:, :, None, None] * (1 - mod[:, None])
    img = torch.where(fg_mask[:, None], fg_rgb[:, :, None, None], bg)
    return img.clamp(0, 1).contiguous()


def make_dataset(n: int, split: str = "id", seed: int = 0, size: int = 64) -> ShapesData:
    """Sample, render and caption ``n`` images of ``split`` ("id" or "ood").

    Args:
        n: number of images.
        split: "id" (training world) or "ood" (held-out combinations, novel shapes, novel
            textures).
        seed: random seed; the same (n, split, seed, size) always gives the same data.
        size: image side in pixels (at least 16).

    Returns:
        :class:`ShapesData` with ``images`` ``[n, 3, size, size]`` in [0, 1], ``factors`` and
        ``captions``.
    """
    factors = sample_factors(n, split, seed)
    images = render(factors, size)
    captions = [caption(r) for r in factors[list(FACTORS)].to_dict("records")]
    return ShapesData(images=images, factors=factors, captions=captions)
