"""Binning of projected Gaussians into square screen tiles (gsplat's ``isect_tiles`` on CPU).

Tiles are ``tile_size`` pixels square, numbered row-major per image and then by image:
``tile = image · tiles_y · tiles_x + ty · tiles_x + tx``. A Gaussian with mean m and integer half-extents
r (pixels) touches the tiles [floor((m - r)/tile_size), ceil((m + r)/tile_size)) on each axis, clamped
to the image, as gsplat. The result is a ragged list with one row per (tile, Gaussian) pair, sorted by
tile, then by depth (ties by Gaussian index), i.e. front to back within each tile.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor


class TileGrid(NamedTuple):
    """Tile layout of a batch of images."""

    tile_size: int  # pixels per tile side
    tiles_x: int  # tiles per row, ceil(width / tile_size)
    tiles_y: int  # tiles per column, ceil(height / tile_size)
    n_images: int

    @property
    def n_tiles(self) -> int:
        return self.n_images * self.tiles_y * self.tiles_x


class TileIntersections(NamedTuple):
    """Ragged (tile, Gaussian) pairs sorted by tile then depth."""

    tile_ids: Tensor  # [P] int64 flat tile index (see module docstring), non-decreasing
    gaussian_ids: Tensor  # [P] int64 row of the Gaussian in the packed inputs
    offsets: Tensor  # [T + 1] int64: tile t owns pairs offsets[t]:offsets[t + 1]
    tiles_per_gaussian: Tensor  # [M] int64 number of tiles each Gaussian touches


def make_grid(width: int, height: int, tile_size: int, n_images: int) -> TileGrid:
    """The tile grid covering a width × height image, for n_images images."""
    return TileGrid(tile_size, -(-width // tile_size), -(-height // tile_size), n_images)


@torch.no_grad()
def intersect_tiles(
    means2d: Tensor,  # [M, 2] pixels, packed visible Gaussians
    radii: Tensor,  # [M, 2] int half-extents in pixels, > 0
    depths: Tensor,  # [M] camera z, metres
    image_ids: Tensor,  # [M] int64 image of each row
    grid: TileGrid,
) -> TileIntersections:
    """Every (tile, Gaussian) pair whose tile overlaps the Gaussian's box, front to back per tile."""
    lo, hi = _tile_ranges(means2d, radii, grid)  # [M, 2] each, [lo, hi) per axis
    span = (hi - lo).clamp(min=0)  # [M, 2]
    counts = span[:, 0] * span[:, 1]  # [M]

    front_to_back = _depth_order(depths)  # [M]
    n_tiles = counts.index_select(0, front_to_back)
    row_len = span[:, 0].index_select(0, front_to_back)
    first_tile = (image_ids * grid.tiles_y + lo[:, 1]) * grid.tiles_x + lo[:, 0]
    first_tile = first_tile.index_select(0, front_to_back)
    # one entry per pair, Gaussians front to back: `owner` indexes front_to_back, `local` the tile
    # inside the Gaussian's tile rectangle (row-major)
    arange = functools.partial(torch.arange, device=depths.device)
    owner = torch.repeat_interleave(arange(n_tiles.numel()), n_tiles)
    local = arange(owner.numel()) - (torch.cumsum(n_tiles, 0) - n_tiles).index_select(0, owner)
    row_len = row_len.index_select(0, owner)
    tile_ids = first_tile.index_select(0, owner) + (local // row_len) * grid.tiles_x + local % row_len

    tile_ids, by_tile = torch.sort(tile_ids.int(), stable=True)  # int32: radix sort; keeps depth order
    per_tile = torch.bincount(tile_ids, minlength=grid.n_tiles)
    offsets = torch.cat([per_tile.new_zeros(1), torch.cumsum(per_tile, 0)])
    gaussian_ids = front_to_back.index_select(0, owner.index_select(0, by_tile))
    return TileIntersections(tile_ids.long(), gaussian_ids, offsets, counts)


def chunk_pairs(
    isect: TileIntersections,
    max_pairs: int,
) -> list[slice]:
    """Split the pair list at tile boundaries into runs of at most max_pairs pairs (a tile holding
    more pairs than that is a run of its own), so later stages can bound their memory."""
    total = int(isect.offsets[-1])
    if total <= max_pairs:
        return [slice(0, total)]
    runs, start, end = [], 0, 0
    for tile_end in isect.offsets[1:].tolist():
        if tile_end - start > max_pairs and end > start:  # this tile would overflow the run
            runs.append(slice(start, end))
            start = end
        end = tile_end
    return runs + [slice(start, end)]


def _depth_order(
    depths: Tensor,  # [M] camera z > 0, metres
) -> Tensor:
    """Indices sorting depths front to back, ties by index: a stable radix sort on the float32 bit
    patterns, which order like the values for positive floats (gsplat sorts float32 depths too)."""
    bits = depths.detach().float().contiguous().view(torch.int32)
    return torch.sort(bits, stable=True).indices


def _tile_ranges(
    means2d: Tensor,  # [M, 2]
    radii: Tensor,  # [M, 2]
    grid: TileGrid,
) -> tuple[Tensor, Tensor]:
    """Inclusive-lower, exclusive-upper tile coordinates [M, 2] int64 of each Gaussian's box."""
    limit = torch.tensor([grid.tiles_x, grid.tiles_y], device=means2d.device)
    centre = means2d.detach() / grid.tile_size
    extent = radii.to(centre.dtype) / grid.tile_size
    lo = torch.floor(centre - extent).long().clamp(min=0)
    hi = torch.ceil(centre + extent).long()
    return torch.minimum(lo, limit), torch.minimum(hi, limit)
