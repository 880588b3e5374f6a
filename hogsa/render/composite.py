"""Differentiable front-to-back alpha compositing over fragments (paper Eq. 5 with gsplat's rules).

For a pixel whose candidate fragments i = 1..n come front to back (``fragments.py``),
    C = Σ_i f_i α_i T_i,   T_i = Π_{j<i, j kept} (1 - α_j),   A = Σ_i α_i T_i,
where f are the Gaussians' features (colours, depth, ...), fragment i is kept when σ_i ≥ 0 and
α_i ≥ 1/255, and contributes when it is kept and its inclusive transmittance T_i (1 - α_i) is > 1e-4
(``alpha.py``). T_i comes from a segmented exclusive cumulative sum of log(1 - α) in float64 (one
running sum over all pixels, minus the sum before the pixel's segment).

The backward pass is written out (a custom autograd Function), as gsplat's kernel: with
v_i = α_i T_i (f_i·∂L/∂C + ∂L/∂A) and the suffix s_i = Σ_{j>i} v_j of the same pixel,
    ∂L/∂α_i = v_i / α_i - s_i / (1 - α_i),   ∂L/∂f_i = α_i T_i ∂L/∂C,
then through α = o·exp(-σ) (zero where α is clamped to 0.999) to the means, conics and opacities.
Per-fragment gradients are summed per Gaussian with ``index_add_``.
Which fragments contribute is fixed by the forward pass, as in gsplat.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hogsa.compiled import lazily_compiled
from hogsa.render.alpha import (
    ALPHA_THRESHOLD,
    MAX_ALPHA,
    TRANSMITTANCE_THRESHOLD,
    gaussian_sigma,
    splat_alpha,
)
from hogsa.render.fragments import Fragments, pixel_centres

LOG_TRANSMITTANCE_THRESHOLD = math.log(TRANSMITTANCE_THRESHOLD)


def composite(
    fragments: Fragments,
    width: int,
    height: int,
    n_images: int,
    means2d: Tensor,  # [M, 2] packed, pixels
    conics: Tensor,  # [M, 3] packed (a, b, c)
    opacities: Tensor,  # [M] packed, effective (compensated)
    features: Tensor,  # [M, D] packed colours / depths
) -> tuple[Tensor, Tensor]:
    """Accumulated features [I, H, W, D] and alphas [I, H, W, 1] (no background)."""
    size = torch.tensor([width, height], device=means2d.device)
    accum, alphas = _Composite.apply(
        means2d, conics, opacities, features, fragments, size, n_images * height * width
    )
    return accum.reshape(n_images, height, width, -1), alphas.reshape(n_images, height, width, 1)


class _Composite(torch.autograd.Function):
    """Fragments → flat accumulated features [pixels, D] and alphas [pixels]; arguments as ``composite``
    plus ``size`` [2] int64 (width, height) and the number of pixels of all images."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, features, fragments: Fragments, size, n_pixels):
        means2d, conics, opacities, features = (
            x.detach().contiguous() for x in (means2d, conics, opacities, features)
        )
        log_survival = _log_survival(fragments.rows, fragments.pixels, size, means2d, conics, opacities)
        log_total = torch.cumsum(log_survival, 0, dtype=torch.float64)
        weights, weighted = _weights(log_survival, log_total, fragments.segment_ids,
                                     fragments.segment_first, fragments.rows, features)
        sums = _segment_sum(weighted, fragments.segment_last - fragments.segment_first + 1)
        out = weighted.new_zeros(n_pixels, weighted.shape[1])
        out.index_copy_(0, fragments.segment_pixels, sums)
        ctx.save_for_backward(means2d, conics, opacities, features, weights)
        ctx.fragments, ctx.size = fragments, size
        return out[:, :-1], out[:, -1]

    @staticmethod
    def backward(ctx, grad_accum, grad_alphas):
        means2d, conics, opacities, features, weights = ctx.saved_tensors
        frags = ctx.fragments
        grad_accum = grad_accum.contiguous()
        grad_alphas = grad_alphas.contiguous()
        visible_grad = _visible_grad(weights, features, frags.rows, frags.pixels, grad_accum,
                                     grad_alphas)
        running = torch.cumsum(visible_grad, 0, dtype=torch.float64)
        per_fragment = _fragment_grads(
            running, visible_grad, weights, frags.rows, frags.pixels, frags.segment_ids,
            frags.segment_last, ctx.size, means2d, conics, opacities, grad_accum,
        )  # [E, 6 + D]
        per_row = _sum_by_row(per_fragment, frags.rows, means2d.shape[0])
        return per_row[:, 0:2], per_row[:, 2:5], per_row[:, 5], per_row[:, 6:], None, None, None


def _segment_sum(
    values: Tensor,  # [E, K] grouped in consecutive segments
    lengths: Tensor,  # [S] int64 segment lengths, summing to E
) -> Tensor:
    """Per-segment sums, [S, K] (segment_reduce, which rejects empty input)."""
    if values.shape[0] == 0:
        return values.new_zeros(lengths.shape[0], values.shape[1])
    return torch.segment_reduce(values, "sum", lengths=lengths, axis=0)


