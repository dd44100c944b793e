"""Data where the truth about alignment is known: two views of one latent variable.

The primer chapter calibrates the alignment metrics here before the research chapters use them
on real models. A latent ``z`` is drawn once; each view passes it through its own random
nonlinear map (different widths and nonlinearities, so no linear map relates the two views)
and adds isotropic noise whose standard deviation is ``noise`` times the clean signal's.
At ``noise = 0`` both views are exact functions of ``z``; as ``noise`` grows, what they share
drowns, and any metric should fall to its chance level.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TwoViews:
    """Two views of one latent: ``x [N, Dx]``, ``y [N, Dy]`` and the latent ``z [N,
    latent_dim]``."""

    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor


def _random_map(z: torch.Tensor, width: int, activation,
                generator: torch.Generator) -> torch.Tensor:
    """A two-layer random network: ``activation(z W1 + b1) W2``, scaled to unit variance per
    dim."""
    hidden = 4 * width
    w1 = torch.randn(z.shape[1], hidden, generator=generator) * 1.5 / z.shape[1] ** 0.5
    b1 = torch.randn(hidden, generator=generator) * 0.5
    w2 = torch.randn(hidden, width, generator=generator) / hidden**0.5
    out = activation(z @ w1 + b1) @ w2
    return (out - out.mean(0)) / out.std(0).clamp_min(1e-8)


def make_two_views(
    n: int,
    noise: float = 0.0,
    seed: int = 0,
    latent_dim: int = 3,
    widths: tuple[int, int] = (64, 48),
) -> TwoViews:
    """Draw ``n`` samples of a latent and two noisy nonlinear views of it.

    Args:
        n: number of samples ``N``.
        noise: noise standard deviation relative to the clean signal's (0 = no noise).
        seed: seeds the latent, both maps and the noise.
        latent_dim: dimension of the shared latent ``z``.
        widths: feature widths ``(Dx, Dy)`` of the two views.

    Returns:
        :class:`TwoViews` with ``x [N, Dx]``, ``y [N, Dy]``, ``z [N, latent_dim]`` (float32).

    Raises:
        ValueError: if ``n < 2``, ``noise < 0`` or a width or ``latent_dim`` is not positive.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if latent_dim < 1 or min(widths) < 1:
        raise ValueError(f"latent_dim and widths must be positive, got {latent_dim} and {widths}")
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, latent_dim, generator=generator)
    x = _random_map(z, widths[0], torch.tanh, generator)
    y = _random_map(z, widths[1], torch.relu, generator)
    x = x + noise * torch.randn(x.shape, generator=generator)
    y = y + noise * torch.randn(y.shape, generator=generator)
    return TwoViews(x=x, y=y, z=z)


def make_noise_layers(n: int, n_layers: int, width: int, seed: int = 0) -> torch.Tensor:
    """``n_layers`` layers of pure Gaussian noise, ``[N, L, width]``: a model that knows nothing.

    Used to show how taking the best of many layer pairs inflates a raw alignment score.
    """
    if n < 2 or n_layers < 1 or width < 1:
        raise ValueError(f"need n >= 2, n_layers >= 1, width >= 1; got {n}, {n_layers}, {width}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, n_layers, width, generator=generator)
