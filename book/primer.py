# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Primer: measuring alignment
#
# **The question.** When we say two representations "agree", what number do we compute, and how do
# we know that number is not just chance?
#
# **The answer, in one paragraph.** On two noisy views of one latent variable, every metric in
# `helpers.alignment` scores identical representations at 1 and falls as noise drowns the shared
# signal; mutual k-nearest-neighbour alignment (the PRH's headline metric) starts at
# {glue:text}`primer_mknn_clean:.2f` without noise and, for independent data, sits at its chance
# level $k/(N-1)$ = {glue:text}`primer_chance:.3f` (measured under a permutation null:
# {glue:text}`primer_null_mean:.3f`). Raw scores depend on $k$ and $N$, and taking the best of many
# layer pairs inflates them: with {glue:text}`primer_max_layers` noise layers per side, the best
# raw mutual-kNN score of two models that know nothing is {glue:text}`primer_inflated:.3f`, while
# the chance-corrected score of that best pair is {glue:text}`primer_inflated_corrected:.3f`. Every
# later chapter therefore reports alignment against a permutation null.

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from myst_nb import glue

from helpers import alignment, interactive
from helpers.plotting import NULL_COLOR, PALETTE, show, use_style
from helpers.toy_views import make_noise_layers, make_two_views

use_style()
torch.set_num_threads(1)  # small kernels: one thread avoids barrier waits on a busy 2-core machine
chapter_start = time.perf_counter()

# %% tags=["parameters"]
# Other values: edit them here, then run all cells; or in a shell
#   python -m helpers.run primer -p topk 25 -p n_samples 1000
scale: str = "book"  # smoke | book | full (set by helpers.run)
n_samples: int = 500  # N, samples per view
topk: int = 10  # k, neighbours for the kNN metrics
noise_levels: list = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]  # noise std relative to the signal's
n_seeds: int = 5  # independent draws of latent, maps and noise, for spreads
n_perm: int = 500  # permutations in each null distribution
ks: list = [1, 5, 10, 25, 50, 100]  # k values for the sensitivity sweep
sample_sizes: list = [100, 250, 500, 1000]  # N values for the sensitivity sweep
layer_counts: list = [1, 2, 4, 8, 16]  # layers per side for the layer-pair-max experiment

# %% [markdown]
# ## The world: two views of one latent
#
# A latent $z \in \mathbb{R}^3$ is drawn for each of $N$ samples. View $x$ passes $z$ through a
# random two-layer network with $\tanh$ units (64 output dimensions); view $y$ uses a different
# random network with ReLU units (48 dimensions). Each view then gets isotropic Gaussian noise
# whose standard deviation is `noise` times the clean signal's. No linear map relates the two
# views, but both are functions of the same $z$, so their *neighbourhood structure* is shared when
# noise is low.
#
# Features are prepared the way the PRH reference prepares them {cite:p}`huh2024platonic`: clamp
# $|x|$ at the 0.95 quantile, then L2-normalise each sample (`alignment.prepare`).

# %% tags=["hide-input"]
views = make_two_views(n_samples, noise=0.0, seed=0)
x, y = alignment.prepare(views.x), alignment.prepare(views.y)
print(f"x: {tuple(views.x.shape)}, y: {tuple(views.y.shape)}, latent: {tuple(views.z.shape)}")

# %% [markdown]
# ## What each metric measures
#
# - **mutual kNN** (`mutual_knn`): for each sample, the fraction of its $k$ nearest neighbours in
#   $x$ that are also among its $k$ nearest neighbours in $y$, averaged over samples. Neighbours
#   use the inner product of the normalised features (cosine), and a sample is never its own
#   neighbour.
# - **cycle kNN** (`cycle_knn`): whether going to a neighbour in $y$ and back through $x$'s
#   neighbourhoods returns to the start; asymmetric.
# - **LCS kNN / edit-distance kNN**: how similar the *ordered* neighbour lists are (longest common
#   subsequence, or one minus the normalised edit distance); both divided by $k$ here, so they lie
#   in $[0, 1]$.
# - **CKA** {cite:p}`kornblith2019similarity` (`cka`): the normalised Hilbert-Schmidt independence
#   criterion between the two linear kernels $XX^\top$ and $YY^\top$; `unbiased_cka` uses the
#   unbiased HSIC estimator {cite:p}`song2012feature`, whose expectation is 0 for independent data.
# - **CKNNA** (`cknna`): CKA restricted to pairs that are mutual neighbours in both spaces; it
#   interpolates between mutual kNN (small $k$) and unbiased CKA ($k \ge N-1$).
# - **SVCCA** {cite:p}`raghu2017svcca` (`svcca`): the mean canonical correlation between the top
#   singular directions of the two views (seeded, so deterministic).
#
# First, a planted check: every metric on a representation against itself, and against an
# independent representation (the views of a *different* latent draw).

