"""Real images that install offline, for the PRH chapters' pretrained-model experiments.

No ImageNet, CIFAR or COCO subset ships in any registry, so the natural images are crops of
high-resolution photographs from Debian wallpaper packages, and the out-of-distribution (OOD)
sets are Fashion-MNIST and abstract wallpapers (the shapes world's renders come from
:mod:`helpers.prh.shapes_world`).

* :data:`PHOTOS` / :data:`ABSTRACT`: the wallpaper files chosen by eye as photographs or as
  abstract art (with their Debian package); :func:`photo_paths` / :func:`abstract_paths` return
  the ones installed (plus sklearn's two sample photos and matplotlib's ``grace_hopper.jpg``
  among the photos).
* :func:`random_crops`: many square crops per picture at several scales, resized to one size,
  with the index of the source picture of every crop (``groups``). Crops of one photo are
  correlated, so report alignment with same-photo neighbours excluded as well as plain.
* :func:`load_fashion_mnist`, :data:`FASHION_CLASSES`, :func:`fashion_captions`: Fashion-MNIST
  from Debian ``dataset-fashion-mnist`` and one class-name caption per image (captions of one
  class are identical, so caption-space neighbours tie: see :func:`fashion_captions`).
* :class:`ImageSet` and :func:`make_image_sets`: the chapter's four sets (photo crops,
  Fashion-MNIST, abstract-wallpaper crops, shapes-world OOD renders) at one size;
  :func:`pretrained_features` gives every registry model's per-block features on them (and the
  classifiers' logits), trained and random-init, cached.
* :func:`grouped_block_scores`: layer-pair-max mutual kNN between models with every pair of rows
  from the same group excluded from both neighbour sets, and its permutation null (the same
  rows as :func:`helpers.prh.metric_agreement.block_scores`).

Images are float tensors ``[N, 3, S, S]`` in [0, 1], the input :mod:`helpers.pretrained` takes.
"""
from __future__ import annotations

import functools
import gzip
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from helpers import cache, parallel, pretrained
from helpers.prh import shapes_world

WALLPAPERS = Path("/usr/share/wallpapers")
MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
UKUI = Path("/usr/share/backgrounds")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

PHOTOS: dict[str, list[str]] = {
    "mate-backgrounds": [str(MATE_NATURE / f"{n}.jpg") for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
        "Storm", "TwoWings", "Wood", "YellowFlower")],
    "plasma-workspace-wallpapers": [str(WALLPAPERS / n) for n in (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
        "Grey", "Kite", "MilkyWay", "OneStandsOut", "Path", "Volna", "summer_1am")],
}
"""Photographs (checked by eye), by Debian package. Plasma entries are folders of resolutions."""

ABSTRACT: dict[str, list[str]] = {
    "ukui-wallpapers": [str(UKUI / n) for n in (
        "2004default.jpg", "calla.png", "city.png", "desert.png", "fluent-color.png", "rhythm.jpg",
        "rollpaper.png", "string.jpg")],
    "plasma-workspace-wallpapers": [str(WALLPAPERS / n) for n in (
        "Altai", "Canopee", "Cascade", "Cluster", "Elarun", "Honeywave", "IceCold", "Kokkini",
        "Opal", "PastelHills", "Patak", "Shell")],
}
"""Abstract digital art (gradients, flat shapes, swirls): no photographed object or scene."""

FASHION_CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                   "sneaker", "bag", "ankle boot")
"""Fashion-MNIST's ten labels, in label order."""

_LOAD_SIDE = 640  # pictures are decoded once, shorter side at most this many pixels


def _resolve(entry: str) -> Path | None:
    """A file, or a Plasma wallpaper folder (pick its largest image up to 2560 px wide)."""
    p = Path(entry)
    if p.is_file():
        return p
    images = p / "contents" / "images"
    if not images.is_dir():
        return None
    files = [f for f in images.iterdir() if f.suffix.lower() in (".jpg", ".png", ".jpeg")]
    if not files:
        return None

    def width(f: Path) -> int:
        try:
            return int(f.stem.split("x")[0])
        except ValueError:
            return 0
    small_enough = [f for f in files if width(f) <= 2560] or files
    return max(small_enough, key=width)


def _installed(table: dict[str, list[str]], what: str) -> list[Path]:
    found = [p for entries in table.values() for e in entries if (p := _resolve(e)) is not None]
    if not found:
        raise FileNotFoundError(
            f"No {what} found; install the Debian packages {sorted(table)} "
            "(`apt-get install " + " ".join(sorted(table)) + "`, listed in .ci/apt-packages.txt).")
    return found


