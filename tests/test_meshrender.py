"""Tests of the ground-truth mesh renderer against closed-form answers."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from trimesh.ray.ray_pyembree import RayMeshIntersector

from hogsa.data.meshrender import (
    Light,
    MeshLayer,
    Scene,
    View,
    camera_rays,
    render,
    render_view,
    sample_bilinear,
)
from hogsa.data.shadows import SHADOW_RAY_OFFSET, cone_directions

WIDTH, HEIGHT = 64, 48
K = np.array([[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]])
FLAT = Light(ambient=1.0, diffuse=0.0, direction=np.array([0.0, 0.0, -1.0]))  # colour = albedo


def quad(x0, x1, y0, y1, z, part_id=1, color=1.0, **appearance) -> MeshLayer:
    """Axis-aligned quad at depth z (world = camera frame for identity extrinsics), two triangles."""
    vertices = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=np.float64)
    if not appearance:
        appearance = {"vertex_colors": np.full((4, 3), color)}
    return MeshLayer(vertices, np.array([[0, 1, 2], [0, 2, 3]]), part_id, **appearance)


def rigid(rotvec, translation) -> np.ndarray:
    """4×4 world2cam from an axis-angle [3] (rad) and translation [3] (m)."""
    theta = np.linalg.norm(rotvec)
    axis = np.asarray(rotvec) / theta
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    transform = np.eye(4)
    transform[:3, :3] = np.eye(3) + np.sin(theta) * cross + (1 - np.cos(theta)) * cross @ cross
    transform[:3, 3] = translation
    return transform


def pixel_centres(width=WIDTH, height=HEIGHT) -> np.ndarray:
    """[H, W, 2] image coordinates (x, y) of the pixel centres."""
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return np.stack([cols, rows], axis=-1)


def cross2d(a, b) -> np.ndarray:
    """z component of the cross product of 2-D vectors [..., 2]."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def hit_points(depth, world2cam) -> np.ndarray:
    """World points [H, W, 3] seen at the pixel centres with the given camera depth [H, W]."""
    centres = pixel_centres(*depth.shape[::-1])
    homogeneous = np.concatenate([centres, np.ones_like(centres[..., :1])], axis=-1)
    camera = depth[..., None] * (homogeneous @ np.linalg.inv(K).T)
    return (camera - world2cam[:3, 3]) @ world2cam[:3, :3]


def test_triangle_mask_and_depth_match_projection():
    rng = np.random.default_rng(3)
    world2cam = rigid([0.2, -0.3, 0.1], [0.05, -0.02, 0.3])
    for _ in range(10):
        camera_vertices = rng.uniform([-0.4, -0.3, 1.0], [0.4, 0.3, 2.0], size=(3, 3))
        vertices = (camera_vertices - world2cam[:3, 3]) @ world2cam[:3, :3]
        layer = MeshLayer(vertices, np.array([[0, 1, 2]]), 1, vertex_colors=np.ones((3, 3)))
        result = render([layer], K, world2cam, WIDTH, HEIGHT, FLAT)

        projected = camera_vertices @ K.T
        projected = projected[:, :2] / projected[:, 2:]
        centres = pixel_centres()
        edge_distance = []  # signed distance (px) of each centre to each edge line, positive inside
        orientation = np.sign(cross2d(projected[1] - projected[0], projected[2] - projected[0]))
        for a, b in [(0, 1), (1, 2), (2, 0)]:
            edge = projected[b] - projected[a]
            signed = cross2d(edge, centres - projected[a]) / np.linalg.norm(edge)
            edge_distance.append(orientation * signed)
        edge_distance = np.stack(edge_distance)
        inside = (edge_distance > 0).all(axis=0)
        differ = (result.mask == 1) != inside
        # Embree is float32: only centres practically on an edge may go either way.
        assert np.all(np.abs(edge_distance).min(axis=0)[differ] < 1e-4)
        assert inside.sum() > 0 and differ.sum() <= 2

        # Closed-form plane depth: z = d / (n · K^-1 p) with n·X = d the plane in the camera frame.
        normal = np.cross(camera_vertices[1] - camera_vertices[0], camera_vertices[2] - camera_vertices[0])
        rays = np.concatenate([centres, np.ones_like(centres[..., :1])], axis=-1) @ np.linalg.inv(K).T
        plane_depth = (normal @ camera_vertices[0]) / (rays @ normal)
        hit = result.mask == 1
        np.testing.assert_allclose(result.depth[hit], plane_depth[hit], rtol=1e-6)
        assert np.all(result.depth[~hit] == 0) and np.all(result.face[~hit] == -1)  # the fill values, never written


