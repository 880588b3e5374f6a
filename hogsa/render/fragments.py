"""Fragments: the (pixel, Gaussian) pairs each pixel may composite, grouped by pixel, front to back.

Built without gradients from a run of the tile intersections (``tiles.py``):

1. candidates — for every (tile, Gaussian) pair and every pixel of its tile, one compiled elementwise
   test: the pixel lies in the image and σ ≤ ln(255·o) + 1e-3, i.e. α ≥ 1/255 without the exp (a slight
   superset: ``composite.py`` applies the exact thresholds);
2. order — the candidates' flat pixel indices are sorted stably (int32 keys, radix sort); pairs come
   front to back within each tile, so each pixel's candidates become one contiguous, front-to-back run
   (a "segment").

Pixels are flat indices image·H·W + y·W + x, with centres at (x + 0.5, y + 0.5).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from hogsa.compiled import lazily_compiled
from hogsa.render.alpha import ALPHA_THRESHOLD, gaussian_sigma
from hogsa.render.tiles import TileGrid

CANDIDATE_SLACK = 1e-3  # in σ: keeps the exp-free candidate test a superset of α ≥ 1/255


class Fragments(NamedTuple):
    """Candidate (pixel, Gaussian) pairs in segments of one pixel each, front to back in a segment."""

    rows: Tensor  # [E] int64 packed Gaussian of each fragment
    pixels: Tensor  # [E] int64 flat pixel index (module docstring), non-decreasing
    segment_ids: Tensor  # [E] int64 segment of each fragment
    segment_first: Tensor  # [S] int64 position of each segment's first fragment
    segment_last: Tensor  # [S] int64 position of each segment's last fragment
    segment_pixels: Tensor  # [S] int64 flat pixel index of each segment


@torch.no_grad()
def build_fragments(
    tile_ids: Tensor,  # [P] int64 flat tile of each pair, non-decreasing (a run of TileIntersections)
    gaussian_ids: Tensor,  # [P] int64 packed Gaussian of each pair, front to back within a tile
    grid: TileGrid,
    width: int,
    height: int,
    means2d: Tensor,  # [M, 2] packed, pixels
    conics: Tensor,  # [M, 3] packed (a, b, c)
    opacities: Tensor,  # [M] packed, effective (compensated) opacity
) -> Fragments:
    """Candidate fragments of the pixels of the given pairs' tiles, grouped by pixel, front to back."""
    if grid.n_images * height * width >= 2**31:
        raise ValueError(f"{grid.n_images} images of {width}×{height} exceed the int32 pixel keys")
    pair_params, pixel_base = _pair_parameters(tile_ids, gaussian_ids, grid, width, height, means2d,
                                               conics, opacities)
    centre_offsets, flat_offsets = _tile_pixel_offsets(grid.tile_size, width, means2d)
    limits = torch.tensor([width, height], dtype=means2d.dtype, device=means2d.device)
    candidate = _candidate_mask(pair_params, centre_offsets, limits)  # [P, tile²]
    pair, slot = candidate.nonzero(as_tuple=True)
    keys = pixel_base.index_select(0, pair) + flat_offsets.index_select(0, slot)
    pixels, order = torch.sort(keys.int(), stable=True)  # int32 keys: radix sort
    return _segments(gaussian_ids.index_select(0, pair.index_select(0, order)), pixels.long())


def pixel_centres(
    pixels: Tensor,  # [E] int64 flat pixel indices
    size: Tensor,  # [2] int64 (width, height)
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates (x + 0.5, y + 0.5) of flat pixel indices, two [E] tensors."""
    x = pixels % size[0]
    y = (pixels // size[0]) % size[1]
    return x.to(dtype) + 0.5, y.to(dtype) + 0.5


def _segments(
    rows: Tensor,  # [E] int64
    pixels: Tensor,  # [E] int64 non-decreasing
) -> Fragments:
    """Segment bookkeeping of fragments sorted by pixel."""
    segment_pixels, counts = torch.unique_consecutive(pixels, return_counts=True)
    segment_last = torch.cumsum(counts, 0) - 1
    new_segment = torch.zeros_like(pixels)
    new_segment[1:] = pixels[1:] != pixels[:-1]
    segment_ids = torch.cumsum(new_segment, 0)
    return Fragments(rows, pixels, segment_ids, segment_last - counts + 1, segment_last, segment_pixels)


def _pair_parameters(
    tile_ids: Tensor,  # [P]
    gaussian_ids: Tensor,  # [P]
    grid: TileGrid,
    width: int,
    height: int,
    means2d: Tensor,  # [M, 2]
    conics: Tensor,  # [M, 3]
    opacities: Tensor,  # [M]
) -> tuple[Tensor, Tensor]:
    """Per pair: (tile x0, tile y0, mean x, mean y, a, b, c, σ limit) [P, 8] and the flat index of the
    tile's first pixel [P] int64."""
    per_image = grid.tiles_x * grid.tiles_y
    image, in_image = tile_ids // per_image, tile_ids % per_image
    x0 = (in_image % grid.tiles_x) * grid.tile_size
    y0 = (in_image // grid.tiles_x) * grid.tile_size
    sigma_limit = torch.log(opacities.clamp(min=1e-30) / ALPHA_THRESHOLD) + CANDIDATE_SLACK  # [M]
    per_gaussian = torch.cat([means2d, conics, sigma_limit[:, None]], dim=-1)  # [M, 6]
    origin = torch.stack([x0, y0], dim=-1).to(means2d.dtype)
    pair_params = torch.cat([origin, per_gaussian.index_select(0, gaussian_ids)], dim=-1)
    return pair_params, (image * height + y0) * width + x0


def _tile_pixel_offsets(
    tile_size: int,
    width: int,
    like: Tensor,  # any tensor of the working dtype and device
) -> tuple[Tensor, Tensor]:
    """For the tile² pixels of a tile, row-major: centre offsets from the tile origin [tile², 2]
    (x + 0.5, y + 0.5) and flat-index offsets y·W + x [tile²] int64."""
    local = torch.arange(tile_size * tile_size, device=like.device)
    lx, ly = local % tile_size, local // tile_size
    return torch.stack([lx, ly], dim=-1).to(like.dtype) + 0.5, ly * width + lx


@lazily_compiled
def _candidate_mask(
    pair_params: Tensor,  # [P, 8] from _pair_parameters
    offsets: Tensor,  # [tile², 2] pixel-centre offsets inside a tile
    limits: Tensor,  # [2] image width, height
) -> Tensor:
    """[P, tile²] bool: pixel inside the image and σ within the pair's candidate limit."""
    px = pair_params[:, 0:1] + offsets[:, 0]
    py = pair_params[:, 1:2] + offsets[:, 1]
    a, b, c = pair_params[:, 4:5], pair_params[:, 5:6], pair_params[:, 6:7]
    sigma = gaussian_sigma(pair_params[:, 2:3] - px, pair_params[:, 3:4] - py, a, b, c)
    return (sigma <= pair_params[:, 7:8]) & (px < limits[0]) & (py < limits[1])
