import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hogsa.geometry import (
    axis_angle_to_matrix,
    hinge_rotation,
    invert_rigid,
    matrix_to_axis_angle,
    project_points,
    rigid_matrix,
    transform_points,
)


def test_axis_angle_matches_scipy_and_round_trips():
    aa = torch.randn(64, 3, dtype=torch.float64)
    aa = aa / aa.norm(dim=-1, keepdim=True) * torch.rand(64, 1, dtype=torch.float64) * 3.0  # angles < π
    R = axis_angle_to_matrix(aa)
    np.testing.assert_allclose(R.numpy(), Rotation.from_rotvec(aa.numpy()).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(matrix_to_axis_angle(R).numpy(), aa.numpy(), atol=1e-9)


@pytest.mark.parametrize("angle", [0.0, 1e-8, math.pi - 1e-6])
def test_axis_angle_singular_cases(angle):
    aa = torch.tensor([[0.0, 0.0, angle]], dtype=torch.float64)
    R = axis_angle_to_matrix(aa)
    np.testing.assert_allclose(R.numpy(), Rotation.from_rotvec(aa.numpy()).as_matrix(), atol=1e-9)
    np.testing.assert_allclose(matrix_to_axis_angle(R).numpy(), aa.numpy(), atol=1e-5)


def test_hinge_rotation_is_rz_of_minus_theta():
    theta = torch.tensor([[0.0, 0.3, -1.2], [math.pi / 2, math.pi, 2.5]], dtype=torch.float64)  # any batch shape
    H = hinge_rotation(theta)
    assert H.shape == (2, 3, 3, 3)
    c, s = torch.cos(theta), torch.sin(theta)
    closed_form = torch.zeros(2, 3, 3, 3, dtype=torch.float64)
    closed_form[..., 0, 0], closed_form[..., 0, 1], closed_form[..., 1, 0], closed_form[..., 1, 1] = c, s, -s, c
    closed_form[..., 2, 2] = 1.0
    assert torch.equal(H, closed_form)  # exact: cos, sin, and exact zeros and ones elsewhere
    aa = torch.stack([torch.zeros_like(theta), torch.zeros_like(theta), -theta], dim=-1)
    np.testing.assert_allclose(H.numpy(), axis_angle_to_matrix(aa).numpy(), atol=1e-12)
    # by hand: a quarter turn about -z takes x to -y and y to x
    np.testing.assert_allclose(H[1, 0].numpy() @ [1.0, 0.0, 0.0], [0.0, -1.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(H[1, 0].numpy() @ [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], atol=1e-15)


def test_rigid_transform_inverse_and_application():
    R = torch.as_tensor(Rotation.random(4, random_state=1).as_matrix())
    t = torch.randn(4, 3, dtype=torch.float64)
    T = rigid_matrix(R, t)
    pts = torch.randn(4, 10, 3, dtype=torch.float64)
    moved = transform_points(T, pts)
    np.testing.assert_allclose(moved.numpy(), torch.einsum("bij,bnj->bni", R, pts).numpy() + t[:, None].numpy(), atol=1e-12)
    np.testing.assert_allclose(transform_points(invert_rigid(T), moved).numpy(), pts.numpy(), atol=1e-12)


def test_projection_by_hand():
    K = torch.tensor([[100.0, 0, 32], [0, 200.0, 24], [0, 0, 1]], dtype=torch.float64)
    world2cam = rigid_matrix(torch.eye(3, dtype=torch.float64), torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64))
    uv, z = project_points(torch.tensor([[0.2, -0.1, 0.0]], dtype=torch.float64), K, world2cam)
    # camera point (0.2, -0.1, 2): u = 100·0.1 + 32, v = 200·(-0.05) + 24 (y down)
    np.testing.assert_allclose(uv.numpy(), [[42.0, 14.0]])
    np.testing.assert_allclose(z.numpy(), [2.0])
