"""EWA projection of 3D Gaussians to image-plane Gaussians, as gsplat 1.5's pinhole path.

Conventions: quaternions are (w, x, y, z) and need not be normalised; ``viewmats`` are world→camera
4×4 with OpenCV axes (x right, y down, z forward); ``Ks`` are 3×3 pinhole intrinsics with pixel
centres at integer + 0.5, so a camera point (x, y, z) lands at (fx·x/z + cx, fy·y/z + cy) in pixels.

Per (camera, Gaussian) this computes, like gsplat's ``fully_fused_projection``:

* the camera-frame mean and the 2D covariance J W Σ Wᵀ Jᵀ, where J is the perspective Jacobian evaluated
  at the mean with x/z and y/z clamped to the image edges plus 30% of the half field of view on each
  side (gsplat's guard against huge Jacobians off-screen);
* the dilated covariance Σ₂ + eps2d·I and its inverse as a conic (a, b, c): σ(d) = ½(a dx² + c dy²) + b dx dy;
* the antialiasing compensation √(det Σ₂ / det(Σ₂ + eps2d·I)) (Mip-Splatting), when asked;
* the integer half-extents of a screen-aligned box, ceil(k·√Σ₂ₓₓ) and ceil(k·√Σ₂ᵧᵧ), with k = 3.33, or,
  when opacities are given, the opacity-aware k = min(3.33, √(2 ln(255·opacity))) beyond which
  α < 1/255 (gsplat's CUDA kernel; its pure-PyTorch twin has no opacities and always uses 3.33);
* culling as the CUDA kernel, in its order: depth outside [near, far], det ≤ 0, (compensated) opacity
  below 1/255, both half-extents ≤ radius_clip, box entirely outside the image. A culled entry has
  radii (0, 0); its other fields are finite but meaningless.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hogsa.compiled import lazily_compiled
from hogsa.render.alpha import ALPHA_THRESHOLD

MAX_EXTENT_SIGMAS = 3.33  # gsplat's box half-extent in standard deviations


class Projection(NamedTuple):
    """Image-plane Gaussians for C cameras × N Gaussians; only entries with radii > 0 are valid."""

    radii: Tensor  # [C, N, 2] int32 box half-extents in pixels (x, y); (0, 0) = culled
    means2d: Tensor  # [C, N, 2] pixel coordinates of the projected means
    depths: Tensor  # [C, N] camera-frame z, metres
    conics: Tensor  # [C, N, 3] inverse dilated 2D covariance, upper triangle (a, b, c)
    compensations: Tensor | None  # [C, N] antialiasing opacity factor, or None when not asked


def quat_scale_to_matrix(
    quats: Tensor,  # [N, 4] wxyz, any norm
    scales: Tensor,  # [N, 3] standard deviations along the local axes, metres
) -> Tensor:
    """M = R(q)·diag(s), [N, 3, 3], so that the world covariance is Σ = M Mᵀ."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    rot = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*quats.shape[:-1], 3, 3)
    return rot * scales[..., None, :]


def small_matmul(a: Tensor, b: Tensor) -> Tensor:  # [..., I, J] @ [..., J, K] → [..., I, K]
    """A product of small matrices as broadcast products and a sum, which the compiler fuses with the
    elementwise work around it (a batched matmul of N tiny matrices is an opaque, slow library call)."""
    return (a[..., :, :, None] * b[..., None, :, :]).sum(-2)


def perspective_jacobian(
    means_cam: Tensor,  # [C, N, 3] camera frame, metres; z > 0 where it matters
    Ks: Tensor,  # [C, 3, 3]
    width: Tensor,  # [] image width in pixels (a tensor inside the compiled kernel)
    height: Tensor,  # [] image height in pixels
) -> Tensor:
    """d(pixel)/d(camera point) at the mean, [C, N, 2, 3], x/z and y/z clamped as the module says."""
    x, y, z = means_cam.unbind(-1)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    margin_x, margin_y = 0.3 * 0.5 * width / fx, 0.3 * 0.5 * height / fy
    tx = z * torch.minimum(torch.maximum(x / z, -(cx / fx + margin_x)), (width - cx) / fx + margin_x)
    ty = z * torch.minimum(torch.maximum(y / z, -(cy / fy + margin_y)), (height - cy) / fy + margin_y)
    zero = torch.zeros_like(z)
    rows = [fx / z, zero, -fx * tx / (z * z), zero, fy / z, -fy * ty / (z * z)]
    return torch.stack(rows, dim=-1).reshape(*z.shape, 2, 3)


def covariance_2d_to_conic(
    cov2d: Tensor,  # [..., 2, 2] dilated 2D covariance, pixels²
) -> tuple[Tensor, Tensor]:
    """Inverse of a symmetric 2×2 as (a, b, c) [..., 3], and its determinant [...] (≤ 0 = degenerate)."""
    sxx, sxy, syy = cov2d[..., 0, 0], cov2d[..., 0, 1], cov2d[..., 1, 1]
    det = sxx * syy - sxy * sxy
    inv_det = 1.0 / torch.where(det > 0, det, 1.0)
    return torch.stack([syy * inv_det, -sxy * inv_det, sxx * inv_det], dim=-1), det


