"""Random images for probing alignment where there is nothing to agree on.

One seeded, vectorised generator for every noise family used by the random-images
chapter, at any resolution. Every generator returns a float tensor ``[N, 3, H, W]`` in
``[0, 1]`` and is deterministic given ``seed`` (a private ``torch.Generator``; the global
RNG is never touched).

Families (:data:`FAMILIES`):

* ``uniform``     i.i.d. uniform pixels (the source blog's random images),
* ``gaussian``    i.i.d. N(0.5, (40/255)^2) pixels clipped to [0, 1] (the blog's unused
  "normal" option, rescaled from uint8),
* ``spectral0`` / ``spectral1`` / ``spectral2``  Gaussian noise whose power spectrum falls
  as 1/f^alpha with alpha = 0, 1, 2 (natural images sit near 2), each channel independent,
  rescaled to [0, 1] per image,
* ``collage``     random ellipses and star-shaped polygons in random colours on a random
  background: structure (edges, flat regions, occlusion) without meaning.

:func:`blend` mixes real images towards noise, ``(1 - t) * images + t * noise``, and
:func:`spectral_slope` measures a stack's radially averaged power-spectrum slope (used by
the tests to check that ``spectral<alpha>`` really has slope ``-alpha``).

Example:
    >>> x = make_noise("spectral2", 4, size=32, seed=0)
    >>> tuple(x.shape), bool(x.min() >= 0), bool(x.max() <= 1)
    ((4, 3, 32, 32), True, True)
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

FAMILIES: tuple[str, ...] = ("uniform", "gaussian", "spectral0", "spectral1", "spectral2",
                             "collage")
"""Every noise family :func:`make_noise` knows, in the order the chapter plots them."""

GAUSSIAN_STD = 40.0 / 255.0
"""Pixel std of the ``gaussian`` family (the fork notebook's N(127.5, 40) on uint8)."""


def _size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        h = w = size
    else:
        if len(size) != 2:
            raise ValueError(f"size must be an int or (height, width), got {size!r}; "
                             "pass e.g. size=64 or size=(224, 224)")
        h, w = (int(s) for s in size)
    if h < 4 or w < 4:
        raise ValueError(f"size must be at least 4x4 pixels, got {h}x{w}; pass a larger size")
    return h, w


def _check_n(n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (number of images), got {n!r}")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def uniform_noise(n: int, size: int | Sequence[int] = 64, seed: int = 0) -> torch.Tensor:
    """I.i.d. uniform pixels in [0, 1]. Returns ``[n, 3, H, W]`` float32."""
    _check_n(n)
    h, w = _size_hw(size)
    return torch.rand(n, 3, h, w, generator=_gen(seed))


def gaussian_noise(n: int, size: int | Sequence[int] = 64, seed: int = 0,
                   std: float = GAUSSIAN_STD) -> torch.Tensor:
    """I.i.d. N(0.5, std^2) pixels, clipped to [0, 1]. Returns ``[n, 3, H, W]`` float32."""
    _check_n(n)
    h, w = _size_hw(size)
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    return (0.5 + std * torch.randn(n, 3, h, w, generator=_gen(seed))).clamp_(0.0, 1.0)


def _radial_frequency(h: int, w: int) -> torch.Tensor:
    """|f| in cycles per pixel on the ``fft2`` grid, ``[H, W]``."""
    fy = torch.fft.fftfreq(h).abs()[:, None]
    fx = torch.fft.fftfreq(w).abs()[None, :]
    return torch.sqrt(fy**2 + fx**2)


def _rescale_per_image(x: torch.Tensor) -> torch.Tensor:
    """Min-max rescale each image (over channels and pixels) to [0, 1]."""
    flat = x.reshape(x.shape[0], -1)
    lo = flat.min(dim=1).values[:, None, None, None]
    hi = flat.max(dim=1).values[:, None, None, None]
    return ((x - lo) / (hi - lo).clamp_min(1e-12)).clamp_(0.0, 1.0)


def spectral_noise(n: int, alpha: float, size: int | Sequence[int] = 64,
                   seed: int = 0) -> torch.Tensor:
    """Gaussian noise with power spectrum ~ 1/f^alpha, rescaled to [0, 1] per image.

    White Gaussian noise is shaped in the Fourier domain by the amplitude filter
    ``f^(-alpha/2)`` (power is amplitude squared); the DC term is zeroed, and the image is
    min-max rescaled, which is affine and so keeps the slope. Each channel is independent.

    Args:
        n: number of images.
        alpha: spectral exponent, ``>= 0`` (0 white, 1 pink, 2 "natural", brown-ish).
        size: ``H`` (square) or ``(H, W)``.
        seed: RNG seed.

    Returns:
        ``[n, 3, H, W]`` float32 in [0, 1].
    """
    _check_n(n)
    h, w = _size_hw(size)
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}; use e.g. 0, 1 or 2")
    white = torch.randn(n, 3, h, w, generator=_gen(seed), dtype=torch.float64)
    f = _radial_frequency(h, w).to(torch.float64)
    amp = torch.zeros_like(f)
    amp[f > 0] = f[f > 0] ** (-alpha / 2.0)
    # the filter is symmetric in f, so the inverse transform of a real signal stays real
    shaped = torch.fft.ifft2(torch.fft.fft2(white) * amp).real
    return _rescale_per_image(shaped).float()


def shape_collage(
    n: int,
    size: int | Sequence[int] = 64,
    seed: int = 0,
    n_shapes: int = 8,
    max_vertices: int = 7,
) -> torch.Tensor:
    """Random ellipses and star-shaped polygons in random colours over a random background.

    Each image gets ``n_shapes`` shapes painted in order (later ones occlude earlier ones);
    each shape is an ellipse or a polygon with a random number of vertices (3 to
    ``max_vertices``) at sorted random angles around a random centre. Vectorised over
    images: the loop runs over the ``n_shapes`` layers only.

    Returns:
        ``[n, 3, H, W]`` float32 in [0, 1].
    """
    _check_n(n)
    h, w = _size_hw(size)
    if n_shapes < 1:
        raise ValueError(f"n_shapes must be >= 1, got {n_shapes}")
    if max_vertices < 3:
        raise ValueError(f"max_vertices must be >= 3 (a triangle), got {max_vertices}")
    g = _gen(seed)
    # pixel centres in [0, 1] coordinates (x along width, y along height)
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    py, px = ys[None, :, None], xs[None, None, :]  # [1, H, 1], [1, 1, W]
    img = torch.rand(n, 3, 1, 1, generator=g).expand(n, 3, h, w).clone()
    for _ in range(n_shapes):
        colour = torch.rand(n, 3, 1, 1, generator=g)
        cy, cx = (torch.rand(2, n, 1, 1, generator=g) * 0.8 + 0.1).unbind(0)
        radius = 0.08 + 0.27 * torch.rand(n, 1, 1, generator=g)  # fraction of the image side
        dy, dx = py - cy, px - cx  # [n, H, W]
        is_ellipse = torch.rand(n, 1, 1, generator=g) < 0.5
        # ellipse: random axis ratio and rotation
        theta = torch.rand(n, 1, 1, generator=g) * math.pi
        ratio = 0.35 + 0.65 * torch.rand(n, 1, 1, generator=g)
        u = dx * torch.cos(theta) + dy * torch.sin(theta)
        v = -dx * torch.sin(theta) + dy * torch.cos(theta)
        inside_ellipse = (u / radius) ** 2 + (v / (radius * ratio)) ** 2 <= 1.0
        # polygon: vertices at sorted random angles and radii; pixel is inside the triangle
        # (centre, v_i, v_{i+1}) of the angular sector it falls in (exact for star shapes)
        n_vert = torch.randint(3, max_vertices + 1, (n,), generator=g)
        slot = torch.arange(max_vertices)[None, :]
        used = slot < n_vert[:, None]  # [n, V]
        raw = torch.rand(n, max_vertices, generator=g) * 2 * math.pi
        # unused slots sort to the end (inf) so the first n_vert sorted angles are the vertices
        unused_last = torch.where(used, raw, torch.full_like(raw, float("inf")))
        angles = torch.sort(unused_last, dim=1).values
        radii = radius.view(n, 1) * (0.5 + 0.5 * torch.rand(n, max_vertices, generator=g))
        phi = torch.atan2(dy, dx).remainder(2 * math.pi)  # [n, H, W]
        # sector index: last vertex with angle <= phi; below the first vertex wraps to the last
        k = (phi[..., None] >= angles[:, None, None, :]).sum(-1) - 1  # [n, H, W]
        k = torch.where(k < 0, (n_vert - 1).view(n, 1, 1).expand_as(k), k)
        k_next = (k + 1) % n_vert.view(n, 1, 1)
        finite = torch.where(used, angles, torch.zeros_like(angles))
        vx, vy = radii * torch.cos(finite), radii * torch.sin(finite)
        flat = lambda t, idx: (  # noqa: E731
            torch.gather(t, 1, idx.reshape(n, -1)).reshape(idx.shape))
        ax, ay = flat(vx, k), flat(vy, k)
        bx, by = flat(vx, k_next), flat(vy, k_next)
        # same side of edge (a -> b) as the centre (origin): cross products share a sign
        cross_p = (bx - ax) * (dy - ay) - (by - ay) * (dx - ax)
        cross_c = (bx - ax) * (0 - ay) - (by - ay) * (0 - ax)
        inside_poly = cross_p * cross_c >= 0
        mask = torch.where(is_ellipse, inside_ellipse, inside_poly)[:, None]  # [n, 1, H, W]
        img = torch.where(mask, colour, img)
    return img.contiguous()


def make_noise(family: str, n: int, size: int | Sequence[int] = 64, seed: int = 0) -> torch.Tensor:
    """Images of one noise family by name (see :data:`FAMILIES`).

    Returns ``[n, 3, H, W]`` in [0, 1]."""
    if family == "uniform":
        return uniform_noise(n, size, seed)
    if family == "gaussian":
        return gaussian_noise(n, size, seed)
    if family.startswith("spectral"):
        try:
            alpha = float(family[len("spectral"):])
        except ValueError:
            alpha = float("nan")
        if not math.isfinite(alpha):
            raise ValueError(f"unknown noise family {family!r}; spectral families are named "
                             "like 'spectral2' (alpha = 2)")
        return spectral_noise(n, alpha, size, seed)
    if family == "collage":
        return shape_collage(n, size, seed)
    raise ValueError(f"unknown noise family {family!r}; choose one of {FAMILIES}")


def blend(images: torch.Tensor, noise: torch.Tensor, t: float) -> torch.Tensor:
    """``(1 - t) * images + t * noise``: t = 0 gives the images, t = 1 the noise.

    Args:
        images: ``[N, 3, H, W]`` in [0, 1].
        noise: same shape as ``images``.
        t: mixing level in [0, 1].

    Returns:
        ``[N, 3, H, W]`` in [0, 1] (a convex combination of two [0, 1] images).
    """
    if images.shape != noise.shape:
        raise ValueError(
            f"images and noise must have the same shape, got {tuple(images.shape)} and "
            f"{tuple(noise.shape)}; "
            "generate the noise with the images' n and size"
        )
    if not 0.0 <= float(t) <= 1.0:
        raise ValueError(f"t must be in [0, 1] (0 = images, 1 = noise), got {t}")
    t = float(t)
    return (1.0 - t) * images + t * noise


def radial_power_spectrum(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged power spectrum of a stack, averaged over images and channels.

    Args:
        images: ``[N, C, H, W]``.

    Returns:
        ``(freqs, power)``: 1-d tensors over integer radius bins ``1 .. min(H, W) // 2``;
        ``freqs`` in cycles per pixel.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    _, _, h, w = images.shape
    x = images.double() - images.double().mean(dim=(-2, -1), keepdim=True)
    power = (torch.fft.fft2(x).abs() ** 2).mean(dim=(0, 1))  # [H, W]
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None] * h
    fx = torch.fft.fftfreq(w, dtype=torch.float64)[None, :] * w
    # radius in units of the coarser axis' frequency step, so bins are isotropic for square images
    r = torch.sqrt((fy / h) ** 2 + (fx / w) ** 2) * min(h, w)
    bins = torch.round(r).long()
    n_bins = min(h, w) // 2
    sums = torch.zeros(bins.max() + 1, dtype=torch.float64).index_add_(0, bins.flatten(),
                                                                       power.flatten())
    counts = torch.zeros_like(sums).index_add_(0, bins.flatten(), torch.ones_like(power.flatten()))
    radii = torch.arange(1, n_bins + 1)
    return radii.double() / min(h, w), sums[radii] / counts[radii]


def spectral_slope(images: torch.Tensor, f_min: float = 2 / 64, f_max: float = 0.25) -> float:
    """Least-squares slope of log power vs log frequency over ``[f_min, f_max]`` cycles/pixel.

    For ``spectral_noise(alpha=a)`` this is about ``-a``; white noise gives about 0.
    """
    freqs, power = radial_power_spectrum(images)
    keep = (freqs >= f_min) & (freqs <= f_max)
    if keep.sum() < 3:
        raise ValueError(f"fewer than 3 frequency bins in [{f_min}, {f_max}]; use larger images "
                         "or a wider range")
    lx, ly = freqs[keep].log(), power[keep].log()
    lx = lx - lx.mean()
    return float((lx * (ly - ly.mean())).sum() / (lx**2).sum())


def model_input_size(model: torch.nn.Module) -> tuple[int, int]:
    """The ``(H, W)`` a timm model expects, from its pretrained config (for full-scale noise)."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    size = cfg.get("input_size")
    if size is None:
        raise ValueError(
            f"{type(model).__name__} has no pretrained_cfg['input_size']; "
            "pass the noise size explicitly"
        )
    return int(size[-2]), int(size[-1])


# --------------------------------------------------------------------------------------
# Where alignment meets chance: pooled permutation tests and the frontier along a sweep
# --------------------------------------------------------------------------------------


def pooled_null(observed: torch.Tensor, null: torch.Tensor) -> dict[str, float]:
    """Permutation test for the *mean* score over several model pairs.

    Each pair ``p`` has an observed score and ``n_perm`` scores under shuffled pairings
    (e.g. ``helpers.alignment.permutation_null(...).null``). The null of the mean over pairs
    is the mean of the index-aligned null draws (valid when every pair's ``k``-th draw uses
    the same or independent shuffles), so one pooled p-value says whether the pairs, on
    average, align above chance.

    Args:
        observed: ``[P]`` observed scores.
        null: ``[P, n_perm]`` null scores.

    Returns:
        dict with ``observed`` (mean over pairs), ``null_mean``, ``null_std`` (of the pooled
        null), ``p_value`` = (1 + #{null >= observed}) / (1 + n_perm) and ``corrected`` =
        (observed - null_mean) / (1 - null_mean) (0 at chance, 1 at a perfect score of 1).
    """
    observed = torch.as_tensor(observed, dtype=torch.float64).flatten()
    null = torch.as_tensor(null, dtype=torch.float64)
    if null.ndim != 2 or null.shape[0] != observed.numel() or observed.numel() == 0:
        raise ValueError(
            f"null must be [P, n_perm] with P = len(observed) >= 1, got observed "
            f"{tuple(observed.shape)} "
            f"and null {tuple(null.shape)}; stack one NullResult.null per pair"
        )
    obs = observed.mean()
    pooled = null.mean(dim=0)
    mu = pooled.mean()
    return {
        "observed": float(obs),
        "null_mean": float(mu),
        "null_std": float(pooled.std()) if pooled.numel() > 1 else 0.0,
        "p_value": (1.0 + float((pooled >= obs).sum())) / (1.0 + pooled.numel()),
        "corrected": float((obs - mu) / (1 - mu)) if float(mu) != 1.0 else 0.0,
    }


def pool_pairs(rows: "pd.DataFrame", alpha: float = 0.05) -> "pd.Series":
    """Pool one group's pair rows (from :func:`helpers.prh.metric_agreement.pair_rows`).

    Args:
        rows: one row per pair with ``observed``, ``null`` (the pair's ``[n_perm]`` draws, the
            same shuffles for every pair) and ``p_value``.
        alpha: level for the share of pairs that pass on their own.

    Returns:
        ``pairs``, ``mean observed``, ``mean null``, ``pooled p`` (:func:`pooled_null`),
        ``mean corrected`` and ``pairs with p <= alpha``.
    """
    import pandas as pd

    missing = {"observed", "null", "p_value"} - set(rows.columns)
    if missing:
        raise ValueError(f"rows lack columns {sorted(missing)}; pass pair_rows(...) output")
    p = pooled_null(torch.tensor(rows.observed.values), torch.stack(list(rows.null)))
    return pd.Series({"pairs": len(rows), "mean observed": p["observed"],
                      "mean null": p["null_mean"], "pooled p": p["p_value"],
                      "mean corrected": p["corrected"],
                      "pairs with p <= alpha": float((rows.p_value <= alpha).mean())})


def null_frontiers(curve: "pd.DataFrame", alpha: float,
                   by: Sequence[str] = ("metric", "group", "seed"),
                   p_column: str = "pooled p") -> "pd.DataFrame":
    """The **null frontier** of every sweep: the first ``t`` whose p-value exceeds ``alpha``.

    Args:
        curve: one row per (``by`` ..., ``t``) with a p-value column.
        alpha: the threshold (use ``alpha / levels`` to correct for scanning every level).
        by: columns naming one sweep.
        p_column: the p-value column.

    Returns:
        One row per sweep: the ``by`` columns and ``t*`` (NaN: distinguishable up to t = 1).
    """
    import pandas as pd

    rows = []
    for keys, c in curve.groupby(list(by), sort=False):
        c = c.sort_values("t")
        rows.append({**dict(zip(by, keys)), "t*": first_level_where(c.t, c[p_column] > alpha)})
    return pd.DataFrame(rows)


def group_contrast(table: "pd.DataFrame", by: Sequence[str], group: str, control: str,
                   value: str = "corrected") -> "pd.DataFrame":
    """Per ``by`` cell: mean ``value`` of ``group`` and of ``control`` and Welch's one-sided test.

    Returns:
        Indexed by ``by``: ``<group> mean``, ``<control> mean``, ``difference`` and
        ``Welch p (<group> > <control>)`` (NaN where either side has fewer than 2 rows).
    """
    import pandas as pd
    from scipy import stats

    rows = []
    for keys, cell in table.groupby(list(by), sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        a = cell[cell.group == group][value]
        b = cell[cell.group == control][value]
        p = (stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue
             if len(a) > 1 and len(b) > 1 else float("nan"))
        rows.append({**dict(zip(by, keys)), f"{group} mean": a.mean(), f"{control} mean": b.mean(),
                     "difference": a.mean() - b.mean(), f"Welch p ({group} > {control})": p})
    return pd.DataFrame(rows).set_index(list(by))


def first_level_where(levels: Sequence[float], condition: Sequence[bool]) -> float:
    """The first level (in increasing order) at which ``condition`` holds, else ``nan``.

    Used for the blend frontier: ``condition`` = "p-value > 0.05" (alignment no longer
    distinguishable from the permutation null) along increasing noise levels ``t``.
    """
    levels = [float(v) for v in levels]
    condition = [bool(c) for c in condition]
    if len(levels) != len(condition) or not levels:
        raise ValueError("levels and condition must be non-empty and of equal length, got "
                         f"{len(levels)} and {len(condition)}")
    if any(b < a for a, b in zip(levels, levels[1:])):
        raise ValueError("levels must be sorted in increasing order")
    for level, holds in zip(levels, condition):
        if holds:
            return level
    return float("nan")


# --------------------------------------------------------------------------------------
# Full scale: noise at a pretrained model's own resolution, real images from a folder
# --------------------------------------------------------------------------------------


def noise_for_model(model: torch.nn.Module, family: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images of ``family`` at ``model``'s own input resolution, ``[n, 3, H, W]`` in
    [0, 1]."""
    return make_noise(family, n, size=model_input_size(model), seed=seed)


def images_from_folder(folder, n: int, size: int | Sequence[int], seed: int = 0) -> torch.Tensor:
    """``n`` images drawn (seeded, without replacement) from an image folder, resized and centre
    cropped to ``size``. Returns ``[n, 3, H, W]`` in [0, 1].

    The folder is searched recursively for ``.png``, ``.jpg``, ``.jpeg`` and ``.webp`` files
    (e.g. an ImageNet-O or WIT export), so the full-scale blends run without a hub.
    """
    from pathlib import Path

    from PIL import Image
    from torchvision.transforms import functional as TF

    _check_n(n)
    h, w = _size_hw(size)
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} does not exist; "
                         "pass a folder of .png/.jpg images")
    suffixes = (".png", ".jpg", ".jpeg", ".webp")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes)
    if len(files) < n:
        raise ValueError(f"image folder {str(root)!r} holds {len(files)} images, "
                         f"fewer than n={n}; lower n")
    pick = torch.randperm(len(files), generator=_gen(seed))[:n].tolist()
    out = []
    for i in pick:
        with Image.open(files[i]) as im:
            x = TF.to_tensor(im.convert("RGB"))
        x = TF.resize(x, min(h, w), antialias=True)
        out.append(TF.center_crop(x, [h, w]))
    return torch.stack(out).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------