def _bundled_photos() -> list[Path]:
    """sklearn's china.jpg and flower.jpg and matplotlib's grace_hopper.jpg (always installed)."""
    import matplotlib
    import sklearn.datasets

    sk = Path(sklearn.datasets.__file__).parent / "images"
    mpl = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return [p for p in (sk / "china.jpg", sk / "flower.jpg", mpl) if p.is_file()]


def photo_paths() -> list[Path]:
    """Installed natural photographs: the Debian wallpaper photos of :data:`PHOTOS`, then the
    sample photos bundled with sklearn and matplotlib."""
    return _installed(PHOTOS, "wallpaper photographs") + _bundled_photos()


def abstract_paths() -> list[Path]:
    """Installed abstract wallpapers (:data:`ABSTRACT`)."""
    return _installed(ABSTRACT, "abstract wallpapers")


def load_picture(path: str | Path, max_side: int = _LOAD_SIDE) -> torch.Tensor:
    """One picture as ``[3, H, W]`` float in [0, 1], shorter side at most ``max_side`` pixels
    (JPEGs are decoded at reduced size; transparency is composited on white)."""
    with Image.open(path) as im:
        im.draft("RGB", (max_side * 2, max_side * 2))  # cheap JPEG downscale at decode time
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        im = im.convert("RGB")
        scale = max_side / min(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255


def random_crops(paths: Sequence[str | Path], n: int, size: int = 128,
                 scales: Sequence[float] = (0.3, 0.5, 0.75, 1.0), seed: int = 0
                 ) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` random square crops spread evenly over the pictures, resized to ``size``.

    Each crop's side is a ``scales`` fraction (drawn uniformly from the list) of the picture's
    shorter side, at a uniform random position.

    Args:
        paths: picture files (see :func:`photo_paths`).
        n: number of crops (>= the number of pictures; picture i gets n // P or one more).
        size: output side in pixels.
        scales: crop sides as fractions of the shorter side, each in (0, 1].
        seed: seed of the crop positions and scales.

    Returns:
        ``(images [n, 3, size, size] float in [0, 1], groups [n] int64)``, where ``groups[i]``
        is the index in ``paths`` of crop i's picture. Crops are ordered by picture.
    """
    if not paths:
        raise ValueError("paths is empty; pass picture files, e.g. photo_paths().")
    if n < len(paths):
        raise ValueError(f"Expected n >= {len(paths)} (one crop per picture), but got n={n}.")
    if not scales or any(not 0 < s <= 1 for s in scales):
        raise ValueError(f"Expected scales in (0, 1], but got {list(scales)}.")
    rng = np.random.default_rng(seed)
    counts = np.full(len(paths), n // len(paths))
    counts[: n % len(paths)] += 1
    out, groups = [], []
    for g, (path, c) in enumerate(zip(paths, counts)):
        img = load_picture(path)
        h, w = img.shape[1:]
        for _ in range(c):
            side = max(8, int(round(float(rng.choice(scales)) * min(h, w))))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = img[None, :, top:top + side, left:left + side]
            out.append(F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True,
                                     align_corners=False)[0])
            groups.append(g)
    return torch.stack(out).clamp(0, 1), np.asarray(groups, dtype=np.int64)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(n: int, split: str = "test", seed: int = 0,
                       folder: str | Path = FASHION_DIR) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` Fashion-MNIST images drawn without replacement, as RGB ``[n, 3, 28, 28]`` in [0, 1].

    Args:
        n: images to draw (<= the split's size).
        split: ``"test"`` (10k) or ``"train"`` (60k).
        seed: which images.
        folder: where the Debian package ``dataset-fashion-mnist`` puts the idx files.

    Returns:
        ``(images, labels [n] int64)``; labels index :data:`FASHION_CLASSES`.
    """
    if split not in ("test", "train"):
        raise ValueError(f"Expected split 'test' or 'train', but got {split!r}.")
    prefix = "t10k" if split == "test" else "train"
    folder = Path(folder)
    img_file = folder / f"{prefix}-images-idx3-ubyte.gz"
    lab_file = folder / f"{prefix}-labels-idx1-ubyte.gz"
    if not img_file.is_file() or not lab_file.is_file():
        raise FileNotFoundError(f"Fashion-MNIST not found in {folder}; install the Debian package "
                                "dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`).")
    images, labels = _read_idx(img_file), _read_idx(lab_file)
    if not 1 <= n <= len(images):
        raise ValueError(f"Expected 1 <= n <= {len(images)}, but got n={n}.")
    idx = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
    x = torch.from_numpy(images[idx].copy()).float().div(255)[:, None].expand(-1, 3, -1, -1)
    return x.contiguous(), labels[idx].astype(np.int64)


def fashion_captions(labels: Sequence[int], template: str = "a photo of a {}.") -> list[str]:
    """One caption per image from its class name.

    Only ten distinct captions exist, so in caption space each image has about N/10 exact ties;
    which tied rows a kNN returns is arbitrary (``torch.topk`` order). Score such captions
    against a permutation null, which carries the same ties, not against a fixed chance level.
    """
    return [template.format(FASHION_CLASSES[int(y)].lower()) for y in labels]


# --------------------------------------------------------------------------- grouped mutual kNN
def _knn_lists(layers: Sequence[torch.Tensor], blocked: torch.Tensor, k: int) -> torch.Tensor:
    """[L, N, k] neighbour indices per layer (inner product), ``blocked`` pairs never chosen."""
    out = []
    for x in layers:
        x = x.float()
        sim = (x @ x.T).masked_fill(blocked, float("-inf"))
        out.append(sim.topk(k, dim=1).indices)
    return torch.stack(out)


def _overlaps(mask_a: torch.Tensor, lists_b: torch.Tensor, k: int) -> torch.Tensor:
    """[La, Lb] mean shared-neighbour fraction: mask_a [La, N*N] bool, lists_b [Lb, N, k]."""
    n = lists_b.shape[1]
    codes = (torch.arange(n)[None, :, None] * n + lists_b).reshape(-1)  # [Lb*N*k]
    hits = mask_a[:, codes].reshape(mask_a.shape[0], lists_b.shape[0], -1)
    return hits.float().sum(-1) / (n * k)


_DRAW_ELEMENTS = 1 << 22  # histogram entries held at once by the batched null (16 MB of int32)
_BYTE_BITS = torch.tensor([[(v >> bit) & 1 for bit in range(8)] for v in range(256)],
                          dtype=torch.float64)  # [256, 8]: the bits of each byte value


def _null_draws(mask_a: torch.Tensor, lists_b: torch.Tensor, k: int, perms: torch.Tensor,
                inverses: torch.Tensor) -> torch.Tensor:
    """[P] layer-pair-max overlap of ``a`` with ``b``'s rows shuffled by each of ``perms``.

    Draw p relabels b's neighbour lists as ``inverses[p][lists_b[:, perms[p]]]``, as a loop of
    :func:`_overlaps` calls would, batched over shuffles in chunks. Instead of looking each
    relabelled neighbour up in every layer of ``a`` (``La`` lookups), a's layers are packed eight
    to a byte (bit l: the neighbour is in a's layer-l list), and one lookup per neighbour and
    byte feeds a histogram of byte values per (layer of b, draw), whose bit sums are the counts
    (one 256-image table of 11 models with 50 shuffles: 17.5 -> 2.6 CPU s). Counts are exact
    integers, so every draw equals the one-shuffle-at-a-time value bit for bit.
    """
    n_layers_a, (n_layers_b, n, k_b) = mask_a.shape[0], lists_b.shape
    n_bytes = -(-n_layers_a // 8)
    padded = torch.zeros(n_bytes * 8, mask_a.shape[1], dtype=torch.uint8)
    padded[:n_layers_a] = mask_a
    weights = (1 << torch.arange(8, dtype=torch.uint8))[None, :, None]
    packed = (padded.reshape(n_bytes, 8, -1) * weights).sum(1, dtype=torch.uint8)
    packed = packed.reshape(n_bytes, n, n).int()  # [B, N, N]: row i, neighbour j
    chunk = max(1, _DRAW_ELEMENTS // (n_bytes * n_layers_b * n * k_b))
    out = []
    for start in range(0, len(perms), chunk):
        p, inv = perms[start:start + chunk], inverses[start:start + chunk]
        shuffled = lists_b[:, p].reshape(n_layers_b, len(p), n * k_b)  # row i of draw c: p[c, i]
        relabelled = torch.gather(inv[None].expand(n_layers_b, -1, -1), 2, shuffled)
        relabelled = relabelled.reshape(n_layers_b * len(p), n, k_b)  # [Lb*C, N, k]
        # one histogram bin per (byte, layer of b, draw, byte value)
        offsets = 256 * torch.arange(n_bytes * n_layers_b * len(p), dtype=torch.int32)
        values = torch.empty(n_bytes, *relabelled.shape, dtype=torch.int32)  # [B, Lb*C, N, k]
        for table, into in zip(packed, values):
            torch.gather(table.expand(len(relabelled), -1, -1), 2, relabelled, out=into)
        values += offsets.reshape(n_bytes, -1, 1, 1)  # bins stay below 2**31 (int32 is exact)
        hist = torch.bincount(values.reshape(-1), minlength=256 * offsets.numel())
        bits = hist.reshape(n_bytes, n_layers_b * len(p), 256).double() @ _BYTE_BITS
        counts = bits.permute(0, 2, 1).reshape(n_bytes * 8, n_layers_b, len(p))[:n_layers_a]
        out.append((counts.float() / (n * k)).amax(dim=(0, 1)))
    return torch.cat(out).double()


def grouped_block_scores(feats_a: dict[str, Sequence[torch.Tensor]],
                         feats_b: dict[str, Sequence[torch.Tensor]],
                         groups: Sequence[int] | None, k: int = 10, n_perm: int = 50,
                         seed: int = 0, pairs: Sequence[tuple[str, str]] | None = None,
                         perm_seeds: Sequence[int] | None = None, keep_null: bool = False
                         ) -> pd.DataFrame:
    """Mutual kNN (max over layer pairs) with same-group neighbours excluded, and its null.

    For crops of a few photos, neighbours within one photo share the photo, not a learned
    concept. Here row j may not be a neighbour of row i when ``groups[i] == groups[j]`` (nor
    itself), on both models' sides. Null draw: the rows of model b are shuffled (b's neighbour
    lists, each computed in b's own image space with its own exclusions, are relabelled), and the
    same layer-pair max is taken, so layer search is calibrated as in
    :func:`helpers.prh.metric_agreement.block_scores`. Neighbour lists are built once per model
    and the draws are batched over shuffles.

    Args:
        feats_a, feats_b: model name -> prepared layers ``[N, D_l]`` (same rows in every model).
        groups: ``[N]`` group of each row (None: only self is excluded, the plain score).
        k: neighbours per row (``k < N - largest group``).
        n_perm: shuffles (>= 1); the p-value floor is 1 / (n_perm + 1).
        seed: seed of the shuffles (the same shuffles for every pair): ``n_perm`` successive
            draws of one generator.
        pairs: which (a, b) pairs to score (default: the full product).
        perm_seeds: instead of ``seed``, one shuffle per entry, the first draw of a generator
            seeded with it (``n_perm`` must equal its length): draw j then equals the null of a
            one-shuffle call with ``seed=perm_seeds[j]``.
        keep_null: add a ``null`` column with each pair's ``[n_perm]`` draws (float64).

    Returns:
        One row per pair: ``model_a, model_b, raw, layer_a, layer_b, null_mean, null_std,
        p_value, corrected`` with corrected = (raw - null_mean) / (1 - null_mean), and ``null``
        when ``keep_null``.
    """
    names = list(feats_a) + [b for b in feats_b if b not in feats_a]
    n = len(next(iter(feats_a.values()))[0])
    for d in (feats_a, feats_b):
        for name, layers in d.items():
            if not layers or any(t.ndim != 2 or len(t) != n for t in layers):
                raise ValueError(f"feats[{name!r}] must be a non-empty list of [N={n}, D] layers.")
    if n_perm < 1:
        raise ValueError(f"Expected n_perm >= 1, but got {n_perm}.")
    if perm_seeds is not None and len(perm_seeds) != n_perm:
        raise ValueError(f"perm_seeds has {len(perm_seeds)} seeds but n_perm={n_perm}; pass "
                         "one seed per shuffle, or perm_seeds=None to use seed.")
    g = (torch.arange(n) if groups is None
         else torch.as_tensor(np.asarray(groups), dtype=torch.long))
    if len(g) != n:
        raise ValueError(f"groups has {len(g)} entries but the features have N = {n} rows.")
    blocked = (g[:, None] == g[None, :]) | torch.eye(n, dtype=torch.bool)
    largest = int(blocked.sum(1).max())
    if not 1 <= k <= n - largest:
        raise ValueError(f"Expected 1 <= k <= N - largest group = {n - largest}, but got k={k}.")
    pairs = list(itertools.product(feats_a, feats_b)) if pairs is None else list(pairs)
    allf = {**feats_a, **feats_b}
    lists = {m: _knn_lists(allf[m], blocked, k) for m in names if any(m in p for p in pairs)}
    masks = {}
    for m in {a for a, _ in pairs}:
        mask = torch.zeros(len(lists[m]), n * n, dtype=torch.bool)
        rows = torch.arange(n)[:, None] * n
        for layer, li in enumerate(lists[m]):
            mask[layer, (rows + li).reshape(-1)] = True
        masks[m] = mask
    if perm_seeds is None:
        gen = torch.Generator().manual_seed(seed)
        perms = torch.stack([torch.randperm(n, generator=gen) for _ in range(n_perm)])
    else:
        perms = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(int(s)))
                             for s in perm_seeds])
    inverses = torch.argsort(perms, dim=1)
    out = []
    for a, b in pairs:
        obs = _overlaps(masks[a], lists[b], k)
        flat = int(obs.argmax())
        raw = float(obs.flatten()[flat])
        draws = _null_draws(masks[a], lists[b], k, perms, inverses)
        mean = float(draws.mean())
        row = dict(model_a=a, model_b=b, raw=raw, layer_a=flat // obs.shape[1],
                   layer_b=flat % obs.shape[1], null_mean=mean,
                   null_std=float(draws.std()) if n_perm > 1 else float("nan"),
                   p_value=float((1 + (draws >= raw).sum()) / (1 + n_perm)),
                   corrected=(raw - mean) / (1 - mean))
        out.append({**row, "null": draws} if keep_null else row)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- image sets + features
@dataclass
class ImageSet:
    """One set of images for the pretrained-model experiments.

    Attributes:
        name: short name (``photos``, ``fashion``, ``abstract``, ``shapes``).
        images: ``[N, 3, S, S]`` float in [0, 1].
        groups: ``[N]`` source picture of each crop (None when every image is its own source).
        labels: ``[N]`` class labels where the set has them (Fashion-MNIST), else None.
        captions: one caption per image where the set has them, else None.
        key: JSON-serialisable description for the feature cache.
    """

    name: str
    images: torch.Tensor
    groups: np.ndarray | None
    labels: np.ndarray | None
    captions: list[str] | None
    key: dict


IMAGE_SETS = ("photos", "fashion", "abstract", "shapes")
"""The sets :func:`make_image_sets` builds: natural photographs first, then three OOD sets."""


def make_image_sets(n: int, size: int = 96, seed: int = 0,
                    names: Sequence[str] = IMAGE_SETS) -> dict[str, ImageSet]:
    """``n`` images per set, all ``[n, 3, size, size]``.

    ``photos``: random crops of :func:`photo_paths`; ``abstract``: random crops of
    :func:`abstract_paths`; ``fashion``: Fashion-MNIST test images with class-name captions;
    ``shapes``: the shapes world's OOD split (novel shapes, textures and pairs) with its captions.
    """
    unknown = set(names) - set(IMAGE_SETS)
    if unknown:
        raise ValueError(f"Expected names from {IMAGE_SETS}, but got {sorted(unknown)}.")
    out = {}
    for name in names:
        key = {"image_set": name, "n": n, "size": size, "seed": seed}
        if name in ("photos", "abstract"):
            paths = photo_paths() if name == "photos" else abstract_paths()
            x, g = random_crops(paths, n, size, seed=seed)
            key["pictures"] = [p.name if p.parent.name != "images" else p.parent.parent.parent.name
                               for p in paths]
            out[name] = ImageSet(name, x, g, None, None, key)
        elif name == "fashion":
            x, y = load_fashion_mnist(n, seed=seed)
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            out[name] = ImageSet(name, x.clamp(0, 1), None, y, fashion_captions(y), key)
        else:
            data = shapes_world.make_dataset(n, "ood", seed=seed)
            x = F.interpolate(data.images, size=(size, size), mode="bilinear", align_corners=False)
            out[name] = ImageSet(name, x.clamp(0, 1), None, None, list(data.captions), key)
    return out


def control_name(model: str) -> str:
    """Label of a model's random-init control, e.g. ``"mobilenet_v2 (init)"``."""
    return f"{model} (init)"


# Relative CPU cost of one model's features, for handing the longest jobs out first: HED's VGG16
# trunk is about three quarters of the feature stage, then EfficientNet-Lite2 (the widest and
# deepest Lite); the others are alike. Only the order depends on it.
_FEATURE_COST = {"hed_vgg16": 10.0, "efficientnet_lite2": 2.0}


class _NotCached(Exception):
    """Raised by the read-only loader: the features are not in the cache yet."""


def _not_cached() -> None:
    raise _NotCached


def _model_features(job: tuple) -> None:
    """Every set's features of one (model, trained or control) into the cache (a
    :func:`helpers.parallel.map_jobs` job; the parent reads them back).

    The model is loaded once, on the first set that misses.
    """
    name, trained, images, seed, input_size, batch_size = job
    load = functools.cache(functools.partial(pretrained.load_pretrained, name, trained, seed))
    head = trained and pretrained.REGISTRY[name].classifier
    for set_images, key in images:
        pretrained.cached_block_features(
            name, set_images, key, pretrained=trained, seed=seed, input_size=input_size,
            batch_size=batch_size, logits=head, loader=load)


def pretrained_features(sets: dict[str, ImageSet], models: Sequence[str] | None = None, *,
                        input_size: int = 96, controls: bool = True, seed: int = 0,
                        batch_size: int = 32, progress: bool = True, workers: int = 1
                        ) -> tuple[dict[str, dict[str, list[torch.Tensor]]],
                                   dict[str, dict[str, torch.Tensor]]]:
    """Per-block features of every model (and its random-init control) on every set, cached.

    Args:
        sets: from :func:`make_image_sets`.
        models: registry names (default: all of :data:`helpers.pretrained.REGISTRY`).
        input_size: side fed to every model (smaller than their own 224-260 px: cheaper).
        controls: also the random-init copy of each architecture (seed ``seed``).
        seed: random-init seed.
        batch_size, progress: as :func:`helpers.pretrained.block_features`.
        workers: processes that compute the missing features, one (model, trained or control)
            per job (:func:`helpers.parallel.map_jobs`); the features are the same for any number.

    Returns:
        ``(feats, logits)``: ``feats[set][label]`` is the list of raw ``[N, C_b]`` layers, with
        label the registry name or :func:`control_name`; ``logits[set][name]`` the trained
        classifiers' ``[N, 1000]`` logits.
    """
    models = list(pretrained.REGISTRY) if models is None else list(models)
    jobs = [(m, t) for m in models for t in ((True, False) if controls else (True,))]

    def read(m: str, trained: bool, data: ImageSet) -> list[torch.Tensor]:
        return pretrained.cached_block_features(
            m, data.images, data.key, pretrained=trained, seed=seed, input_size=input_size,
            batch_size=batch_size, logits=trained and pretrained.REGISTRY[m].classifier,
            loader=_not_cached)

    def read_all(m: str, trained: bool) -> dict[str, list[torch.Tensor]] | None:
        try:
            return {s: read(m, trained, data) for s, data in sets.items()}
        except _NotCached:
            return None

    found = {j: read_all(*j) for j in jobs}
    missing = sorted((j for j in jobs if found[j] is None),
                     key=lambda j: -_FEATURE_COST.get(j[0], 1.0))  # longest first: balance
    parallel.map_jobs(
        _model_features,
        [(m, t, [(d.images, d.key) for d in sets.values()], seed, input_size, batch_size)
         for m, t in missing], workers, desc="pretrained features", progress=progress)
    feats = {s: {} for s in sets}
    logits = {s: {} for s in sets}
    for m, trained in jobs:
        per_set = found[(m, trained)] or read_all(m, trained)  # computed jobs: read back
        if per_set is None:
            raise RuntimeError(f"the features of {m} ({'trained' if trained else 'init'}) were "
                               f"computed but cannot be read back from {cache.cache_root()}; "
                               f"check the disk")
        for s, layers in per_set.items():
            if trained and pretrained.REGISTRY[m].classifier:
                logits[s][m] = layers.pop()
            feats[s][m if trained else control_name(m)] = layers
    return feats, logits


# --------------------------------------------------------------------------- analysis
PIXELS = "pixels"
"""Label of the pixel-space baseline: the images themselves, downsampled, as one layer."""


def pixel_layer(images: torch.Tensor, side: int = 24) -> torch.Tensor:
    """Images averaged down to ``side`` x ``side`` and flattened: ``[N, 3 * side**2]``."""
    return F.adaptive_avg_pool2d(images.float(), side).flatten(1)


def pair_kind(a: str, b: str) -> str:
    """``trained``, ``init`` (both random-init controls), ``pixels`` (one side is pixels) or
    ``mixed`` (a trained model against a control)."""
    if PIXELS in (a, b):
        return "pixels"
    ia, ib = a.endswith(" (init)"), b.endswith(" (init)")
    return "init" if ia and ib else "trained" if not (ia or ib) else "mixed"


def alignment_table(feats: dict[str, list[torch.Tensor]], k: int = 10, n_perm: int = 100,
                    seed: int = 0, groups: Sequence[int] | None = None) -> pd.DataFrame:
    """Every unordered pair of models on one image set: layer-pair max and last layer.

    Args:
        feats: label -> prepared layers (see :func:`helpers.alignment.prepare`).
        k, n_perm, seed: as :func:`grouped_block_scores`.
        groups: exclude same-group neighbours (photo crops); None: only self.

    Returns:
        One row per pair with ``kind`` (:func:`pair_kind`), the layer-pair max (``raw``,
        ``corrected``, ``p_value``, ``layer_a``, ``layer_b``, ``depth_a``, ``depth_b`` as a
        fraction of each model's depth, 1 = last) and ``last_corrected`` (last layers only,
        their own null).
    """
    names = list(feats)
    pairs = list(itertools.combinations(names, 2))
    best = grouped_block_scores(feats, feats, groups, k, n_perm, seed, pairs)
    last = grouped_block_scores({m: [ls[-1]] for m, ls in feats.items()},
                                {m: [ls[-1]] for m, ls in feats.items()}, groups, k, n_perm,
                                seed, pairs)
    best["kind"] = [pair_kind(a, b) for a, b in pairs]
    best["depth_a"] = [i / max(1, len(feats[a]) - 1) for a, i in zip(best.model_a, best.layer_a)]
    best["depth_b"] = [j / max(1, len(feats[b]) - 1) for b, j in zip(best.model_b, best.layer_b)]
    best["last_corrected"] = last.corrected.to_numpy()
    best["last_p_value"] = last.p_value.to_numpy()
    return best


def trained_minus_init(table: pd.DataFrame, value: str = "corrected") -> pd.DataFrame:
    """Per architecture pair: ``value`` of the two trained models minus that of their two
    random-init controls (the control that carries a PRH claim), one row per pair."""
    score = {(a, b): v for a, b, v in zip(table.model_a, table.model_b, table[value])}
    rows = []
    for (a, b), v in score.items():
        if pair_kind(a, b) != "trained":
            continue
        ca, cb = control_name(a), control_name(b)
        init = score.get((ca, cb), score.get((cb, ca)))
        if init is not None:
            rows.append(dict(model_a=a, model_b=b, trained=v, init=init, difference=v - init))
    return pd.DataFrame(rows, columns=["model_a", "model_b", "trained", "init", "difference"])


def confidence_table(logits: dict[str, dict[str, torch.Tensor]]) -> pd.DataFrame:
    """Mean top-1 softmax confidence and entropy (nats) per (image set, classifier), with the
    fraction of images whose confidence exceeds 0.5."""
    rows = []
    for s, by_model in logits.items():
        for m, lg in by_model.items():
            conf, ent = pretrained.confidence_entropy(lg)
            rows.append(dict(image_set=s, model=m, confidence=float(conf.mean()),
                             entropy=float(ent.mean()),
                             frac_confident=float((conf > 0.5).float().mean()),
                             top_class=pretrained.imagenet_class_name(
                                 int(lg.argmax(1).mode().values))))
    return pd.DataFrame(rows)


def caption_features(captions: Sequence[str], encoder: str, key: dict) -> list[torch.Tensor]:
    """Token-mean hidden states of an offline sentence encoder, one ``[N, D]`` tensor per layer
    (embeddings first), cached under ``key`` (which must describe the captions)."""
    from helpers.features import cached_features, extract_language_features, load_text_encoder

    def compute():
        model, tok = load_text_encoder(encoder)
        return extract_language_features(model, tok, list(captions), batch_size=64, progress=False)
    feats = cached_features({"model": encoder, "pool": "avg", "captions_of": key}, compute)
    return list(feats.unbind(1))


SUMMARY_QUANTITIES = ("trained pairs", "random-init pairs", "model vs pixels", "trained - init",
                      "trained - init, last layer")
"""The rows :func:`summarise` gives per (image set, view)."""


def summarise(tables: dict[tuple[str, str], pd.DataFrame], n_boot: int = 1000,
              seed: int = 0) -> pd.DataFrame:
    """Means of the :func:`alignment_table` outputs with 95% intervals that resample **models**.

    Args:
        tables: (image set, view) -> :func:`alignment_table` output.
        n_boot, seed: bootstrap draws (:func:`helpers.stats.pair_bootstrap`: pairs share models,
            so models are the resampled units).

    Returns:
        Indexed by (image_set, view, quantity) with quantity from :data:`SUMMARY_QUANTITIES`:
        ``mean``, ``ci_low``, ``ci_high``, ``pairs``.
    """
    from helpers import stats

    rows = []
    for (s, view), t in tables.items():
        parts = {"trained pairs": (t[t.kind == "trained"], "corrected"),
                 "random-init pairs": (t[t.kind == "init"], "corrected"),
                 "model vs pixels": (t[t.kind == "pixels"], "corrected"),
                 "trained - init": (trained_minus_init(t), "difference"),
                 "trained - init, last layer": (trained_minus_init(t, "last_corrected"),
                                                "difference")}
        for what, (tab, col) in parts.items():
            if tab.empty:
                lo = hi = mean = float("nan")
            else:
                draws = stats.pair_bootstrap(tab[col].to_numpy(),
                                             list(zip(tab.model_a, tab.model_b)),
                                             n_boot=n_boot, seed=seed)
                (lo, hi), mean = stats.interval(draws), float(tab[col].mean())
            rows.append(dict(image_set=s, view=view, quantity=what, mean=mean, ci_low=lo,
                             ci_high=hi, pairs=len(tab)))
    return pd.DataFrame(rows).set_index(["image_set", "view", "quantity"])


def _bars(ax, xs, rows, offset, width, **kw):
    means = np.array([r["mean"] for r in rows])
    err = np.array([[r["mean"] - r["ci_low"], r["ci_high"] - r["mean"]] for r in rows]).T
    ax.bar(xs + offset, means, width=width, yerr=err, capsize=2, **kw)


def plot_alignment(summary: pd.DataFrame, views: dict[str, str], colors: Sequence[str],
                   null_color: str):
    """Left: corrected alignment of trained pairs, random-init pairs and model-vs-pixels per
    image set; right: trained minus random-init (layer-pair max and last layer). Error bars are
    the intervals of :func:`summarise`. Returns the figure."""
    import matplotlib.pyplot as plt

    names = list(views)
    xs = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [3, 2]},
                             constrained_layout=True)
    for i, q in enumerate(SUMMARY_QUANTITIES[:3]):
        _bars(axes[0], xs, [summary.loc[(s, views[s], q)] for s in names], (i - 1) * 0.27, 0.27,
              label=q, color=null_color if "init" in q else colors[i])
    axes[0].set_xticks(xs, names)
    axes[0].set_ylabel("corrected mutual kNN (0 = chance)")
    axes[0].legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.02), ncols=3)
    for i, q in enumerate(SUMMARY_QUANTITIES[3:]):
        _bars(axes[1], xs, [summary.loc[(s, views[s], q)] for s in names], (i - 0.5) * 0.38, 0.38,
              color=colors[3 + i], label="layer-pair max" if i == 0 else "last layer")
    axes[1].axhline(0, color=null_color, lw=1)
    axes[1].set_xticks(xs, names)
    axes[1].set_ylabel("trained - random-init")
    axes[1].legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.02), ncols=2)
    return fig


def plot_confidence(conf: pd.DataFrame, set_names: Sequence[str], colors: Sequence[str]):
    """Mean top-1 confidence (left) and entropy (right) per image set, one bar per classifier,
    from :func:`confidence_table`. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), constrained_layout=True)
    models = sorted(conf.model.unique())
    width = 0.8 / max(1, len(models))
    for ax, col in zip(axes, ("confidence", "entropy")):
        tab = conf.pivot_table(index="image_set", columns="model", values=col).reindex(set_names)
        xs = np.arange(len(tab))
        for i, m in enumerate(models):
            ax.bar(xs + (i - (len(models) - 1) / 2) * width, tab[m], width=width,
                   color=colors[i], label=m)
        ax.set_xticks(xs, tab.index)
        ax.set_ylabel("mean top-1 probability" if col == "confidence" else "mean entropy (nats)")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # off the bars
    return fig
