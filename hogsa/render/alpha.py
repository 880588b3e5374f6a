"""The per-pixel opacity of one image-plane Gaussian, with gsplat 1.5's thresholds.

A Gaussian with mean m, conic (a, b, c) and opacity o seen at pixel centre p (integer + 0.5) has
    σ = ½(a dx² + c dy²) + b dx dy,  (dx, dy) = m - p,
    α = min(MAX_ALPHA, o · exp(-σ)),
and is skipped when σ < 0 or α < ALPHA_THRESHOLD. A pixel stops at the first Gaussian that would bring
its transmittance to ≤ TRANSMITTANCE_THRESHOLD; that Gaussian is excluded (gsplat's CUDA kernel).
"""

from __future__ import annotations

from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0
MAX_ALPHA = 0.999  # gsplat 1.5's clamp (the 3DGS reference code uses 0.99)
TRANSMITTANCE_THRESHOLD = 1e-4


def gaussian_sigma(
    dx: Tensor,  # [...] mean x - pixel x, pixels
    dy: Tensor,  # [...] mean y - pixel y, pixels
    conic_a: Tensor,  # [...] conic entries (a, b, c), 1/pixels²
    conic_b: Tensor,
    conic_c: Tensor,
) -> Tensor:
    """Half the squared Mahalanobis distance, σ, [...]."""
    return 0.5 * (conic_a * dx * dx + conic_c * dy * dy) + conic_b * dx * dy


def splat_alpha(
    sigma: Tensor,  # [...]
    opacity: Tensor,  # [...] in [0, 1]
) -> Tensor:
    """α = min(MAX_ALPHA, o · exp(-σ)), [...] (thresholds are applied by the caller)."""
    return (opacity * (-sigma).exp()).clamp(max=MAX_ALPHA)
