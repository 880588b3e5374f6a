"""Tests for hogsa.articulated: posing an articulated object (hinge, then rigid motion) and its records."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.spatial.transform import Rotation

from hogsa.articulated import ArticulatedObject, upright_rotation
from hogsa.open_objects import open_object


def _articulation_reference(vertices: np.ndarray, top: np.ndarray, theta: float) -> np.ndarray:
    """Closed-form Rz(-theta) on the top vertices (ARCTIC: axis-angle [0, 0, -1] * theta)."""
    out = vertices.copy()
    x, y = vertices[top, 0], vertices[top, 1]
    out[top, 0] = np.cos(theta) * x + np.sin(theta) * y
    out[top, 1] = -np.sin(theta) * x + np.cos(theta) * y
    return out


def _pose(obj: ArticulatedObject, theta, rot, transl) -> np.ndarray:
    """``obj.pose`` in float64 of array-likes; raw tensors rather than an ObjectPose, since the tests also
    pass ARCTIC's [B, 1] articulation, which ``pose`` accepts."""
    return obj.pose(*(torch.as_tensor(np.asarray(value, dtype=np.float64)) for value in (theta, rot, transl))).numpy()


def test_articulation_rotates_only_the_top_part_about_z() -> None:
    obj = open_object("laptop")
    v = obj.vertices.double().numpy()
    top = obj.top_mask.numpy()
    theta = 0.7
    posed = _pose(obj, [theta], np.zeros((1, 3)), np.zeros((1, 3)))[0]
    np.testing.assert_allclose(posed, _articulation_reference(v, top, theta), atol=1e-12)
    # exact: a zero rotation vector gives exactly the identity (Taylor branch, all terms 0) and the hinge's z row is
    # exactly (0, 0, 1), so products with exact zeros and ones leave these coordinates untouched
    np.testing.assert_array_equal(posed[~top], v[~top])
    np.testing.assert_allclose(np.linalg.norm(posed[top, :2], axis=1), np.linalg.norm(v[top, :2], axis=1), atol=1e-12)
    np.testing.assert_array_equal(posed[:, 2], v[:, 2])


def test_global_rotation_and_translation_are_rigid() -> None:
    obj = open_object("box")
    v = obj.vertices.double().numpy()
    rng = np.random.default_rng(0)
    rot, transl, theta = rng.normal(size=3), rng.normal(size=3), 0.4
    posed = _pose(obj, [theta], rot[None], transl[None])[0]
    expected = Rotation.from_rotvec(rot).apply(_articulation_reference(v, obj.top_mask.numpy(), theta)) + transl
    np.testing.assert_allclose(posed, expected, atol=1e-10)
    sample = rng.choice(len(v), 300, replace=False)
    articulated = _pose(obj, [theta], np.zeros((1, 3)), np.zeros((1, 3)))[0]
    np.testing.assert_allclose(pdist(posed[sample]), pdist(articulated[sample]), atol=1e-10)


def test_pose_is_batched() -> None:
    obj = open_object("scissors")
    rng = np.random.default_rng(1)
    theta, rot, transl = rng.uniform(0, 1, 3), rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    batched = _pose(obj, theta, rot, transl)
    assert batched.shape == (3, len(obj.vertices), 3)
    # batched and single products may round differently (~1e-16 m); atol for coordinates near 0, 1e-12 m
    for b in range(3):
        np.testing.assert_allclose(batched[b], _pose(obj, theta[b : b + 1], rot[b : b + 1], transl[b : b + 1])[0],
                                   atol=1e-12)
    arctic_shaped = _pose(obj, theta[:, None], rot, transl)  # ARCTIC passes angles as [B,1]
    np.testing.assert_allclose(arctic_shaped, batched, atol=1e-12)


def test_pose_float32_default_and_shape_errors() -> None:
    obj = open_object("mug")
    posed = obj.pose(torch.zeros(2), torch.zeros(2, 3), torch.zeros(2, 3))
    assert posed.dtype == torch.float32
    torch.testing.assert_close(posed[1], obj.vertices)
    with pytest.raises(ValueError, match="rot"):
        obj.pose(torch.zeros(2), torch.zeros(3), torch.zeros(2, 3))