def _sum_by_row(
    per_fragment: Tensor,  # [E, K]
    rows: Tensor,  # [E] int64 in [0, M)
    n_rows: int,
) -> Tensor:
    """Σ of per-fragment values per row, [M, K] (CPU index_add_ is serial, hence deterministic)."""
    return per_fragment.new_zeros(n_rows, per_fragment.shape[1]).index_add_(0, rows, per_fragment)


@lazily_compiled
def _log_survival(
    rows: Tensor,  # [E]
    pixels: Tensor,  # [E]
    size: Tensor,  # [2] int64 (width, height)
    means2d: Tensor,  # [M, 2]
    conics: Tensor,  # [M, 3]
    opacities: Tensor,  # [M]
) -> Tensor:
    """log(1 - α) per fragment, [E]; exactly 0 where gsplat skips the Gaussian (σ < 0 or α < 1/255)."""
    px, py = pixel_centres(pixels, size, means2d.dtype)
    sigma = gaussian_sigma(means2d[rows, 0] - px, means2d[rows, 1] - py,
                           conics[rows, 0], conics[rows, 1], conics[rows, 2])
    alpha = splat_alpha(sigma, opacities[rows])
    skipped = (sigma < 0) | (alpha < ALPHA_THRESHOLD)
    return torch.where(skipped, 0.0, torch.log1p(-alpha))


@lazily_compiled
def _weights(
    log_survival: Tensor,  # [E] log(1 - α), 0 where skipped
    log_total: Tensor,  # [E] float64 running sum of log_survival over all fragments
    segment_ids: Tensor,  # [E]
    segment_first: Tensor,  # [S]
    rows: Tensor,  # [E]
    features: Tensor,  # [M, D]
) -> tuple[Tensor, Tensor]:
    """Blend weights α_i T_i [E] (0 unless contributing) and [E, D + 1] = (weight · f_i, weight)."""
    first = segment_first[segment_ids]
    log_before = log_total - log_survival - (log_total[first] - log_survival[first])  # exclusive
    contributes = (log_survival < 0) & (log_before + log_survival > LOG_TRANSMITTANCE_THRESHOLD)
    alpha = -torch.expm1(log_survival)
    weights = torch.where(contributes, alpha * torch.exp(log_before).to(alpha.dtype), 0.0)
    return weights, torch.cat([weights[:, None] * features[rows], weights[:, None]], dim=1)


@lazily_compiled
def _visible_grad(
    weights: Tensor,  # [E]
    features: Tensor,  # [M, D]
    rows: Tensor,  # [E]
    pixels: Tensor,  # [E]
    grad_accum: Tensor,  # [pixels, D]
    grad_alphas: Tensor,  # [pixels]
) -> Tensor:
    """v_i = α_i T_i (f_i · ∂L/∂C + ∂L/∂A), [E]."""
    return weights * ((features[rows] * grad_accum[pixels]).sum(dim=1) + grad_alphas[pixels])


@lazily_compiled
def _fragment_grads(
    running: Tensor,  # [E] float64 running sum of visible_grad over all fragments
    visible_grad: Tensor,  # [E] v_i
    weights: Tensor,  # [E] α_i T_i
    rows: Tensor,  # [E]
    pixels: Tensor,  # [E]
    segment_ids: Tensor,  # [E]
    segment_last: Tensor,  # [S]
    size: Tensor,  # [2]
    means2d: Tensor,  # [M, 2]
    conics: Tensor,  # [M, 3]
    opacities: Tensor,  # [M]
    grad_accum: Tensor,  # [pixels, D]
) -> Tensor:
    """Per fragment ∂L/∂(mean x, mean y, a, b, c, opacity, f_1..f_D), [E, 6 + D]."""
    suffix = (running[segment_last[segment_ids]] - running).to(weights.dtype)  # Σ_{j>i} v_j
    px, py = pixel_centres(pixels, size, means2d.dtype)
    dx, dy = means2d[rows, 0] - px, means2d[rows, 1] - py
    a, b, c = conics[rows, 0], conics[rows, 1], conics[rows, 2]
    sigma = gaussian_sigma(dx, dy, a, b, c)
    falloff = torch.exp(-sigma)
    raw_alpha = opacities[rows] * falloff
    alpha = raw_alpha.clamp(max=MAX_ALPHA)
    contributes = weights > 0
    safe_alpha = torch.where(contributes, alpha, 1.0)
    grad_alpha = torch.where(contributes, visible_grad / safe_alpha - suffix / (1.0 - alpha), 0.0)
    grad_alpha = torch.where(raw_alpha <= MAX_ALPHA, grad_alpha, 0.0)  # clamped α: no gradient
    grad_sigma = -raw_alpha * grad_alpha
    geometry = torch.stack([
        grad_sigma * (a * dx + b * dy), grad_sigma * (b * dx + c * dy),
        0.5 * grad_sigma * dx * dx, grad_sigma * dx * dy, 0.5 * grad_sigma * dy * dy,
        falloff * grad_alpha,
    ], dim=1)
    return torch.cat([geometry, weights[:, None] * grad_accum[pixels]], dim=1)