def test_quad_diagonal_through_pixel_centres_leaves_no_crack():
    # Corners at pixel centres: the shared diagonal passes exactly through 20 pixel centres.
    x0, y0 = (10.5 - 32) / 100, (10.5 - 24) / 100
    x1, y1 = (30.5 - 32) / 100, (30.5 - 24) / 100
    result = render([quad(x0, x1, y0, y1, 1.0)], K, np.eye(4), WIDTH, HEIGHT, FLAT)
    assert np.all(result.mask[11:30, 11:30] == 1)
    assert np.all(result.mask[10:31, 10:31].diagonal() == 1)


def test_conventions_x_right_y_down():
    # x ∈ [0.1, 0.3], y ∈ [0.05, 0.2] at z = 1 projects to x ∈ [42, 62], y ∈ [29, 44]: edges between pixels.
    result = render([quad(0.1, 0.3, 0.05, 0.2, 1.0, part_id=3)], K, np.eye(4), WIDTH, HEIGHT, FLAT)
    expected = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    expected[29:44, 42:62] = 3
    np.testing.assert_array_equal(result.mask, expected)
    np.testing.assert_allclose(result.depth[expected > 0], 1.0, atol=1e-7)

    # The same quad seen by a camera translated 1 m back (world origin at camera z = 1): same image.
    shifted = quad(0.1, 0.3, 0.05, 0.2, 0.0, part_id=3)
    world2cam = np.eye(4)
    world2cam[2, 3] = 1.0
    np.testing.assert_array_equal(render([shifted], K, world2cam, WIDTH, HEIGHT, FLAT).mask, expected)

    # Rolled 180° about the optical axis: the quad moves to the top-left.
    rolled = rigid([0.0, 0.0, np.pi], [0.0, 0.0, 0.0])
    flipped = render([quad(0.1, 0.3, 0.05, 0.2, 1.0, part_id=3)], K, rolled, WIDTH, HEIGHT, FLAT).mask
    np.testing.assert_array_equal(flipped, expected[::-1, ::-1])


def test_camera_rays_pass_through_pixel_centres():
    world2cam = rigid([0.3, 0.2, -0.1], [0.1, 0.2, 0.5])
    origin, directions = camera_rays(K, world2cam, WIDTH, HEIGHT)
    points = origin + 2.0 * directions  # world points along each ray
    camera = points @ world2cam[:3, :3].T + world2cam[:3, 3]
    projected = camera @ K.T
    np.testing.assert_allclose(projected[:, :2] / projected[:, 2:], pixel_centres().reshape(-1, 2), atol=1e-9)
    np.testing.assert_allclose(origin, -world2cam[:3, :3].T @ world2cam[:3, 3])


def test_occlusion_nearer_quad_wins():
    far = quad(-0.3, 0.1, -0.4, 0.4, 2.0, part_id=2)
    near = quad(-0.1, 0.3, -0.1, 0.1, 1.0, part_id=1)
    result = render([far, near], K, np.eye(4), WIDTH, HEIGHT, FLAT)
    # near projects to x ∈ [22, 62], y ∈ [14, 34]; far (at depth 2) to x ∈ [17, 37], y ∈ [4, 44]
    near_region = np.zeros((HEIGHT, WIDTH), dtype=bool)
    near_region[14:34, 22:62] = True
    far_region = np.zeros((HEIGHT, WIDTH), dtype=bool)
    far_region[4:44, 17:37] = True
    far_region &= ~near_region
    np.testing.assert_array_equal(result.mask, np.where(near_region, 1, np.where(far_region, 2, 0)))
    np.testing.assert_allclose(result.depth[near_region], 1.0, atol=1e-7)
    np.testing.assert_allclose(result.depth[far_region], 2.0, atol=1e-7)
    assert np.all(result.face[result.mask == 1] >= 2) and np.all(result.face[result.mask == 2] < 2)