def _tiny_object() -> ArticulatedObject:
    vertices = torch.tensor(
        [[0.1, 0.0, 0.0], [0.0, 0.1, 0.05], [0.05, 0.02, -0.1], [-0.1, -0.1, 0.0], [0.0, -0.1, 0.1]]
    )
    faces = torch.tensor([[0, 1, 2], [2, 3, 4]])
    return ArticulatedObject(
        name="tiny", vertices=vertices, faces=faces, top_mask=torch.tensor([True, True, True, False, False]),
        face_uvs=torch.full((2, 3, 2), 0.5), texture=torch.zeros(1, 1, 3, dtype=torch.uint8),
        articulated=True, diameter=0.3,
    )


@pytest.mark.parametrize("rot", [[0.3, -0.8, 0.5], [0.0, 0.0, 0.0]], ids=["generic", "identity"])
def test_pose_gradcheck(rot) -> None:
    obj = _tiny_object()
    theta = torch.tensor([0.4, -1.1], dtype=torch.float64, requires_grad=True)
    rots = torch.tensor([rot, rot], dtype=torch.float64).mul(torch.tensor([[1.0], [0.5]], dtype=torch.float64))
    rots.requires_grad_(True)
    transl = torch.tensor([[0.1, 0.2, 0.3], [-0.2, 0.0, 0.1]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(obj.pose, (theta, rots, transl))


def test_pose_opens_the_top_part_about_minus_z_by_hand() -> None:
    """A quarter turn by hand: about [0,0,-1] the top vertex (0.1, 0, 0) goes to (0, -0.1, 0) and
    (0, 0.1, 0.05) to (0.1, 0, 0.05); the bottom part stays; then R(rot) and transl act on all."""
    obj = _tiny_object()
    quarter = torch.tensor([math.pi / 2], dtype=torch.float64)
    zeros = torch.zeros(1, 3, dtype=torch.float64)
    opened = obj.pose(quarter, zeros, zeros)[0]  # float32 vertices: 1e-7 m
    torch.testing.assert_close(opened[0], torch.tensor([0.0, -0.1, 0.0], dtype=torch.float64), atol=1e-7, rtol=0)
    torch.testing.assert_close(opened[1], torch.tensor([0.1, 0.0, 0.05], dtype=torch.float64), atol=1e-7, rtol=0)
    torch.testing.assert_close(opened[3:], obj.vertices[3:].double())
    # then a half turn about +x (y, z -> -y, -z) and a shift by (1, 2, 3)
    half_x, shift = torch.tensor([[math.pi, 0.0, 0.0]], dtype=torch.float64), torch.tensor([[1.0, 2.0, 3.0]])
    moved = obj.pose(quarter, half_x, shift.double())[0]
    torch.testing.assert_close(moved[1], torch.tensor([1.1, 2.0, 2.95], dtype=torch.float64), atol=1e-7, rtol=0)
    torch.testing.assert_close(moved[3], torch.tensor([0.9, 2.1, 3.0], dtype=torch.float64), atol=1e-7, rtol=0)


def test_bottom_centroid_and_to() -> None:
    obj = _tiny_object()
    torch.testing.assert_close(obj.bottom_centroid, torch.tensor([-0.05, -0.1, 0.05]))
    moved = obj.to("cpu")
    assert moved.name == obj.name and torch.equal(moved.vertices, obj.vertices)  # a copy: exact


@pytest.mark.parametrize("up_axis", [0, 1, 2])
def test_upright_rotation_takes_the_up_axis_to_z(up_axis):
    R = upright_rotation(replace(open_object("box"), up_axis=up_axis))
    np.testing.assert_allclose(R @ np.eye(3)[up_axis], [0, 0, 1])
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(R), 1.0)


def test_pose_of_replacement_vertices_matches_a_rebuilt_object():
    obj = open_object("box")
    moved = obj.vertices + 0.01 * torch.randn(obj.vertices.shape, generator=torch.Generator().manual_seed(0))
    args = (torch.tensor([0.4]), torch.tensor([[0.1, -0.2, 0.3]]), torch.tensor([[0.0, 0.1, 0.2]]))
    torch.testing.assert_close(obj.pose(*args, vertices=moved), replace(obj, vertices=moved).pose(*args))
    with pytest.raises(ValueError, match="vertices must have shape"):
        obj.pose(*args, vertices=moved[:10])