# The chapter's evaluation sets: in-distribution images, noise, and blends between them
# --------------------------------------------------------------------------------------


def evaluation_images(kind: str, n: int, size: int, seed: int, *, source="shapes",
                      data_seed: int = 7, blend_family: str = "uniform", t: float | None = None,
                      ) -> tuple[torch.Tensor, list[str] | None, dict]:
    """One evaluation set of the random-images chapter: images, captions (or None), cache key.

    Args:
        kind: ``"id"`` (in-distribution images, blended towards noise when ``t`` is given) or a
            noise family of :data:`FAMILIES`.
        n, size: number of images and side in pixels.
        seed: draw index; images use ``data_seed + seed`` and noise ``1000 + seed``.
        source: ``"shapes"`` (the shapes world, with captions), a folder of real images, or a
            function ``(n, size, seed) -> [n, 3, size, size]`` (its ``__name__`` names it in keys).
        data_seed: first seed of the in-distribution images.
        blend_family: the noise a blend mixes towards.
        t: blend level in [0, 1] (``kind="id"`` only).

    Returns:
        ``(images [n, 3, size, size], captions or None, key)``; ``key`` names the set for caches
        (a blend at t = 0 or t = 1 is exactly the image set or the noise set, and gets its key).
    """
    if kind != "id":
        if t is not None:
            raise ValueError(f"t is only for kind='id' (blends), got kind={kind!r} and t={t}")
        return make_noise(kind, n, size=size, seed=1000 + seed), None, {"kind": kind, "seed": seed}
    if callable(source):  # e.g. natural photo crops: (n, size, seed) -> images
        imgs, caps = source(n, size, data_seed + seed), None
        source = getattr(source, "__name__", "images")
    elif source == "shapes":
        from helpers.prh.shapes_world import make_dataset

        d = make_dataset(n, split="id", seed=data_seed + seed, size=size)
        imgs, caps = d.images, d.captions
    else:
        imgs, caps = images_from_folder(source, n, size, seed=data_seed + seed), None
    if t is None or float(t) == 0.0:  # t = 0 is exactly the images: share their cache entries
        return imgs, caps, {"kind": "id", "seed": seed, "source": source}
    noise = make_noise(blend_family, n, size=size, seed=1000 + seed)
    if float(t) == 1.0:  # exactly the noise family's set (same seed)
        return noise, caps, {"kind": blend_family, "seed": seed}
    key = {"kind": "blend", "noise": blend_family, "seed": seed, "t": round(float(t), 4),
           "source": source}
    return blend(imgs, noise, float(t)), caps, key