def test_texture_quadrants_and_bilinear_filtering():
    red, green, blue, white = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
    texture = np.array([[red, green], [blue, white]], dtype=np.uint8)  # texture row 0 is the TOP (v = 1)
    # u grows with x (left→right), v with -y (bottom→top in the image, y is down).
    uv_of_corner = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    layer = quad(-0.2, 0.2, -0.2, 0.2, 1.0, face_uvs=uv_of_corner[faces], texture=texture)
    result = render([layer], K, np.eye(4), WIDTH, HEIGHT, FLAT)
    # Quad spans cols 12..52, rows 4..44. Outer quarters are clamped to the pure texel colour.
    expected = {(5, 13): red, (5, 50): green, (42, 13): blue, (42, 50): white}
    for (row, col), colour in expected.items():
        np.testing.assert_allclose(result.rgb[row, col], np.array(colour) / 255, atol=1e-6)
    # Everywhere on the quad the colour is the bilinear lookup at the analytic UV of the pixel centre.
    centres = pixel_centres()
    x = (centres[..., 0] - 32) / 100
    y = (centres[..., 1] - 24) / 100
    uv = np.stack([(x + 0.2) / 0.4, 1 - (y + 0.2) / 0.4], axis=-1)
    hit = result.mask == 1
    np.testing.assert_allclose(result.rgb[hit], sample_bilinear(texture, uv[hit]), atol=1e-5)


def test_sample_bilinear_texel_centres_and_midpoints():
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    rows, cols = np.meshgrid(np.arange(5), np.arange(7), indexing="ij")
    uv = np.stack([(cols + 0.5) / 7, 1 - (rows + 0.5) / 5], axis=-1).reshape(-1, 2)
    # exact up to the rounding of u·W − 0.5 (~1e-16), i.e. the very texel value
    np.testing.assert_allclose(sample_bilinear(texture, uv), texture.reshape(-1, 3) / 255.0, rtol=0, atol=1e-12)
    midpoint = np.array([[1.0 / 7, 1 - 0.5 / 5]])  # between texels (row 0, col 0) and (row 0, col 1)
    np.testing.assert_allclose(sample_bilinear(texture, midpoint)[0], texture[0, :2].mean(0) / 255.0, rtol=0,
                               atol=1e-12)


def test_lambert_cosine_with_ambient():
    ambient, diffuse = 0.2, 0.6
    light = Light(ambient=ambient, diffuse=diffuse, direction=np.array([0.0, 0.0, -1.0]))
    facing = quad(-0.3, -0.1, -0.1, 0.1, 1.0)
    # Rotated 60° about the vertical axis through its centre, so its normal makes 60° with the light.
    half = 0.1 * np.array([np.cos(np.pi / 3), 0.0, np.sin(np.pi / 3)])
    centre = np.array([0.2, 0.0, 1.0])
    corners = np.array([centre - half - [0, 0.1, 0], centre + half - [0, 0.1, 0],
                        centre + half + [0, 0.1, 0], centre - half + [0, 0.1, 0]])  # fmt: skip
    tilted = MeshLayer(corners, np.array([[0, 1, 2], [0, 2, 3]]), 2, vertex_colors=np.full((4, 3), 0.5))
    result = render([facing, tilted], K, np.eye(4), WIDTH, HEIGHT, light)
    np.testing.assert_allclose(result.rgb[result.mask == 1], ambient + diffuse, atol=1e-6)
    np.testing.assert_allclose(result.rgb[result.mask == 2], 0.5 * (ambient + diffuse * 0.5), atol=1e-6)
    # Two-sided: the back of the facing quad (reversed winding) shades the same.
    back = MeshLayer(facing.vertices, facing.faces[:, [0, 2, 1]], 1, vertex_colors=np.ones((4, 3)))
    flipped = render([back, tilted], K, np.eye(4), WIDTH, HEIGHT, light)
    np.testing.assert_allclose(flipped.rgb, result.rgb, atol=1e-6)


