"""Rotations, rigid transforms and pinhole projection.

Conventions (once for the package): metres and radians; axis-angle vectors are [..., 3] with the angle
as their norm; rotation matrices act on column vectors (x' = R x); ``world2cam`` is a 4×4 OpenCV
extrinsic (x right, y down, z forward); K is 3×3 with pixel centres at integer + 0.5, as gsplat.
"""

from __future__ import annotations

import torch
from kornia.geometry.conversions import axis_angle_to_rotation_matrix as _aa_to_mat
from kornia.geometry.conversions import rotation_matrix_to_axis_angle as _mat_to_aa
import torch.nn.functional as F
from torch import Tensor


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """[..., 3] axis-angle (rad) → [..., 3, 3] rotation matrices (Rodrigues; exact at θ = 0)."""
    shape = axis_angle.shape[:-1]
    return _aa_to_mat(axis_angle.reshape(-1, 3)).reshape(*shape, 3, 3)


def hinge_rotation(theta: Tensor) -> Tensor:
    """[...] angles (rad) → [..., 3, 3] rotations by axis-angle ``[0, 0, -1]·θ``, i.e. ``Rz(-θ)``.

    The articulation of an ARCTIC object (``ObjectTensors.forward_7d_batch``): its top part turns by
    this about the canonical z axis, and a positive θ opens it. Closed form, exact zeros and ones.
    """
    c, s = torch.cos(theta), torch.sin(theta)
    zero, one = torch.zeros_like(theta), torch.ones_like(theta)
    rows = (torch.stack([c, s, zero], -1), torch.stack([-s, c, zero], -1), torch.stack([zero, zero, one], -1))
    return torch.stack(rows, dim=-2)


def matrix_to_axis_angle(matrix: Tensor) -> Tensor:
    """[..., 3, 3] rotation matrices → [..., 3] axis-angle with angle in [0, π]."""
    shape = matrix.shape[:-2]
    return _mat_to_aa(matrix.reshape(-1, 3, 3)).reshape(*shape, 3)


def rotation_6d_to_matrix(d6: Tensor) -> Tensor:
    """6D rotations (Zhou et al.: the first two rows of the matrix) [..., 6] → [..., 3, 3] by Gram-Schmidt:
    rows b1 = a1/|a1|, b2 = the part of a2 orthogonal to b1, b3 = b1 × b2."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    return torch.stack((b1, b2, torch.cross(b1, b2, dim=-1)), dim=-2)


def matrix_to_rotation_6d(matrix: Tensor) -> Tensor:
    """[..., 3, 3] → [..., 6]: the first two rows."""
    return matrix[..., :2, :].reshape(*matrix.shape[:-2], 6)


def rigid_matrix(rotation: Tensor, translation: Tensor) -> Tensor:
    """[..., 3, 3] rotation and [..., 3] translation → [..., 4, 4] homogeneous transform."""
    top = torch.cat([rotation, translation[..., None]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1
    return torch.cat([top, bottom], dim=-2)


def transform_points(transform: Tensor, points: Tensor) -> Tensor:
    """Apply [..., 4, 4] rigid transforms to [..., N, 3] points → [..., N, 3]."""
    return points @ transform[..., :3, :3].transpose(-1, -2) + transform[..., None, :3, 3]


def invert_rigid(transform: Tensor) -> Tensor:
    """Inverse of [..., 4, 4] rigid transforms (R^T, -R^T t)."""
    rot_t = transform[..., :3, :3].transpose(-1, -2)
    return rigid_matrix(rot_t, -(rot_t @ transform[..., :3, 3:])[..., 0])


def project_points(points: Tensor, K: Tensor, world2cam: Tensor) -> tuple[Tensor, Tensor]:
    """Pinhole projection of [..., N, 3] world points.

    Returns pixel coordinates [..., N, 2] (OpenCV: u = fx·x/z + cx, centres at integer + 0.5) and
    camera depth z [..., N] in metres.
    """
    cam = transform_points(world2cam, points)
    z = cam[..., 2]
    uv_h = cam @ K.transpose(-1, -2)
    return uv_h[..., :2] / z[..., None], z
