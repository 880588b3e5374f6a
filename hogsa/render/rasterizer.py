"""``rasterize``: gsplat 1.5's ``rasterization`` for one set of Gaussians and a subset of its arguments,
with one signature for two back-ends: CUDA tensors go to ``gsplat.rasterization``, CPU tensors to
hogsa's tile rasterizer: projection.py → tiles.py → tile_composite.py, a C++ kernel compiled on first
use, or, where it cannot be built, PyTorch's fragments.py → composite.py (the same compositing).

Batches. Besides N Gaussians seen by C cameras, ``rasterize`` takes B sets of N Gaussians, each seen by
its own C cameras (gsplat 1.5's leading batch dimension: means [B, N, 3], viewmats [B, C, 4, 4], images
[B, C, H, W, X]), e.g. the frames of a training step, each at its own pose. On the CPU a batch is one
pass over B·C images; on CUDA each set is one ``gsplat.rasterization`` call. A batched call's ``meta``
holds the per-(camera, Gaussian) arrays [B, C, N, ...] ("radii", "means2d", "depths", "conics",
"opacities", always unpacked) and the sizes.

Conventions: quaternions wxyz (any norm); ``viewmats`` world→camera, OpenCV axes; ``Ks`` with pixel
centres at integer + 0.5; scales are standard deviations in metres; opacities in [0, 1].

The CPU path reproduces gsplat's semantics: EWA projection with eps2d dilation (``projection.py``),
α = min(0.999, o·exp(-σ)) skipped below 1/255, front-to-back compositing stopping before the Gaussian
that would bring transmittance to ≤ 1e-4 (``alpha.py``), background added as T_final·background, depth
"D" = Σ wᵢzᵢ and "ED" = D / max(alpha, 1e-10), SH colours max(SH(dir) + 0.5, 0) with dir = mean - camera
centre. The α clamp is gsplat 1.5's 0.999 (the 3DGS reference code has 0.99). One default differs from
gsplat's: ``packed`` is False (gsplat: True) so that ``meta`` holds the per-(camera, Gaussian) arrays
hogsa reads. ``tile_size`` is 16 on both back-ends (the CPU image does not depend on it).

``meta`` (both back-ends; with packed=True each [C, N, ...] becomes [nnz, ...] over visible pairs):
    "radii"          [C, N, 2] int32 screen box half-extents in pixels; (0, 0) = culled
    "means2d"        [C, N, 2] projected means in pixels; the very tensor the image was computed from,
                     so ``meta["means2d"].retain_grad()`` gives the screen-space gradient
    "depths"         [C, N] camera-frame z, metres
    "conics"         [C, N, 3] inverse dilated 2D covariance (a, b, c)
    "opacities"      [C, N] opacities used for compositing (× compensation when antialiased)
    "camera_ids", "gaussian_ids"  [nnz] int64 when packed, else None
    "tiles_per_gauss" [C, N] (or [nnz]) tiles each Gaussian touches
    "flatten_ids"    [n_isects] Gaussian of each (tile, Gaussian) pair, C·N-flat (nnz-flat if packed)
    "isect_offsets"  [C, tile_height, tile_width] first pair of each tile
    "tile_width", "tile_height", "tile_size", "width", "height", "n_cameras"
Only entries with radii > 0 are meaningful.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

import torch
from torch import Tensor

from hogsa.render import tile_composite
from hogsa.render.composite import composite
from hogsa.render.fragments import build_fragments
from hogsa.render.projection import Projection, project_gaussians
from hogsa.render.sh import sh_colors
from hogsa.render.tiles import (
    TileGrid,
    TileIntersections,
    chunk_pairs,
    intersect_tiles,
    make_grid,
)

RenderMode = Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"]
RasterizeMode = Literal["classic", "antialiased"]
RENDER_MODES = get_args(RenderMode)
RASTERIZE_MODES = get_args(RasterizeMode)
GSPLAT_TILE_SIZE = 16  # gsplat's default
CPU_TILE_SIZE = 16  # fastest here with the compiled compositing (gsplat's default too)
MAX_CHUNK_ELEMENTS = 2**23  # (pair, tile pixel) tests per chunk: bounds the CPU path's transient memory


def rasterize(
    means: Tensor,  # [(B,) N, 3] world, metres
    quats: Tensor,  # [(B,) N, 4] wxyz, any norm
    scales: Tensor,  # [(B,) N, 3] standard deviations, metres
    opacities: Tensor,  # [(B,) N] in [0, 1]
    colors: Tensor,  # [(B,) (C,) N, D]; SH coefficients [(B,) (C,) N, K, 3] with sh_degree
    viewmats: Tensor,  # [(B,) C, 4, 4] world→camera, OpenCV
    Ks: Tensor,  # [(B,) C, 3, 3] pixels
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    sh_degree: int | None = None,
    packed: bool = False,  # gsplat defaults to True; False keeps meta as [C, N, ...] (module doc)
    tile_size: int | None = None,  # None: GSPLAT_TILE_SIZE on CUDA, CPU_TILE_SIZE on CPU (both 16)
    backgrounds: Tensor | None = None,  # [(B,) C, D] (D = colour channels)
    render_mode: RenderMode = "RGB",
    rasterize_mode: RasterizeMode = "classic",
) -> tuple[Tensor, Tensor, dict]:
    """Render C images of N Gaussians (of each of B sets): colours [(B,) C, H, W, X] (X = D, 1 or D + 1
    by render_mode), alphas [(B,) C, H, W, 1] and meta (module docstring). Differentiable w.r.t. means,
    quats, scales, opacities, colors and backgrounds (not Ks)."""
    device = means.device.type
    if device not in ("cuda", "cpu"):
        raise ValueError(f"rasterize: tensors on {means.device}; expected 'cuda' (gsplat) or 'cpu'")
    tile_size = tile_size or (GSPLAT_TILE_SIZE if device == "cuda" else CPU_TILE_SIZE)
    settings = (width, height, near_plane, far_plane, radius_clip, eps2d, sh_degree, packed, tile_size)
    if means.dim() == 3:
        return _rasterize_batch(means, quats, scales, opacities, colors, viewmats, Ks, backgrounds, settings,
                                render_mode, rasterize_mode)
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree, backgrounds,
                  render_mode, rasterize_mode)
    args = (means, quats, scales, opacities, colors, viewmats, Ks, *settings, backgrounds, render_mode,
            rasterize_mode)
    return _rasterize_gsplat(*args) if device == "cuda" else _rasterize_cpu(*args)


BATCH_META = ("radii", "means2d", "depths", "conics", "opacities")  # what a batched call's meta holds


def _rasterize_batch(means, quats, scales, opacities, colors, viewmats, Ks, backgrounds, settings, render_mode,
                     rasterize_mode) -> tuple[Tensor, Tensor, dict]:
    """B sets of Gaussians, set b seen by cameras viewmats[b] (module docstring, "Batches")."""
    width, height, near_plane, far_plane, radius_clip, eps2d, sh_degree, _packed, tile_size = settings  # never packed
    b = means.shape[0]
    for name, tensor in {"quats": quats, "scales": scales, "opacities": opacities, "colors": colors,
                         "viewmats": viewmats, "Ks": Ks, "backgrounds": backgrounds}.items():
        if tensor is not None and (tensor.dim() < 2 or tensor.shape[0] != b):
            raise ValueError(f"batched rasterize: means are [B={b}, N, 3], so {name} needs B={b} leading "
                             f"entries, got {list(tensor.shape)}")
    for i in range(b):
        _check_inputs(means[i], quats[i], scales[i], opacities[i], colors[i], viewmats[i], Ks[i], sh_degree,
                      None if backgrounds is None else backgrounds[i], render_mode, rasterize_mode)
    c, n = viewmats.shape[1], means.shape[1]
    if means.device.type == "cuda":
        parts = [_rasterize_gsplat(means[i], quats[i], scales[i], opacities[i], colors[i], viewmats[i], Ks[i],
                                   width, height, near_plane, far_plane, radius_clip, eps2d, sh_degree, False,
                                   tile_size, None if backgrounds is None else backgrounds[i], render_mode,
                                   rasterize_mode) for i in range(b)]
        render, alphas = torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts])
        meta = {key: torch.stack([p[2][key] for p in parts]) for key in BATCH_META}
    else:  # one pass over the B·C images, image i = (b, c) showing set b
        def per_image(x: Tensor) -> Tensor:  # [B, N, ...] → [B·C, N, ...]
            return x[:, None].expand(b, c, *x.shape[1:]).flatten(0, 1)

        per_camera_colors = colors.dim() == (4 if sh_degree is None else 5)
        render, alphas, flat_meta = _rasterize_cpu(
            per_image(means), per_image(quats), per_image(scales), per_image(opacities),
            colors.flatten(0, 1) if per_camera_colors else per_image(colors), viewmats.flatten(0, 1),
            Ks.flatten(0, 1), width, height, near_plane, far_plane, radius_clip, eps2d, sh_degree, False, tile_size,
            None if backgrounds is None else backgrounds.flatten(0, 1), render_mode, rasterize_mode)
        render, alphas = render.unflatten(0, (b, c)), alphas.unflatten(0, (b, c))
        meta = {key: flat_meta[key].unflatten(0, (b, c)) for key in BATCH_META}
    meta.update({"width": width, "height": height, "n_cameras": c, "n_gaussians": n})
    return render, alphas, meta


def _rasterize_gsplat(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane,
                      far_plane, radius_clip, eps2d, sh_degree, packed, tile_size, backgrounds,
                      render_mode, rasterize_mode):
    try:
        import gsplat
    except ImportError as err:
        raise ImportError("rasterize on CUDA tensors needs gsplat: pip install gsplat==1.5.3") from err
    return gsplat.rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane=near_plane,
        far_plane=far_plane, radius_clip=radius_clip, eps2d=eps2d, sh_degree=sh_degree, packed=packed,
        tile_size=tile_size, backgrounds=backgrounds, render_mode=render_mode,
        rasterize_mode=rasterize_mode,
    )


class _Packed(NamedTuple):
    """The M visible (camera, Gaussian) entries of a projection, as flat arrays."""

    camera_ids: Tensor  # [M] int64
    gaussian_ids: Tensor  # [M] int64
    flat_ids: Tensor  # [M] int64 camera_ids · N + gaussian_ids, into C·N-flattened arrays
    radii: Tensor  # [M, 2] int32
    means2d: Tensor  # [M, 2]
    depths: Tensor  # [M]
    conics: Tensor  # [M, 3]
    opacities: Tensor  # [M] effective (× compensation when antialiased)


def _rasterize_cpu(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane,
                   far_plane, radius_clip, eps2d, sh_degree, packed, tile_size, backgrounds,
                   render_mode, rasterize_mode):
    """The CPU path; means, quats, scales and opacities may carry a leading C (camera c's own Gaussians)."""
    proj = project_gaussians(
        means, quats, scales, viewmats, Ks, width, height, eps2d, near_plane, far_plane, radius_clip,
        opacities=opacities, calc_compensations=rasterize_mode == "antialiased",
    )
    used_opacities = opacities.expand(viewmats.shape[0], -1)  # [C, N]
    if proj.compensations is not None:
        used_opacities = used_opacities * proj.compensations
    visible = _pack_visible(proj, used_opacities)
    features = _features(colors, sh_degree, means, viewmats, visible, render_mode)  # [M, X]
    grid = make_grid(width, height, tile_size, viewmats.shape[0])
    isect = intersect_tiles(visible.means2d, visible.radii, visible.depths, visible.camera_ids, grid)
    if tile_composite.available():
        accum, alphas = tile_composite.tile_composite(isect, grid, width, height, visible.means2d, visible.conics,
                                                      visible.opacities, features)
    else:
        accum, alphas = _composite_in_runs(isect, grid, width, height, visible, features)
    render = _finish(accum, alphas, backgrounds, render_mode)
    meta = _packed_meta(visible, isect) if packed else _meta(proj, used_opacities, visible, isect)
    meta.update({
        "isect_offsets": isect.offsets[:-1].reshape(grid.n_images, grid.tiles_y, grid.tiles_x),
        "tile_width": grid.tiles_x, "tile_height": grid.tiles_y, "tile_size": tile_size,
        "width": width, "height": height, "n_cameras": grid.n_images,
    })
    return render, alphas, meta


def _pack_visible(
    proj: Projection,
    used_opacities: Tensor,  # [C, N]
) -> _Packed:
    """Gather the entries with radii > 0 (differentiably, with index_select)."""
    n_gaussians = proj.depths.shape[1]
    camera_ids, gaussian_ids = (proj.radii > 0).all(dim=-1).nonzero(as_tuple=True)
    flat_ids = camera_ids * n_gaussians + gaussian_ids

    def pack(x: Tensor) -> Tensor:  # [C, N, ...] → [M, ...]
        return x.flatten(0, 1).index_select(0, flat_ids)

    return _Packed(camera_ids, gaussian_ids, flat_ids, pack(proj.radii), pack(proj.means2d),
                   pack(proj.depths), pack(proj.conics), pack(used_opacities))


def _composite_in_runs(
    isect: TileIntersections,
    grid: TileGrid,
    width: int,
    height: int,
    visible: _Packed,
    features: Tensor,  # [M, X]
) -> tuple[Tensor, Tensor]:
    """Composite run by run of tiles (bounded memory); runs cover disjoint pixels, so the images add."""
    accum = alphas = None
    for run in chunk_pairs(isect, MAX_CHUNK_ELEMENTS // grid.tile_size**2):
        fragments = build_fragments(isect.tile_ids[run], isect.gaussian_ids[run], grid, width, height,
                                    visible.means2d, visible.conics, visible.opacities)
        run_accum, run_alphas = composite(fragments, width, height, grid.n_images, visible.means2d,
                                          visible.conics, visible.opacities, features)
        accum = run_accum if accum is None else accum + run_accum
        alphas = run_alphas if alphas is None else alphas + run_alphas
    return accum, alphas


def _packed_meta(visible: _Packed, isect: TileIntersections) -> dict:
    return {"camera_ids": visible.camera_ids, "gaussian_ids": visible.gaussian_ids, "radii": visible.radii,
            "means2d": visible.means2d, "depths": visible.depths, "conics": visible.conics,
            "opacities": visible.opacities, "tiles_per_gauss": isect.tiles_per_gaussian,
            "flatten_ids": isect.gaussian_ids}


def _meta(proj: Projection, used_opacities: Tensor, visible: _Packed, isect: TileIntersections) -> dict:
    tiles_per_gauss = torch.zeros_like(proj.depths, dtype=torch.int64)
    tiles_per_gauss.view(-1)[visible.flat_ids] = isect.tiles_per_gaussian
    return {"camera_ids": None, "gaussian_ids": None, "radii": proj.radii, "means2d": proj.means2d,
            "depths": proj.depths, "conics": proj.conics, "opacities": used_opacities,
            "tiles_per_gauss": tiles_per_gauss, "flatten_ids": visible.flat_ids[isect.gaussian_ids]}


def _features(
    colors: Tensor,  # [N, D] / [C, N, D] or SH [N, K, 3] / [C, N, K, 3]
    sh_degree: int | None,
    means: Tensor,  # [N, 3], or [C, N, 3] per camera
    viewmats: Tensor,  # [C, 4, 4]
    visible: _Packed,
    render_mode: str,
) -> Tensor:
    """Per visible entry, what is composited: colours, depth, or colours then depth, [M, X]."""
    depths = visible.depths[:, None]
    if render_mode in ("D", "ED"):
        return depths
    if colors.dim() == (3 if sh_degree is None else 4):  # per camera
        picked = colors.flatten(0, 1).index_select(0, visible.flat_ids)
    else:
        picked = colors.index_select(0, visible.gaussian_ids)
    if sh_degree is not None:
        camera_centres = torch.linalg.inv(viewmats)[:, :3, 3]  # [C, 3]
        centres = camera_centres.index_select(0, visible.camera_ids)
        picked_means = (means.flatten(0, 1).index_select(0, visible.flat_ids) if means.dim() == 3
                        else means.index_select(0, visible.gaussian_ids))
        dirs = picked_means - centres
        picked = sh_colors(sh_degree, dirs, picked)
    return picked if render_mode == "RGB" else torch.cat([picked, depths], dim=-1)


def _finish(
    accum: Tensor,  # [C, H, W, X] accumulated features
    alphas: Tensor,  # [C, H, W, 1]
    backgrounds: Tensor | None,  # [C, D] or None
    render_mode: str,
) -> Tensor:
    """Add the background (colour channels only) behind T_final and normalise "ED" depth."""
    if backgrounds is not None and render_mode not in ("D", "ED"):
        n_colour = backgrounds.shape[-1]
        colour = accum[..., :n_colour] + (1.0 - alphas) * backgrounds[:, None, None, :]
        accum = torch.cat([colour, accum[..., n_colour:]], dim=-1)
    if render_mode in ("ED", "RGB+ED"):
        accum = torch.cat([accum[..., :-1], accum[..., -1:] / alphas.clamp(min=1e-10)], dim=-1)
    return accum


def _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree, backgrounds,
                  render_mode, rasterize_mode) -> None:
    """Raise ValueError naming the argument whose shape or value is not what gsplat expects."""
    if render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    if rasterize_mode not in RASTERIZE_MODES:
        raise ValueError(f"rasterize_mode must be one of {RASTERIZE_MODES}, got {rasterize_mode!r}")
    n, c = means.shape[0], viewmats.shape[0]
    expected = {"means": (means, (n, 3)), "quats": (quats, (n, 4)), "scales": (scales, (n, 3)),
                "opacities": (opacities, (n,)), "viewmats": (viewmats, (c, 4, 4)), "Ks": (Ks, (c, 3, 3))}
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have shape {list(shape)}, got {list(tensor.shape)}")
        if tensor.device != means.device:
            raise ValueError(f"{name} is on {tensor.device}, means on {means.device}")
    per_camera_dims, point_dims = (3, 2) if sh_degree is None else (4, 3)
    shape = list(colors.shape)
    if colors.dim() not in (point_dims, per_camera_dims) or shape[-point_dims] != n:
        layout = "[N, D] or [C, N, D]" if sh_degree is None else "SH [N, K, 3] or [C, N, K, 3]"
        raise ValueError(f"colors must be {layout} with N={n}, got {shape}")
    if sh_degree is not None and shape[-1] != 3:
        raise ValueError(f"SH colors need 3 channels last, got {shape}")
    if colors.dim() == per_camera_dims and shape[0] != c:
        raise ValueError(f"per-camera colors need C={c} leading entries, got {shape}")
    if colors.device != means.device:
        raise ValueError(f"colors is on {colors.device}, means on {means.device}")
    if backgrounds is not None and list(backgrounds.shape) != [c, shape[-1]]:
        raise ValueError(f"backgrounds must be [C, D] = {[c, shape[-1]]}, got {list(backgrounds.shape)}")