def shadow_scene(light: Light, seed: int = 0):
    """Plane at z = 2 and a caster x ∈ [0, 0.1], y ∈ [-0.1, 0.1] at z = 1.8; light towards (-1, 0, -1).

    The caster's shadow on the plane is x ∈ [0.2, 0.3], y ∈ [-0.1, 0.1]; the caster itself projects to x < 0.056,
    so the camera sees the whole shadow.
    """
    plane = quad(-1.0, 1.0, -1.0, 1.0, 2.0, part_id=3)
    caster = quad(0.0, 0.1, -0.1, 0.1, 1.8, part_id=1)
    result = render([plane, caster], K, np.eye(4), WIDTH, HEIGHT, light, seed=seed)
    x, y = np.moveaxis(hit_points(result.depth, np.eye(4))[..., :2], -1, 0)
    return result, x, y


def test_hard_shadow_darkens_only_the_shadowed_plane():
    ambient, diffuse = 0.25, 0.75
    direction = np.array([-1.0, 0.0, -1.0])
    lit = ambient + diffuse / np.sqrt(2)
    result, x, y = shadow_scene(Light(ambient, diffuse, direction, shadows=True))
    plane = result.mask == 3
    margin = 0.005
    umbra = plane & (x > 0.2 + margin) & (x < 0.3 - margin) & (np.abs(y) < 0.1 - margin)
    outside = plane & ((x < 0.2 - margin) | (x > 0.3 + margin) | (np.abs(y) > 0.1 + margin))
    assert umbra.sum() > 30 and outside.sum() > 1000
    np.testing.assert_allclose(result.rgb[umbra], ambient, atol=1e-6)
    np.testing.assert_allclose(result.rgb[outside], lit, atol=1e-6)

    no_shadow, _, _ = shadow_scene(Light(ambient, diffuse, direction, shadows=False))
    np.testing.assert_allclose(no_shadow.rgb[plane], lit, atol=1e-6)


def test_soft_shadow_has_penumbra_and_is_seeded():
    ambient, diffuse = 0.25, 0.75
    light = Light(ambient, diffuse, np.array([-1.0, 0.0, -1.0]), shadows=True, shadow_softness=0.05, shadow_samples=16)
    result, x, y = shadow_scene(light)
    plane = result.mask == 3
    values = result.rgb[plane][:, 0]
    lit = ambient + diffuse / np.sqrt(2)
    assert np.all((values > ambient - 1e-6) & (values < lit + 1e-6))
    assert np.sum((values > ambient + 0.02) & (values < lit - 0.02)) > 10  # penumbra
    umbra = plane & (x > 0.23) & (x < 0.27) & (np.abs(y) < 0.08)  # penumbra half-width ~0.02 m
    np.testing.assert_allclose(result.rgb[umbra], ambient, atol=1e-6)

    again, _, _ = shadow_scene(light)
    other_seed, _, _ = shadow_scene(light, seed=1)
    for a, b in zip(result, again, strict=True):
        np.testing.assert_array_equal(a, b)  # same seed: the same bytes
    assert not np.array_equal(result.rgb, other_seed.rgb)
    np.testing.assert_array_equal(result.mask, other_seed.mask)  # the seed jitters only shadow rays, not the labels


def test_color_fn_gets_local_faces_and_barycentrics_of_the_hit():
    rng = np.random.default_rng(1)
    world2cam = rigid([0.1, 0.4, -0.2], [0.02, 0.0, 0.1])
    calls = []

    def color_fn(face_index, barycentric):
        calls.append(face_index.copy())
        return barycentric  # the colour reveals the barycentrics

    other = quad(0.5, 0.6, 0.5, 0.6, 5.0, part_id=1)  # first layer: offsets global face ids by 2
    camera_vertices = rng.uniform([-0.3, -0.3, 1.0], [0.3, 0.3, 1.5], size=(6, 3))
    vertices = (camera_vertices - world2cam[:3, 3]) @ world2cam[:3, :3]
    faces = np.array([[0, 1, 2], [3, 4, 5], [0, 2, 4]])
    layer = MeshLayer(vertices, faces, 2, color_fn=color_fn)
    result = render([other, layer], K, world2cam, WIDTH, HEIGHT, FLAT)

    hit = result.mask == 2
    assert hit.sum() > 100
    local = result.face[hit] - 2
    received = np.concatenate(calls)
    assert received.min() >= 0 and received.max() < len(faces)
    np.testing.assert_array_equal(np.sort(received), np.sort(local))
    barycentric = result.rgb[hit].astype(np.float64)
    np.testing.assert_allclose(barycentric.sum(axis=1), 1.0, atol=1e-6)
    reconstructed = np.einsum("nk,nkc->nc", barycentric, vertices[faces[local]])
    np.testing.assert_allclose(reconstructed, hit_points(result.depth, world2cam)[hit], atol=1e-5)


