"""POM geometry: contact maps, penetration depths, inside tests and volumes against hand-computed cases."""

import math

import numpy as np
import pytest
import torch
import trimesh

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.data.contact import ObjectDistance, Solid
from hogsa.open_objects import open_object
from hogsa.pom.contact import (
    ObjectOccupancy,
    SurfaceSamples,
    contact_map,
    hand_object_contact,
    inside_depth,
    intersection_volume,
    nearest,
    object_contact_map,
    penetration_loss,
    vertex_normals,
)

SIDE = 0.1  # m: the test cube


def cube_object(subdivisions: int = 0) -> ArticulatedObject:
    """A rigid 10 cm cube centred at the origin as an ArticulatedObject (faces outward)."""
    mesh = trimesh.creation.box(extents=[SIDE] * 3)
    for _ in range(subdivisions):
        mesh = mesh.subdivide()
    faces = torch.as_tensor(mesh.faces, dtype=torch.long)
    return ArticulatedObject("cube", torch.as_tensor(mesh.vertices, dtype=torch.float32), faces,
                             torch.zeros(len(mesh.vertices), dtype=torch.bool), torch.zeros(len(faces), 3, 2),
                             torch.zeros(1, 1, 3, dtype=torch.uint8), False, float(SIDE * math.sqrt(3)))


def identity_pose(batch: int = 1):
    return torch.zeros(batch), torch.zeros(batch, 3), torch.zeros(batch, 3)


def test_contact_map_at_0_1_3_cm_matches_the_formula():
    d = torch.tensor([0.0, 0.01, 0.03])
    expected = [1 - 2 * (1 / (1 + math.exp(-2 * cm)) - 0.5) for cm in (0.0, 1.0, 3.0)]
    assert contact_map(d).tolist() == pytest.approx(expected, abs=1e-6)
    assert contact_map(d).tolist() == pytest.approx([1.0, 0.2384, 0.0049], abs=1e-4)  # REFERENCES §8


def test_object_contact_map_uses_the_nearest_hand_vertex():
    points = torch.tensor([[[0.0, 0, 0], [0.0, 0.02, 0]]])
    hand = torch.tensor([[[0.0, 0, 0.01], [5.0, 5, 5]]])
    assert object_contact_map(points, hand)[0].tolist() == pytest.approx(
        contact_map(torch.tensor([0.01, math.hypot(0.02, 0.01)])).tolist(), abs=1e-6)


def test_vertex_1cm_inside_a_cube_gives_1cm_penetration():
    samples = SurfaceSamples(cube_object(), 20_000, seed=0)
    points, normals = samples.pose(*identity_pose())
    vertex = torch.tensor([[[SIDE / 2 - 0.01, 0.003, -0.002], [SIDE / 2 + 0.01, 0.0, 0.0]]])  # 1 cm in, 1 cm out
    depth = inside_depth(vertex, points, normals)
    assert depth[0].tolist() == pytest.approx([0.01, 0.0], abs=1e-6)  # point-to-plane: exact on a face
    assert penetration_loss(depth).item() == pytest.approx(1.0, abs=1e-3)  # (1 cm)² summed


