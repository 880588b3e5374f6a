"""Gaussians bound to a triangle mesh, as GaMeS (Waczyńska et al. 2024) and HOGSA §3.2 do.

Each face (v1, v2, v3) = vertices[faces[f]] carries k Gaussians. A Gaussian's centre is a convex
combination α·(v1, v2, v3) of its face's vertices; its rotation is the face's frame and its scales are
the face's extents times a trained factor, so the Gaussian lies flat in the face's plane. Frames and
extents are recomputed from the vertices passed in at every call: to deform the Gaussians, pose the
mesh (LBS, rigid motion, trained vertex offsets) and pass the posed vertices; individual Gaussians are
never skinned.

Conventions: metres; rotation matrices act on column vectors and their COLUMNS are the Gaussian's axes
(first = face normal); quaternions are (w, x, y, z) as gsplat's; Gaussian n = f·k + j is the j-th
Gaussian of face f. Scales are standard deviations per axis (gsplat's ``scales``), covariance
Σ = R diag(s)² Rᵀ. Colours are degree-d real spherical harmonics in gsplat's layout [N, (d+1)², 3],
colour = 0.5 + C0·sh_dc at degree 0 (``hogsa.render.sh``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import rotation_matrix_to_quaternion
from torch import Tensor, nn

from hogsa.compiled import lazily_compiled

_BARY_FLOOR = 1e-8  # the reference's floor: keeps α > 0 and the normaliser > 0
LR_KEYS = ("bary", "scale", "opacity", "sh_dc", "sh_rest")


def face_frames(
    vertices: Tensor,  # [..., V, 3] metres
    faces: Tensor,  # [F, 3] long, vertex ids (v1, v2, v3)
    eps: float = 1e-12,
) -> tuple[Tensor, Tensor]:
    """Per-face orthonormal frame and in-plane half extents (GaMeS).

    With centroid m: r1 = unit normal of (v2 − v1) × (v3 − v1); r2 = (v1 − m)/|v1 − m| (re-projected
    onto the face plane, a no-op in exact arithmetic that keeps R orthonormal in float32);
    r3 = r1 × r2. Extents (s2, s3) = (|v1 − m|/2, ⟨v3 − m, −r3⟩/2).

    Choices, against the sources:
    - r3. GaMeS takes r3 = Gram–Schmidt of (v3 − m) against r1, r2. For every non-degenerate face that
      is −(r1 × r2), so [r1, r2, r3_GS] is a reflection (det −1) that no quaternion represents. A
      Gaussian is symmetric under flipping an axis, so r3 = r1 × r2 gives the same covariance as the
      reference with det +1. s3 = ⟨v3 − m, r3_GS⟩/2 as the reference (≥ 0; clamped at 0 for faces so
      degenerate that rounding would make it negative).
    - Extents. We follow the reference code (|v1 − m|/2, component of v3 − m across r2, halved), not
      the paper's text (s1 = s2 = |m − v2|, s3 = ⟨v2, r3⟩): the paper's s3 projects the absolute
      position v2, which is not translation invariant, so it cannot be what was run.
    - Vertex labels. The reference code indexes from 0 and points r2 at ``triangles[:, 1]`` and builds
      r3 from ``triangles[:, 2]``; here r2 points at faces[:, 0] and r3 comes from faces[:, 2]. As
      (v1−m) + (v2−m) + (v3−m) = 0, the two differ only by a cyclic relabelling of each face
      (ours on (a, b, c) = reference on (c, a, b)), which leaves the mesh unchanged.

    Degenerate faces (zero area, coincident vertices) give finite values and finite gradients (norms
    clamped at ``eps``); their frames are meaningless and their extents ≈ 0.

    Returns rotations [..., F, 3, 3] with columns [r1, r2, r3] and half_extents [..., F, 2] = (s2, s3)
    in metres.
    """
    tri = vertices[..., faces, :]  # [..., F, 3 corners, 3 xyz]
    v1, v2, v3 = tri.unbind(-2)
    centroid = tri.mean(-2)  # [..., F, 3]
    r1 = _unit(torch.cross(v2 - v1, v3 - v1, dim=-1), eps)
    d1 = v1 - centroid
    r2 = _unit(d1 - (d1 * r1).sum(-1, keepdim=True) * r1, eps)
    r3 = torch.cross(r1, r2, dim=-1)
    s2 = 0.5 * torch.linalg.vector_norm(d1, dim=-1)
    s3 = 0.5 * ((v3 - centroid) * -r3).sum(-1).clamp_min(0.0)
    return torch.stack([r1, r2, r3], dim=-1), torch.stack([s2, s3], dim=-1)


def barycentric_weights(logits: Tensor) -> Tensor:  # [F, k, 3] → [F, k, 3]
    """Map unconstrained logits onto the simplex: α = (relu(a) + 1e-8) / Σ (relu(a) + 1e-8).

    Exactly the GaMeS reference activation, kept (rather than softmax) for three reasons: its lr (1e-3)
    and U(0, 1) initialisation were tuned for it; it reaches the triangle's edges exactly (α_i = 0
    once a_i ≤ 0), so a Gaussian can sit on an edge; softmax would start every Gaussian near the
    centroid (weights within a factor e of each other). Its cost: relu has zero gradient for a_i < 0,
    so a component that went negative stays pinned at ≈ 0 and the Gaussian then moves only along
    that edge (all three negative freezes it at the centroid). The normaliser is scale invariant (the
    gradient w.r.t. the logits is orthogonal to relu(a), up to the floor), so plain gradient steps do
    not push all logits down together; in practice only components driven to an edge go negative.
    """
    weights = torch.relu(logits) + _BARY_FLOOR
    return weights / weights.sum(-1, keepdim=True)


def bind_gaussians(
    vertices: Tensor,  # [..., V, 3] metres (posed or canonical)
    faces: Tensor,  # [F, 3] long
    bary: Tensor,  # [F, k, 3] barycentric weights, on the simplex
    scale_factors: Tensor,  # [F, k, 3] positive multipliers of (flat_eps, s2, s3); [F, k, 1] also works
    flat_eps: float,  # metres, std along the normal before its factor
) -> tuple[Tensor, Tensor, Tensor]:
    """Gaussian means, wxyz quaternions and scales of mesh-bound Gaussians (GaMeS).

    means = Σ_i α_i v_i; rotation = the face frame of ``face_frames`` (shared by the face's k
    Gaussians); scales = (flat_eps, s2, s3) ⊙ scale_factors, first axis along the normal.

    Returns means [..., F·k, 3], quats [..., F·k, 4] (unit, wxyz), scales [..., F·k, 3].
    """
    num_faces, k, _ = bary.shape
    lead = vertices.shape[:-2]
    tri = vertices[..., faces, :]  # [..., F, 3 corners, 3 xyz]
    # f face, j Gaussian of the face, c corner, x coordinate
    means = torch.einsum("fjc,...fcx->...fjx", bary, tri)
    rotations, half_extents = face_frames(vertices, faces)
    quats = F.normalize(rotation_matrix_to_quaternion(rotations), dim=-1)  # [..., F, 4] wxyz
    quats = quats[..., None, :].expand(*lead, num_faces, k, 4)
    flat = torch.full_like(half_extents[..., :1], flat_eps)
    base = torch.cat([flat, half_extents], dim=-1)  # [..., F, 3]
    scales = base[..., None, :] * scale_factors  # [..., F, k, 3]
    n = num_faces * k
    return means.reshape(*lead, n, 3), quats.reshape(*lead, n, 4), scales.reshape(*lead, n, 3)


class GaussianSet(NamedTuple):
    """Renderable Gaussians (gsplat's argument layout); N = F·k, leading dims those of the vertices."""

    means: Tensor  # [..., N, 3] metres
    quats: Tensor  # [..., N, 4] unit, wxyz
    scales: Tensor  # [..., N, 3] std per axis, metres; axis 0 = face normal
    opacities: Tensor  # [..., N] in (0, 1)
    sh: Tensor  # [..., N, (d+1)², 3] SH coefficients


class MeshGaussians(nn.Module):
    """Trainable appearance of k Gaussians per face of one mesh; the vertices are passed in.

    Parameters (unconstrained, activated in ``gaussians``):
    - ``bary_logits`` [F, k, 3], init U(0, 1) (GaMeS), activated by ``barycentric_weights``;
    - ``log_scale_factors`` [F, k, 2]: log ρ for the two in-plane axes, init 0 (ρ = 1). GaMeS trains one
      ρ per Gaussian that also multiplies the normal axis; we train two in-plane factors and keep the
      normal std at ``flat_eps``, so Gaussians stay flat however long Adam runs (Adam would take full
      lr-sized steps on the normal axis from its tiny gradients) and may stretch along either in-plane
      axis;
    - ``opacity_logits`` [N], init logit(init_opacity);
    - ``sh_dc`` [N, 1, 3] zero (colour 0.5 grey; the scene sets the initial colours), ``sh_rest``
      [N, (d+1)² − 1, 3] zero; split so that their learning rates differ.
    The count is fixed: no densification or pruning (paper, supplement §1.1).
    """

    def __init__(
        self,
        faces: Tensor,  # [F, 3] long
        generator: torch.Generator,  # seeds the barycentric initialisation
        gaussians_per_face: int = 2,  # paper: k = 2
        sh_degree: int = 3,  # 3DGS / GaMeS
        init_opacity: float = 0.1,  # 3DGS / GaMeS initial opacity
        flat_eps: float = 1e-8,  # GaMeS's ε (metres here): std along the normal
    ) -> None:
        super().__init__()
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype != torch.long:
            raise ValueError(f"faces must be a [F, 3] long tensor, got {tuple(faces.shape)} {faces.dtype}")
        if gaussians_per_face < 1 or sh_degree < 0:
            raise ValueError(f"need gaussians_per_face >= 1, sh_degree >= 0; got {gaussians_per_face}, {sh_degree}")
        if not 0.0 < init_opacity < 1.0:
            raise ValueError(f"init_opacity must lie in (0, 1), got {init_opacity}")
        num_faces, k = faces.shape[0], gaussians_per_face
        n = num_faces * k
        self.flat_eps = flat_eps
        self.register_buffer("faces", faces.clone())
        self.bary_logits = nn.Parameter(torch.rand(num_faces, k, 3, generator=generator))
        self.log_scale_factors = nn.Parameter(torch.zeros(num_faces, k, 2))
        self.opacity_logits = nn.Parameter(torch.full((n,), init_opacity).logit())
        self.sh_dc = nn.Parameter(torch.zeros(n, 1, 3))  # colour 0.5 grey
        self.sh_rest = nn.Parameter(torch.zeros(n, (sh_degree + 1) ** 2 - 1, 3))

    def gaussians(self, vertices: Tensor) -> GaussianSet:  # vertices [..., V, 3] metres
        """Gaussians on the mesh with these (current, possibly posed) vertices."""
        lead = vertices.shape[:-2]
        means, quats, scales = _bind_trained(vertices, self.faces, self.bary_logits, self.log_scale_factors,
                                             self.flat_eps)
        sh = torch.cat([self.sh_dc, self.sh_rest], dim=1)
        opacities = torch.sigmoid(self.opacity_logits)
        return GaussianSet(means, quats, scales, opacities.expand(*lead, -1), sh.expand(*lead, *sh.shape))

    def param_groups(self, lr: Mapping[str, float]) -> list[dict]:
        """Optimizer groups, one per parameter kind, named as the keys of ``lr``.

        ``lr`` needs exactly the keys ``LR_KEYS``. GaMeS reference values: bary 1e-3, scale 5e-3,
        opacity 5e-2, sh_dc 2.5e-3, sh_rest 2.5e-3 / 20. (Vertices belong to the mesh's owner.)
        """
        if set(lr) != set(LR_KEYS):
            raise ValueError(f"lr needs exactly the keys {LR_KEYS}, got {sorted(lr)}")
        params = {
            "bary": self.bary_logits,
            "scale": self.log_scale_factors,
            "opacity": self.opacity_logits,
            "sh_dc": self.sh_dc,
            "sh_rest": self.sh_rest,
        }
        return [{"params": [params[key]], "lr": float(lr[key]), "name": key} for key in LR_KEYS]


@lazily_compiled
def _bind_trained(
    vertices: Tensor,  # [..., V, 3] metres
    faces: Tensor,  # [F, 3] long
    bary_logits: Tensor,  # [F, k, 3]
    log_scale_factors: Tensor,  # [F, k, 2] in-plane
    flat_eps: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """``bind_gaussians`` from ``MeshGaussians``'s raw parameters (the normal axis's factor fixed at 1),
    compiled as one fused graph: it is most of a HOGS step's non-rendering time."""
    in_plane = log_scale_factors.exp()  # [F, k, 2]
    factors = torch.cat([torch.ones_like(in_plane[..., :1]), in_plane], dim=-1)
    return bind_gaussians(vertices, faces, barycentric_weights(bary_logits), factors, flat_eps)


def _unit(x: Tensor, eps: float) -> Tensor:
    """x / max(|x|, eps) along the last axis (finite value and gradient at x = 0)."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(eps)