def test_supersampling_blends_colour_but_not_mask_or_depth():
    # Right edge at x = 0.106 → image column 42.6: sub-pixel 42.25 is inside, 42.75 outside; centre 42.5 inside.
    layer = quad(-0.1, 0.106, -0.1, 0.1, 1.0)
    single = render([layer], K, np.eye(4), WIDTH, HEIGHT, FLAT, background=(0.0, 0.0, 1.0))
    double = render([layer], K, np.eye(4), WIDTH, HEIGHT, FLAT, background=(0.0, 0.0, 1.0), supersample=2)
    for buffer in ("mask", "depth", "face"):  # exact: both come from the same pixel-centre rays, computed the same way
        np.testing.assert_array_equal(getattr(single, buffer), getattr(double, buffer))
    assert single.mask[24, 42] == 1
    np.testing.assert_allclose(double.rgb[24, 42], [0.5, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(double.rgb[24, 30], [1.0, 1.0, 1.0], atol=1e-6)


def white_sphere(subdivisions: int) -> MeshLayer:
    """Smooth white icosphere of radius 0.2 m centred 1 m in front of the identity camera."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.2)
    colors = np.ones((len(sphere.vertices), 3))
    return MeshLayer(sphere.vertices + [0.0, 0.0, 1.0], sphere.faces, 1, vertex_colors=colors)


def test_smooth_sphere_shading_is_deterministic_and_bounded():
    layer = white_sphere(subdivisions=3)
    light = Light(0.3, 0.7, np.array([0.5, -0.5, -1.0]), shadows=True, shadow_softness=0.1, shadow_samples=4)
    first = render([layer], K, np.eye(4), WIDTH, HEIGHT, light, supersample=2)
    second = render([layer], K, np.eye(4), WIDTH, HEIGHT, light, supersample=2)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)  # same inputs and seed: the same bytes
    assert first.rgb.dtype == np.float32 and first.depth.dtype == np.float32
    assert first.mask.dtype == np.uint8 and first.face.dtype == np.int64
    assert first.rgb.min() >= 0.0 and first.rgb.max() <= 1.0
    # The point facing the light is fully lit: no self-shadowing of the smooth surface.
    assert first.rgb[first.mask == 1].max() > 0.99


def test_convex_coarse_mesh_does_not_shadow_itself():
    # A 80-face icosphere shaded with interpolated normals: without the terminator fix the shadow rays of
    # points past the faceted terminator hit neighbouring faces and cut jagged shadows into the lit side.
    layer = white_sphere(subdivisions=1)
    direction = np.array([1.0, -0.3, -0.2])
    shadowed = render([layer], K, np.eye(4), WIDTH, HEIGHT, Light(0.2, 0.8, direction, shadows=True), supersample=3)
    unshadowed = render([layer], K, np.eye(4), WIDTH, HEIGHT, Light(0.2, 0.8, direction), supersample=3)
    # exact: visibility is 1 − (fraction of blocked shadow rays), exactly 1.0 where none is blocked, and x · 1.0 = x;
    # a single self-shadowed sample anywhere shows as a difference
    np.testing.assert_array_equal(shadowed.rgb, unshadowed.rgb)


@pytest.mark.parametrize(
    "appearance",
    [
        {},
        {"vertex_colors": np.ones((3, 3)), "color_fn": lambda f, b: b},
        {"texture": np.zeros((2, 2, 3), dtype=np.uint8)},
        {"texture": np.zeros((2, 2, 3)), "face_uvs": np.zeros((1, 3, 2))},
    ],
)
def test_mesh_layer_needs_exactly_one_appearance(appearance):
    with pytest.raises(ValueError):
        MeshLayer(np.eye(3), np.array([[0, 1, 2]]), 1, **appearance)


def reference_albedo(layer: MeshLayer, face: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
    """Albedo [M, 3] of local faces [M] at barycentrics [M, 3]: the whole texture in [0, 1], then bilinear."""
    if layer.vertex_colors is not None:
        return np.einsum("nk,nkc->nc", barycentric, layer.vertex_colors[layer.faces[face]])
    if layer.color_fn is not None:
        return np.clip(np.asarray(layer.color_fn(face, barycentric), dtype=np.float64), 0.0, 1.0)
    uv = np.einsum("nk,nkc->nc", barycentric, layer.face_uvs[face])
    tex = layer.texture.astype(np.float64) / 255.0
    height, width = tex.shape[:2]
    x, y = uv[:, 0] * width - 0.5, (1.0 - uv[:, 1]) * height - 0.5
    fx, fy = (x - np.floor(x))[:, None], (y - np.floor(y))[:, None]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    xa, xb = np.clip(x0, 0, width - 1), np.clip(x0 + 1, 0, width - 1)
    ya, yb = np.clip(y0, 0, height - 1), np.clip(y0 + 1, 0, height - 1)
    top = tex[ya, xa] * (1 - fx) + tex[ya, xb] * fx
    bottom = tex[yb, xa] * (1 - fx) + tex[yb, xb] * fx
    return top * (1 - fy) + bottom * fy


def reference_render(layers, K, world2cam, width, height, light, background, supersample, seed):
    """The renderer's algorithm for one image, written plainly: a fresh trimesh RayMeshIntersector of the
    layers, ``intersects_id`` with locations for the camera rays, ``intersects_any`` for the soft shadows."""
    counts = [len(layer.faces) for layer in layers]
    vertex_offset = np.cumsum([0] + [len(layer.vertices) for layer in layers[:-1]])
    faces = np.concatenate([layer.faces + offset for layer, offset in zip(layers, vertex_offset, strict=True)])
    mesh = trimesh.Trimesh(np.concatenate([layer.vertices for layer in layers]), faces, process=False)
    intersector = RayMeshIntersector(mesh)
    layer_of_face = np.repeat(np.arange(len(layers)), counts)
    smooth = np.array([layer.smooth for layer in layers])[layer_of_face]
    all_corner_normals = np.where(smooth[:, None, None], mesh.vertex_normals[faces], mesh.face_normals[:, None, :])

    def trace(k, w, h):
        origin, directions = camera_rays(k, world2cam, w, h)
        face, ray, location = intersector.intersects_id(
            np.broadcast_to(origin, directions.shape), directions, multiple_hits=False, return_locations=True)
        return directions, face, ray, location

    _, centre_face, centre_ray, centre_location = trace(K, width, height)
    s = supersample
    directions, face, ray, location = trace(np.diag([s, s, 1.0]) @ K, width * s, height * s)
    barycentric = np.clip(trimesh.triangles.points_to_barycentric(mesh.triangles[face], location), 0.0, None)
    barycentric /= barycentric.sum(axis=1, keepdims=True)
    face_normals = mesh.face_normals[face]
    side = np.where(np.einsum("mc,mc->m", face_normals, directions[ray]) > 0, -1.0, 1.0)
    normals = face_normals * side[:, None]
    corner_normals = all_corner_normals[face] * side[:, None, None]
    shading = np.einsum("mk,mkc->mc", barycentric, corner_normals)
    length = np.linalg.norm(shading, axis=1, keepdims=True)
    shading = np.where(length > 1e-6, shading / np.maximum(length, 1e-6), normals)
    cosine = np.clip(shading @ light.direction, 0.0, None)
    lit = np.flatnonzero(cosine > 0)
    points, corners, lit_normals = location[lit], corner_normals[lit], normals[lit]
    below = np.minimum(0.0, np.einsum("mkc,mkc->mk", points[:, None, :] - mesh.triangles[face[lit]], corners))
    origins = points - np.einsum("mk,mk,mkc->mc", barycentric[lit], below, corners) + SHADOW_RAY_OFFSET * lit_normals
    samples = light.shadow_samples
    rng = np.random.default_rng(seed)
    shadow_directions = cone_directions(light.direction, light.shadow_softness, len(lit) * samples, rng)
    blocked = intersector.intersects_any(np.repeat(origins, samples, axis=0), shadow_directions)
    cosine[lit] *= 1.0 - blocked.reshape(len(lit), samples).mean(axis=1)
    albedo = np.empty((len(face), 3))
    for index, layer in enumerate(layers):
        mine = layer_of_face[face] == index
        albedo[mine] = reference_albedo(layer, face[mine] - sum(counts[:index]), barycentric[mine])
    colors = np.tile(np.asarray(background, dtype=np.float64), (width * s * height * s, 1))
    colors[ray] = albedo * (light.ambient + light.diffuse * cosine)[:, None]
    rgb = colors.reshape(height, s, width, s, 3).mean(axis=(1, 3))
    mask, depth = np.zeros(width * height, np.uint8), np.zeros(width * height, np.float32)
    mask[centre_ray] = np.array([layer.part_id for layer in layers], np.uint8)[layer_of_face[centre_face]]
    depth[centre_ray] = centre_location @ world2cam[2, :3] + world2cam[2, 3]
    return np.clip(rgb, 0.0, 1.0).astype(np.float32), mask.reshape(height, width), depth.reshape(height, width)


def test_scene_and_view_reuse_give_the_bytes_of_the_plain_algorithm():
    # Textured flat ground, smooth vertex-coloured sphere, smooth textured box, flat solid-textured icosphere;
    # soft shadows, supersampling 2; one Scene per frame for both views, one View per camera for both frames.
    rng = np.random.default_rng(5)
    ground = quad(-0.9, 0.3, -0.7, 0.7, 1.6, part_id=4, smooth=False,
                  texture=rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
                  face_uvs=np.array([[[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 1], [0, 1]]], float))
    box = trimesh.creation.box([0.15, 0.1, 0.12])
    small = trimesh.creation.icosphere(subdivisions=1, radius=0.07)
    light = Light(0.3, 0.7, np.array([0.3, -0.4, -1.0]), shadows=True, shadow_softness=0.05, shadow_samples=2)
    cameras = [np.eye(4), rigid([0.06, -0.08, 0.03], [0.04, -0.02, 0.05])]
    views = [View(K, world2cam, WIDTH, HEIGHT, supersample=2) for world2cam in cameras]
    for frame in range(2):
        shift = np.array([0.03 * frame, -0.02 * frame, 0.0])
        sphere = white_sphere(subdivisions=2)
        sphere.vertices = sphere.vertices + shift
        layers = [
            ground,
            MeshLayer(sphere.vertices, sphere.faces, 1, vertex_colors=rng.uniform(0.2, 1, sphere.vertices.shape)),
            MeshLayer(box.vertices + [-0.25, 0.1, 1.2] - shift, box.faces, 3,
                      texture=rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
                      face_uvs=rng.uniform(0, 1, (len(box.faces), 3, 2))),
            MeshLayer(small.vertices + [0.2, 0.15, 1.1], small.faces, 2, color_fn=lambda face, bary: bary,
                      smooth=False),
        ]
        scene = Scene(layers)
        for world2cam, view in zip(cameras, views, strict=True):
            seed = 10 * frame + 1
            result = render_view(scene, view, light, background=(0.1, 0.2, 0.3), seed=seed)
            rgb, mask, depth = reference_render(layers, K, world2cam, WIDTH, HEIGHT, light, (0.1, 0.2, 0.3), 2, seed)
            # background and every part seen; shaded and shadowed
            assert len(np.unique(mask)) == 5 and (mask == 0).any() and (rgb < 0.9 * rgb.max()).any()
            np.testing.assert_array_equal(result.rgb, rgb)
            np.testing.assert_array_equal(result.mask, mask)
            np.testing.assert_array_equal(result.depth, depth)
            single = render(layers, K, world2cam, WIDTH, HEIGHT, light, (0.1, 0.2, 0.3), supersample=2, seed=seed)
            for a, b in zip(single, result, strict=True):
                np.testing.assert_array_equal(a, b)
