"""Differentiable compositing of tile-binned Gaussians by a compiled C++ kernel (``tile_composite.cpp``).

The same front-to-back compositing and gradients as ``composite.py`` (gsplat 1.5's rules, see
``alpha.py``), computed per pixel in a loop over its tile's Gaussians instead of over materialised
fragments: no candidate test, sort or segment bookkeeping, and the backward pass walks each pixel's
Gaussians back to front as gsplat's CUDA kernel does. Transmittance and blended sums are kept in
float64. Per-pair gradients are summed per Gaussian with ``index_add_`` (serial on CPU), so results do
not depend on the thread count.

The kernel is built with ``torch.utils.cpp_extension`` on first use (about a minute once per machine,
cached under ``TORCH_EXTENSIONS_DIR``, ``build_directory``). ``available()`` is False when
``HOGSA_NO_NATIVE=1`` or when the build failed (no C++ compiler): the rasterizer then composites with
``composite.py``.
"""

from __future__ import annotations

import fcntl
import functools
import os
import sys
import warnings
from pathlib import Path

import torch
from torch import Tensor

from hogsa.render.tiles import TileGrid, TileIntersections

DISABLE_ENV = "HOGSA_NO_NATIVE"
SOURCE = Path(__file__).with_suffix(".cpp")
NAME = "hogsa_tile_composite"
TORCH_BUILD_LOCK = "lock"  # torch.utils.cpp_extension's build lock: a file, not freed when its process dies


def available() -> bool:
    """Whether the compiled kernel is to be used (module docstring)."""
    return os.environ.get(DISABLE_ENV, "0") != "1" and _extension() is not None


def build_directory() -> Path:
    """Where the kernel is built: under ``TORCH_EXTENSIONS_DIR`` (default: torch's build root), one folder
    per Python and torch version."""
    from torch.utils import cpp_extension

    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root())
    return root / f"{NAME}_py{sys.version_info.major}{sys.version_info.minor}_torch{torch.__version__}"


@functools.cache
def _extension():
    """The built kernel, or None. Processes build and load it one at a time under an OS file lock, which
    a killed process releases; holding it, a torch build lock (``lock``) left by a process killed while
    building is stale and is removed (torch's own lock would make every later process wait forever)."""
    from torch.utils import cpp_extension

    folder = build_directory()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "hogsa.flock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            (folder / TORCH_BUILD_LOCK).unlink(missing_ok=True)
            return cpp_extension.load(NAME, [str(SOURCE)], extra_cflags=["-O3"], build_directory=str(folder),
                                      verbose=False)
    except (RuntimeError, OSError, ImportError) as err:  # no compiler, no ninja, a failed build
        warnings.warn(f"hogsa.render: building {SOURCE.name} failed ({type(err).__name__}: {str(err)[:200]}); "
                      f"the CPU rasterizer composites in PyTorch (slower). Set {DISABLE_ENV}=1 to skip trying.",
                      RuntimeWarning, stacklevel=3)
        return None


def tile_composite(
    isect: TileIntersections,
    grid: TileGrid,
    width: int,
    height: int,
    means2d: Tensor,  # [M, 2] packed, pixels
    conics: Tensor,  # [M, 3] packed (a, b, c)
    opacities: Tensor,  # [M] packed, effective (compensated)
    features: Tensor,  # [M, D] packed colours / depths
) -> tuple[Tensor, Tensor]:
    """Accumulated features [I, H, W, D] and alphas [I, H, W, 1] (no background)."""
    layout = (grid.tile_size, grid.tiles_x, grid.tiles_y, width, height)
    accum, alphas = _TileComposite.apply(means2d, conics, opacities, features, isect.offsets,
                                         isect.gaussian_ids, layout)
    return accum.reshape(grid.n_images, height, width, -1), alphas.reshape(grid.n_images, height, width, 1)


class _TileComposite(torch.autograd.Function):
    """(means2d, conics, opacities, features) → flat accumulated features [pixels, D] and alphas [pixels];
    ``offsets`` [T + 1] and ``ids`` [P] are the tile intersections, ``layout`` the grid and image size."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, features, offsets, ids, layout):
        inputs = [x.detach().contiguous() for x in (means2d, conics, opacities, features)]
        accum, alphas, final_t, last = _extension().forward(offsets.contiguous(), ids.contiguous(), *inputs,
                                                            *layout)
        ctx.save_for_backward(offsets, ids, *inputs, final_t, last)
        ctx.layout = layout
        return accum, alphas

    @staticmethod
    def backward(ctx, grad_accum, grad_alphas):
        offsets, ids, means2d, conics, opacities, features, final_t, last = ctx.saved_tensors
        pair_grads = _extension().backward(offsets.contiguous(), ids.contiguous(), means2d, conics, opacities,
                                           features, final_t, last, grad_accum.contiguous(),
                                           grad_alphas.contiguous(), *ctx.layout)  # [P, 6 + D]
        per_row = pair_grads.new_zeros(means2d.shape[0], pair_grads.shape[1]).index_add_(0, ids, pair_grads)
        return per_row[:, 0:2], per_row[:, 2:5], per_row[:, 5], per_row[:, 6:], None, None, None