def test_object_point_1cm_inside_a_hand_mesh_via_vertex_normals():
    hand = cube_object(subdivisions=3)  # flat faces with interior vertices whose normals are exact
    verts = hand.vertices[None]
    normals = vertex_normals(verts, hand.faces)
    on_face = (verts[0, :, 0] - SIDE / 2).abs() < 1e-6
    inner = on_face & (verts[0, :, 1:].abs().max(dim=1).values < SIDE / 2 - 1e-3)
    assert torch.allclose(normals[0, inner], torch.tensor([1.0, 0, 0]).expand(int(inner.sum()), 3), atol=1e-5)
    point = torch.tensor([[[SIDE / 2 - 0.01, 0.0, 0.0], [SIDE / 2 + 0.01, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    depth = inside_depth(point, verts, normals, max_distance=0.02)
    assert depth[0, :2].tolist() == pytest.approx([0.01, 0.0], abs=1e-6)
    assert depth[0, 2] == 0.0  # the cube's centre is 5 cm from every vertex: outside the 2 cm shell, set to 0


def test_nearest_matches_brute_force_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    points = torch.randn(2, 30, 3, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randn(2, 50, 3, generator=g, dtype=torch.float64, requires_grad=True)
    distance, index = nearest(points, targets)
    reference = torch.cdist(points, targets).min(dim=-1)
    assert torch.equal(index, reference.indices)  # indices: exact (no near ties among these random points)
    assert torch.allclose(distance, reference.values)
    weights = torch.randn(2, 30, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((distance * weights).sum(), (points, targets))
    expected = torch.autograd.grad((reference.values * weights).sum(), (points, targets))
    for a, b in zip(grads, expected):
        assert torch.allclose(a, b)


def test_intersection_volume_of_two_cubes_is_their_overlap():
    a = trimesh.creation.box(extents=[SIDE] * 3)
    b = trimesh.creation.box(extents=[SIDE] * 3, transform=trimesh.transformations.translation_matrix([0.05, 0, 0]))
    volume = intersection_volume(Solid(a.vertices, a.faces), Solid(b.vertices, b.faces), voxel=0.005)
    assert volume == pytest.approx(SIDE * SIDE * 0.05, rel=1e-9)
    far = trimesh.creation.box(extents=[SIDE] * 3, transform=trimesh.transformations.translation_matrix([0.2, 0, 0]))
    # exact: disjoint bounding boxes return 0.0 before any arithmetic
    assert intersection_volume(Solid(a.vertices, a.faces), Solid(far.vertices, far.faces), voxel=0.005) == 0.0


def test_hand_object_contact_of_a_cube_hand_pushed_1cm_into_a_cube():
    obj = cube_object()
    hand = trimesh.creation.box(extents=[0.02] * 3, transform=trimesh.transformations.translation_matrix([0.05, 0, 0]))
    hand = hand.subdivide().subdivide()
    obj_solid = Solid(obj.vertices.double().numpy(), obj.faces.numpy())
    signed = ObjectDistance(obj)(hand.vertices, 0.0, np.zeros(3), np.zeros(3))
    samples = np.array([[0.05, 0.0, 0.0], [0.05, 0.005, 0.0], [0.05, 0.03, 0.0]])  # on the cube's +x face
    result = hand_object_contact(Solid(hand.vertices, hand.faces), obj_solid, signed, samples, voxel=0.002)
    assert result.hand_depth == pytest.approx(0.01, abs=1e-3)  # its deepest vertex is 1 cm inside
    assert result.object_depth == pytest.approx(0.01, abs=5e-4)  # the face centre is 1 cm inside the hand
    assert result.volume == pytest.approx(0.02 * 0.02 * 0.01, rel=1e-6)
    assert result.gap == pytest.approx(-0.01, abs=1e-3)


def test_closest_distance_per_frame_uses_that_frames_object_pose():
    distance = ObjectDistance(cube_object())
    pose = ObjectPose(np.zeros(3), np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, np.pi / 4]]),
                      np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    far = [0.5, 0.0, 0.0]
    vertices = np.array([[[0.06, 0.0, 0.0], far],  # 1 cm off the +x face
                         [[0.12, 0.0, 0.0], far],  # 3 cm inside the cube moved 10 cm along x
                         [[0.0, 0.0, 0.06], far]])  # 1 cm above the top, whatever the turn about z
    closest = distance.closest(vertices, pose)
    assert closest.shape == (3,)
    assert closest == pytest.approx([0.01, -0.03, 0.01], abs=1e-3)


def test_object_occupancy_agrees_with_the_exact_inside_test_of_an_opened_box():
    obj = open_object("box")
    articulation, rot, transl = torch.tensor([0.7]), torch.tensor([[0.3, -0.2, 1.0]]), torch.tensor([[0.1, 0.0, 0.05]])
    occupancy = ObjectOccupancy(obj, spacing=0.003)
    posed = obj.pose(articulation, rot, transl)[0].double().numpy()
    rng = np.random.default_rng(0)
    points = posed[rng.integers(len(posed), size=4000)] + rng.normal(0, 0.02, (4000, 3))
    signed = ObjectDistance(obj)(points, 0.7, rot[0].double().numpy(), transl[0].double().numpy())
    clear = np.abs(signed) > 0.004  # farther than a voxel diagonal from the surface
    grid = occupancy.contains(torch.as_tensor(points[None], dtype=torch.float32), articulation, rot, transl)[0].numpy()
    assert clear.sum() > 2000 and (signed[clear] < 0).sum() > 200
    assert np.array_equal(grid[clear], signed[clear] < 0)