# %% tags=["hide-input"]
independent = make_two_views(n_samples, noise=0.0, seed=1)
x_other = alignment.prepare(independent.y)
rows = []
for metric in alignment.METRICS:
    rows.append(
        {
            "metric": metric,
            "identical (x vs x)": alignment.score(x, x, metric=metric, topk=topk),
            "same latent (x vs y)": alignment.score(x, y, metric=metric, topk=topk),
            "independent latents": alignment.score(x, x_other, metric=metric, topk=topk),
        }
    )
planted = pd.DataFrame(rows).set_index("metric")
glue("primer_mknn_clean", float(planted.loc["mutual_knn", "same latent (x vs y)"]), display=False)
planted.round(3)

# %% [markdown]
# Identical representations score 1 on every metric. Two views of the same latent score well above
# the independent pair, and the independent pair sits near each metric's chance level, which is
# *not* zero for most of them: that is the subject of the next section.
#
# ## Alignment as noise drowns the shared signal
#
# We now raise the noise on both views and score every metric, over several independent draws of
# latent, maps and noise.

# %% tags=["hide-input"]
records = []
for seed in range(n_seeds):
    for noise in noise_levels:
        pair = make_two_views(n_samples, noise=noise, seed=seed)
        xs, ys = alignment.prepare(pair.x), alignment.prepare(pair.y)
        for metric in alignment.METRICS:
            records.append({"seed": seed, "noise": noise, "metric": metric,
                            "score": alignment.score(xs, ys, metric=metric, topk=topk)})
by_noise = pd.DataFrame(records)
summary = by_noise.groupby(["metric", "noise"])["score"].agg(["mean", "std"]).reset_index()

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Every alignment metric against the noise level on both views (mean and one standard deviation over independent draws of latent, maps and noise). The grey dashed line is mutual kNN's chance level k/(N-1).", "name": "fig-primer-noise"}}
fig, ax = plt.subplots(figsize=(7, 4.2))
for color, (metric, group) in zip(PALETTE, summary.groupby("metric")):
    ax.errorbar(group["noise"], group["mean"], yerr=group["std"], label=metric, color=color,
                marker="o", ms=3, capsize=2)
ax.axhline(topk / (n_samples - 1), color=NULL_COLOR, ls="--", label=f"mutual kNN chance k/(N-1)")
ax.set_xscale("symlog", linthresh=0.25)
ax.set_xlim(0, max(noise_levels) * 1.1)
ax.set_xlabel("noise standard deviation / signal standard deviation")
ax.set_ylabel("alignment score")
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
show(fig)

# %% [markdown]
# All metrics fall with noise, but they fall to different floors, at different rates, and on
# different scales: a raw value of 0.3 means near-perfect agreement for mutual kNN at this $k$ and
# almost nothing for SVCCA. Raw scores from different metrics are not comparable.
#
# ## Chance level and the permutation null
#
# For mutual kNN, if the two neighbourhoods are unrelated, each of the $k$ neighbours in $y$ falls
# among the $k$ neighbours in $x$ with probability $k/(N-1)$. Rather than trust a formula per
# metric, `alignment.permutation_null` measures chance directly: it shuffles which $y$ sample is
# paired with which $x$ sample, recomputes the metric, and repeats. The observed score's p-value is
# the fraction of shuffles that score at least as high, and the chance-corrected score
# $(s - \bar s_{\text{null}}) / (1 - \bar s_{\text{null}})$ is 0 at chance and 1 at perfect
# agreement.

# %% tags=["hide-input"]
noisy = make_two_views(n_samples, noise=2.0, seed=0)
xn, yn = alignment.prepare(noisy.x), alignment.prepare(noisy.y)
null_independent = alignment.permutation_null(x, x_other, metric="mutual_knn", topk=topk,
                                              n_perm=n_perm, seed=0)
null_noisy = alignment.permutation_null(xn, yn, metric="mutual_knn", topk=topk, n_perm=n_perm,
                                        seed=0)
glue("primer_chance", topk / (n_samples - 1), display=False)
glue("primer_null_mean", float(null_independent.null_mean), display=False)
pd.DataFrame(
    {
        "independent latents": [null_independent.observed, null_independent.null_mean,
                                null_independent.null_std, null_independent.p_value,
                                null_independent.corrected],
        "same latent, noise 2": [null_noisy.observed, null_noisy.null_mean, null_noisy.null_std,
                                 null_noisy.p_value, null_noisy.corrected],
    },
    index=["observed", "null mean", "null std", "p-value", "chance-corrected"],
).round(4)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Permutation nulls of mutual kNN (histograms of scores under shuffled pairings) with the observed scores (vertical lines). Left: views of independent latents, whose observed score falls inside the null. Right: views of one latent under heavy noise, whose observed score is small in absolute terms but far outside the null.", "name": "fig-primer-null"}}
fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
for ax, result, title in zip(axes, [null_independent, null_noisy],
                             ["independent latents", "same latent, noise 2"]):
    ax.hist(result.null.numpy(), bins=25, color=NULL_COLOR, alpha=0.7,
            label="null (shuffled pairing)")
    ax.axvline(result.observed, color=PALETTE[1], lw=2, label="observed")
    ax.axvline(topk / (n_samples - 1), color="black", ls=":", label="k/(N-1)")
    ax.set_title(f"{title}: p = {result.p_value:.3f}")
    ax.set_xlabel("mutual kNN score")