def project_gaussians(
    means: Tensor,  # [N, 3] world, metres, or [C, N, 3]: camera c's own Gaussians
    quats: Tensor,  # [N, 4] or [C, N, 4] wxyz, any norm
    scales: Tensor,  # [N, 3] or [C, N, 3] metres
    viewmats: Tensor,  # [C, 4, 4] world→camera, OpenCV
    Ks: Tensor,  # [C, 3, 3] pixels
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    opacities: Tensor | None = None,  # [N] or [C, N] in [0, 1]; given → opacity-aware boxes and culling
    calc_compensations: bool = False,
) -> Projection:
    """Project N Gaussians into C cameras, the same Gaussians for all or (leading dimension C) each
    camera its own (see the module docstring for every rule)."""
    settings = torch.tensor([width, height, eps2d, near_plane, far_plane], dtype=means.dtype,
                            device=means.device)  # a tensor, so new values do not recompile
    if means.dim() == 2:  # one set for all cameras: the compiled kernel broadcasts a leading 1
        means, quats, scales = means[None], quats[None], scales[None]
    means2d, depths, conics, cov2d_diag, det, compensations = _project(
        means, quats, scales, viewmats, Ks, settings
    )
    with torch.no_grad():
        in_depth = (depths >= near_plane) & (depths <= far_plane)
        radii, visible = _screen_boxes(cov2d_diag, det, means2d, in_depth, opacities,
                                       compensations if calc_compensations else None,
                                       width, height, radius_clip)
    return Projection(radii * visible[..., None], means2d, depths, conics,
                      compensations if calc_compensations else None)


@lazily_compiled
def _project(
    means: Tensor,  # [1 or C, N, 3]
    quats: Tensor,  # [1 or C, N, 4]
    scales: Tensor,  # [1 or C, N, 3]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    settings: Tensor,  # [5] width, height, eps2d, near, far
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The differentiable part: means2d [C, N, 2], depths [C, N], conics [C, N, 3], the dilated
    covariance's diagonal [C, N, 2] and determinant [C, N], and compensations [C, N]."""
    width, height, eps2d, near_plane, far_plane = settings.unbind()
    rot, trans = viewmats[:, :3, :3], viewmats[:, :3, 3]  # [C, 3, 3], [C, 3]
    means_cam = small_matmul(rot[:, None], means[..., None])[..., 0] + trans[:, None, :]  # [C, N, 3]
    depths = means_cam[..., 2]
    # culled points may sit at z ≈ 0: divide by 1 there so no inf/NaN reaches the gradients
    safe_z = torch.where((depths >= near_plane) & (depths <= far_plane), depths, 1.0)
    safe_cam = torch.cat([means_cam[..., :2], safe_z[..., None]], dim=-1)

    jac = perspective_jacobian(safe_cam, Ks, width, height)  # [C, N, 2, 3]
    jw_m = small_matmul(small_matmul(jac, rot[:, None]), quat_scale_to_matrix(quats, scales))  # J W M
    cov2d = small_matmul(jw_m, jw_m.transpose(-1, -2))  # [C, N, 2, 2]
    det_orig = cov2d[..., 0, 0] * cov2d[..., 1, 1] - cov2d[..., 0, 1] * cov2d[..., 1, 0]
    cov2d = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    conics, det = covariance_2d_to_conic(cov2d)
    ratio = (det_orig / torch.where(det > 0, det, 1.0)).clamp(min=0.0)
    # a safe square root: d√x/dx is infinite at 0 (an edge-on flat Gaussian), and 0·∞ = NaN would
    # reach every gradient through the compiled backward even where compensations are unused
    compensations = torch.where(ratio > 0, ratio, 1.0).sqrt() * (ratio > 0)

    proj_xy = torch.einsum("cij,cnj->cni", Ks[:, :2, :2], safe_cam[..., :2]) / safe_z[..., None]
    means2d = proj_xy + Ks[:, None, :2, 2]  # [C, N, 2]
    cov2d_diag = torch.stack([cov2d[..., 0, 0], cov2d[..., 1, 1]], dim=-1)
    return means2d, depths, conics, cov2d_diag, det, compensations


def _screen_boxes(
    cov2d_diag: Tensor,  # [C, N, 2] variances of the dilated 2D covariance along x and y
    det: Tensor,  # [C, N] its determinant
    means2d: Tensor,  # [C, N, 2]
    in_depth: Tensor,  # [C, N] bool
    opacities: Tensor | None,  # [N], [C, N] or None
    compensations: Tensor | None,  # [C, N] or None
    width: int,
    height: int,
    radius_clip: float,
) -> tuple[Tensor, Tensor]:
    """Integer half-extents [C, N, 2] int32 and the visibility mask [C, N] (gsplat's culling)."""
    visible = in_depth & (det > 0)
    extent = torch.full_like(det, MAX_EXTENT_SIGMAS)
    if opacities is not None:
        opacity = opacities.expand_as(det) if compensations is None else opacities * compensations
        visible &= opacity >= ALPHA_THRESHOLD
        aware = (2.0 * torch.log(opacity.clamp(min=ALPHA_THRESHOLD) / ALPHA_THRESHOLD)).sqrt()
        extent = torch.minimum(extent, aware)
    radii = torch.ceil(extent[..., None] * cov2d_diag.clamp(min=0.0).sqrt())  # [C, N, 2]
    visible &= (radii > radius_clip).any(dim=-1)
    size = torch.tensor([width, height], dtype=radii.dtype, device=radii.device)
    visible &= ((means2d + radii > 0) & (means2d - radii < size)).all(dim=-1)
    return radii.int(), visible
