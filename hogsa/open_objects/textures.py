"""Procedural tile images of the open objects: noise, flat colours, shading, text, discs, barcodes,
cardboard. Float RGB in [0, 1], row 0 = top of a tile (t = 1); random choices from the caller's
generator.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

from hogsa.open_objects.atlas import TILE_PX


def noise(rng: np.random.Generator, sigma: float | tuple[float, float], size: int = TILE_PX) -> np.ndarray:
    """Smooth zero-mean noise with unit standard deviation. [size,size]"""
    field = gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return field / field.std()


def flat(colour: Sequence[float], size: int = TILE_PX) -> np.ndarray:  # -> [size,size,3]
    """A tile of one colour."""
    return np.broadcast_to(np.asarray(colour, float), (size, size, 3)).copy()


def shade(img: np.ndarray, field: np.ndarray, amount: float) -> np.ndarray:
    """Modulate brightness by ``1 + amount * field``."""
    return img * (1.0 + amount * field)[..., None]


def text_block(img: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int], colour: Sequence[float],
               line_height: int, gap: int = 3) -> None:
    """Draw lines of 'words' (filled rectangles) inside ``box = (y0, y1, x0, x1)``."""
    y0, y1, x0, x1 = box
    for top in range(y0, y1 - line_height + 1, line_height + gap):
        x = x0
        end = x1 - int(rng.integers(0, max(1, (x1 - x0) // 3)))
        while x < end:
            width = int(rng.integers(line_height, 4 * line_height + 1))
            img[top : top + line_height, x : min(x + width, end)] = colour
            x += width + max(2, line_height // 2)


def disc(img: np.ndarray, cy: float, cx: float, radius: float, colour: Sequence[float]) -> None:
    """Paint the pixels within ``radius`` of (row ``cy``, column ``cx``)."""
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    img[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = colour


def barcode(img: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int]) -> None:
    """Draw bars of random widths and gaps inside ``box = (y0, y1, x0, x1)``."""
    y0, y1, x0, x1 = box
    x = x0
    while x < x1:
        width = int(rng.integers(1, 4))
        img[y0:y1, x : min(x + width, x1)] = (0.05, 0.05, 0.05)
        x += width + int(rng.integers(1, 4))


def cardboard(rng: np.random.Generator, tone: float = 1.0) -> np.ndarray:
    """A corrugated-cardboard tile, brightness scaled by ``tone``."""
    img = flat((0.72 * tone, 0.55 * tone, 0.35 * tone))
    img = shade(img, noise(rng, (0.6, 8.0)), 0.05)
    return shade(img, np.sin(np.arange(TILE_PX) * 2 * np.pi / 9.0)[None, :].repeat(TILE_PX, 0), 0.02)