axes[0].set_ylabel("permutations")
axes[0].legend()
show(fig)

# %% [markdown]
# The null is centred on $k/(N-1)$, as the formula says, and it is narrow: a noisy pair scoring
# only a few hundredths above chance can still be far outside it. Absolute values say little
# without the null.
#
# ## Sensitivity to k and N
#
# Raw mutual kNN depends on both $k$ and $N$, because its chance level $k/(N-1)$ does. We score one
# moderately noisy pair of views at several $k$ and $N$, raw and chance-corrected.

# %% tags=["hide-input"]
rows = []
for n in sample_sizes:
    pair = make_two_views(n, noise=1.0, seed=0)
    xs, ys = alignment.prepare(pair.x), alignment.prepare(pair.y)
    for k in ks:
        if k >= n - 1:
            continue
        result = alignment.permutation_null(xs, ys, metric="mutual_knn", topk=k,
                                            n_perm=max(20, n_perm // 4), seed=0)
        rows.append({"N": n, "k": k, "raw": result.observed, "corrected": result.corrected,
                     "chance": k / (n - 1)})
sensitivity = pd.DataFrame(rows)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Mutual kNN between two views of one latent (noise 1) as a function of k, for several sample sizes N. Left: raw scores, which rise with k partly because chance k/(N-1) rises (dashed). Right: chance-corrected scores.", "name": "fig-primer-k-n"}}
fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
for color, (n, group) in zip(PALETTE, sensitivity.groupby("N")):
    axes[0].plot(group["k"], group["raw"], marker="o", ms=3, color=color, label=f"N = {n}")
    axes[0].plot(group["k"], group["chance"], ls="--", color=color, alpha=0.6)
    axes[1].plot(group["k"], group["corrected"], marker="o", ms=3, color=color, label=f"N = {n}")
for ax, label in zip(axes, ["raw mutual kNN", "chance-corrected mutual kNN"]):
    ax.set_xscale("log")
    ax.set_xlabel("k (neighbours)")
    ax.set_ylabel(label)
axes[0].legend()
show(fig)

# %% [markdown]
# The same numbers to explore: move the slider to pick $k$; hovering a point gives $N$, the raw
# score, its chance level and the corrected score (the figure runs in the page, with no kernel).

# %% tags=["hide-input"]
k_frames = {}
for k in ks:
    at_k = sensitivity[sensitivity["k"] == k]
    if at_k.empty:  # k >= N - 1 for every N: nothing was scored
        continue
    hover = [f"N = {n}, k = {k}<br>raw {r:.3f}, chance {c:.3f}<br>corrected {v:.3f}"
             for n, r, c, v in at_k[["N", "raw", "chance", "corrected"]].itertuples(index=False)]
    k_frames[f"{k}"] = [
        go.Scatter(x=at_k["N"], y=at_k["raw"], name="raw", mode="lines+markers",
                   line=dict(color=PALETTE[0]), hovertext=hover, hoverinfo="text"),
        go.Scatter(x=at_k["N"], y=at_k["chance"], name="chance k/(N-1)", mode="lines+markers",
                   line=dict(color=NULL_COLOR, dash="dash"), hovertext=hover, hoverinfo="text"),
        go.Scatter(x=at_k["N"], y=at_k["corrected"], name="chance-corrected", mode="lines+markers",
                   line=dict(color=PALETTE[1]), hovertext=hover, hoverinfo="text"),
    ]
y_values = sensitivity[["raw", "chance", "corrected"]].to_numpy()
k_figure = interactive.slider_figure(
    k_frames,
    slider_label="k (neighbours)",
    title="Mutual kNN against N at the chosen k (noise 1)",
    start=f"{topk}" if f"{topk}" in k_frames else None,
    layout=dict(xaxis=dict(title="N (samples)", type="log"),
                yaxis=dict(title="mutual kNN",
                           range=[min(0.0, y_values.min()) - 0.02, y_values.max() + 0.05]),
                height=480),
)
interactive.show(k_figure, "fig-primer-k-n-interactive")

# %% tags=["remove-cell"]
# Live notebooks only (the book's pages drop this cell): re-score one pair of views at a k and a
# noise level you choose; each change re-runs alignment.score for every metric (under a second).
def rescore(k: int = topk, noise: float = 1.0) -> None:
    pair = make_two_views(n_samples, noise=noise, seed=0)
    xs, ys = alignment.prepare(pair.x), alignment.prepare(pair.y)
    scores = {m: alignment.score(xs, ys, metric=m, topk=k) for m in alignment.METRICS}
    chance = k / (n_samples - 1)
    print(f"N = {n_samples}, noise {noise:g}, k = {k}: mutual-kNN chance k/(N-1) = {chance:.3f}")
    print(pd.Series(scores, name="score").round(3).to_string())


interactive.live_control(rescore, k=(1, min(100, n_samples - 2)), noise=(0.0, 8.0, 0.25))

# %% [markdown]
# Raw scores at different $N$ or $k$ cannot be compared directly: the same two representations get
# different numbers. Chance correction removes the part that is pure arithmetic, and what remains
# still depends on $k$ and $N$ together: the neighbourhood covers a fraction $k/N$ of the data, so
# a small $k/N$ asks about fine local structure, which noise destroys first, and a large $k/N$
# about coarse structure. Later chapters fix $k$ and $N$ within a comparison and report corrected
# scores beside raw ones.
#
# ## How the layer-pair maximum inflates scores
#
# The PRH reference compares two models by scoring **every pair of layers** and keeping the best.
# The maximum of many noisy numbers is larger than a typical one. To see how much, we give each
# "model" $L$ layers of pure Gaussian noise (they know nothing about any latent) and take the best
# of the $L \times L$ layer pairs, raw and against a permutation null of the same maximum
# (`reduce="max"`: each shuffle also takes its best layer pair).

# %% tags=["hide-input"]
rows = []
for n_layers in layer_counts:
    for seed in range(n_seeds):
        a = alignment.prepare(make_noise_layers(n_samples, n_layers, 64, seed=2 * seed))
        b = alignment.prepare(make_noise_layers(n_samples, n_layers, 48, seed=2 * seed + 1))
        result = alignment.permutation_null(a, b, metric="mutual_knn", topk=topk,
                                            n_perm=max(20, n_perm // 4), seed=seed, reduce="max")
        rows.append({"layers per side": n_layers, "seed": seed, "best raw": result.observed,
                     "corrected": result.corrected, "p-value": result.p_value})
inflation = pd.DataFrame(rows)
inflation_summary = (inflation.groupby("layers per side")[["best raw", "corrected", "p-value"]]
                     .agg(["mean", "std"]))
top = inflation[inflation["layers per side"] == max(layer_counts)]
glue("primer_max_layers", max(layer_counts), display=False)
glue("primer_inflated", float(top["best raw"].mean()), display=False)
glue("primer_inflated_corrected", float(top["corrected"].mean()), display=False)
inflation_summary.round(4)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Two models made of pure-noise layers. Left: the best raw mutual kNN over all L x L layer pairs grows with L above the single-pair chance level (dashed). Right: corrected against a null that also takes the best pair, the score stays at 0. Points are independent draws.", "name": "fig-primer-layer-max"}}
fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
axes[0].scatter(inflation["layers per side"], inflation["best raw"], color=PALETTE[0], s=12)
axes[0].axhline(topk / (n_samples - 1), color=NULL_COLOR, ls="--",
                label="single-pair chance k/(N-1)")
axes[0].set_ylabel("best raw mutual kNN over layer pairs")
axes[0].legend()
axes[1].scatter(inflation["layers per side"], inflation["corrected"], color=PALETTE[1], s=12)
axes[1].axhline(0, color=NULL_COLOR, ls="--")
axes[1].set_ylabel("chance-corrected (null of the max)")
for ax in axes:
    ax.set_xscale("log", base=2)
    ax.set_xlabel("layers per side L")
show(fig)

# %% [markdown]
# The raw maximum climbs with the number of layers even though nothing is shared; the corrected
# score, whose null takes the same maximum, does not. This is why the research chapters report
# layer-pair maxima only against a null of the maximum.
#
# ## Summary
#
# - Every metric scores identical representations at 1, but their chance levels differ, so raw
#   values from different metrics, $k$ or $N$ are not comparable.
# - The permutation null measures chance for any metric; the p-value and the chance-corrected score
#   are what the later chapters report.
# - Searching over layer pairs inflates raw scores; a null of the maximum calibrates it.
#
# The next chapter, {doc}`prh_ood`, uses these tools on a zoo of trained vision models and two
# pretrained text encoders.

# %% tags=["hide-input"]
print(f"chapter ran in {time.perf_counter() - chapter_start:.1f} s at scale {scale!r}")
