"""The book's one figure style.

Call :func:`use_style` once in a chapter's imports cell. Figures get their caption and name
from the cell's ``mystnb`` metadata (``# %% mystnb={"figure": {"caption": "...", "name":
"fig-x"}}``), so the HTML numbers them and ``{numref}`` can cite them; inside the figure, axes
carry words with units. End a plotting cell with :func:`show` so each figure is drawn exactly once.
"""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
"""Okabe-Ito colours: distinguishable under the common colour-vision deficiencies."""

NULL_COLOR = "#888888"
"""Grey for chance levels, permutation nulls and other controls, in every chapter."""


def use_style() -> None:
    """Apply the house style to matplotlib (and seaborn if it is imported later)."""
    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "figure.figsize": (6.4, 4.0),
            "figure.constrained_layout.use": True,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "legend.fontsize": 8,
            "legend.frameon": False,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "axes.prop_cycle": mpl.cycler(color=PALETTE),
            "image.cmap": "viridis",
            "animation.html": "jshtml",
            "animation.embed_limit": 40.0,
        }
    )


def show(fig: plt.Figure, title: str | None = None) -> None:
    """Set an optional suptitle, display the figure once, and close it (no duplicate outputs)."""
    if title:
        fig.suptitle(title)
    plt.show()
    plt.close(fig)
