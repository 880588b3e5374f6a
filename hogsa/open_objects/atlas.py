"""The texture atlas of an open object: a 2×2 grid of square tiles, one image per material.

Tile images are float RGB in [0, 1] with row 0 at the top of the tile (tile coordinate t = 1); tile
coordinates (s right, t up) map to atlas UVs at texel centres in the OBJ convention (v up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

TILE_PX = 256  # tile size in pixels
ATLAS_PX = 2 * TILE_PX  # texture size in pixels: a 2x2 grid of tiles


@dataclass(frozen=True)
class Tile:
    """A pixel rectangle ``[x0,x1) x [y0,y1)`` of the texture atlas."""

    x0: int
    y0: int
    x1: int
    y1: int

    def uv(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:  # [...], [...] in [0,1] -> [...,2]
        """Map tile coordinates (s right, t up) to atlas UVs at texel centres."""
        col = self.x0 + 0.5 + s * (self.x1 - self.x0 - 1)
        row = self.y0 + 0.5 + (1.0 - t) * (self.y1 - self.y0 - 1)
        return np.stack([col / ATLAS_PX, 1.0 - row / ATLAS_PX], axis=-1)


TILES = tuple(Tile(x, y, x + TILE_PX, y + TILE_PX) for y in (0, TILE_PX) for x in (0, TILE_PX))


def tile_row(t: float) -> int:
    """Row of a tile image at tile coordinate ``t`` (1 = top row)."""
    return int(round((1.0 - t) * (TILE_PX - 1)))


def compose_atlas(tiles: Sequence[np.ndarray]) -> np.ndarray:  # up to 4 [256,256,3] floats -> [512,512,3] uint8
    """Place tile images in ``TILES`` order; unused tiles stay mid-grey."""
    texture = np.full((ATLAS_PX, ATLAS_PX, 3), 0.5)
    for tile, img in zip(TILES, tiles):
        texture[tile.y0 : tile.y1, tile.x0 : tile.x1] = img
    return (np.clip(texture, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
