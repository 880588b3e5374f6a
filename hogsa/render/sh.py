"""Real spherical harmonics up to degree 3, with gsplat's (and the 3DGS reference's) constants and sign
convention: basis k = l² + l + m for m = -l..l, evaluated at the unit view direction from the camera
centre to the Gaussian (``means - campos``, world frame). The rendered colour is then
``max(Σ_k coeffs_k · Y_k(dir) + 0.5, 0)`` (``sh_colors``; ``rasterize`` adds the 0.5 and the clamp), so a
degree-0 coefficient c₀ gives the colour c₀·C0 + 0.5 with C0 = Y₀⁰ = 1 / (2√π) = 0.28209479…, and the
colour c is given by the coefficient (c − 0.5) / C0 (``rgb_to_sh_dc``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SH_C0 = 0.2820947917738781  # Y_0^0 = 1 / (2√π), gsplat's (and the 3DGS reference's) literal


def num_sh_bases(degree: int) -> int:
    """(degree + 1)² coefficients per colour channel."""
    return (degree + 1) ** 2


def sh_bases(
    degree: int,
    dirs: Tensor,  # [..., 3] unit directions
) -> Tensor:
    """The first (degree + 1)² real SH bases at ``dirs``, [..., (degree + 1)²] (Sloan 2013 form)."""
    if not 0 <= degree <= 3:
        raise ValueError(f"sh degree must be in 0..3, got {degree}")
    bases = [torch.full_like(dirs[..., 0], SH_C0)]
    if degree >= 1:
        x, y, z = dirs.unbind(-1)
        bases += [-0.48860251190292 * y, 0.48860251190292 * z, -0.48860251190292 * x]
    if degree >= 2:
        z2 = z * z
        c1, s1 = x * x - y * y, 2 * x * y
        bases += [
            0.5462742152960395 * s1,
            -1.092548430592079 * z * y,
            0.9461746957575601 * z2 - 0.3153915652525201,
            -1.092548430592079 * z * x,
            0.5462742152960395 * c1,
        ]
    if degree >= 3:
        c2, s2 = x * c1 - y * s1, x * s1 + y * c1
        tmp_c = -2.285228997322329 * z2 + 0.4570457994644658
        bases += [
            -0.5900435899266435 * s2,
            1.445305721320277 * z * s1,
            tmp_c * y,
            z * (1.865881662950577 * z2 - 1.119528997770346),
            tmp_c * x,
            1.445305721320277 * z * c1,
            -0.5900435899266435 * c2,
        ]
    return torch.stack(bases, dim=-1)


def eval_sh(
    degree: int,
    dirs: Tensor,  # [..., 3] view directions, any length (normalised here)
    coeffs: Tensor,  # [..., K, 3] with K ≥ (degree + 1)²; extra bands are ignored
) -> Tensor:
    """Σ_k coeffs_k Y_k(dir / |dir|), [..., 3] (without gsplat's + 0.5 offset)."""
    n_bases = num_sh_bases(degree)
    if coeffs.shape[-2] < n_bases:
        raise ValueError(f"sh degree {degree} needs {n_bases} coefficients, got {coeffs.shape[-2]}")
    bases = sh_bases(degree, F.normalize(dirs, dim=-1))  # [..., n_bases]
    return torch.einsum("...k,...kc->...c", bases, coeffs[..., :n_bases, :])


def sh_colors(
    degree: int,
    dirs: Tensor,  # [..., 3] view directions (camera → Gaussian), any length
    coeffs: Tensor,  # [..., K, 3] SH coefficients, K ≥ (degree + 1)²
) -> Tensor:  # [..., 3] RGB, ≥ 0
    """The colour the rasterizer gives SH coefficients seen along ``dirs``: max(SH(dir) + 0.5, 0)."""
    return (eval_sh(degree, dirs, coeffs) + 0.5).clamp_min(0.0)


def rgb_to_sh_dc(rgb: Tensor) -> Tensor:  # [..., 3] in [0, 1] → [..., 3]
    """The degree-0 coefficients whose colour is ``rgb`` (the inverse of ``sh_colors`` at degree 0)."""
    return (rgb - 0.5) / SH_C0
