"""Test fixture writer: small image folders in the ImageNet-O layout (one sub-folder per label)."""
from __future__ import annotations

from pathlib import Path

from helpers.prh.shapes_world import make_dataset


def write_image_folder(folder: Path, n: int,
                       labels: tuple[str, ...] = ("jellyfish", "goose")) -> list[Path]:
    """Write ``n`` 32x32 PNGs of the shapes world into ``folder/<label>/``, cycling through
    ``labels``."""
    from PIL import Image

    images = make_dataset(n, "ood", seed=0, size=32).images
    files = []
    for i in range(n):
        sub = folder / labels[i % len(labels)]
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"{i:03d}.png"
        Image.fromarray((images[i].permute(1, 2, 0).numpy() * 255).astype("uint8")).save(path)
        files.append(path)
    return files
