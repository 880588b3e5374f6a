"""Ground-truth ray-traced renderer of textured triangle meshes: RGB, part masks and depth.

Renders the embedded synthetic dataset (two hands and an object seen by several cameras). The scene is
a list of :class:`MeshLayer` parts, concatenated into one triangle soup (layer order, ``process=False``
so face indices are kept) with one Embree BVH, a :class:`Scene`, and intersected with one ray per
(sub-)pixel. A :class:`Scene` (one frame's geometry) and a :class:`View` (one camera's rays) can be
built once and reused: :func:`render_view` renders every view of a frame from one Scene, and every
frame of a camera from one View; :func:`render` builds both for a single image.

Conventions: metres; ``K`` is a 3×3 OpenCV intrinsic with pixel centres at integer + 0.5 (the ray of
pixel (col i, row j) goes through image point (i + 0.5, j + 0.5)); ``world2cam`` is a rigid 4×4 OpenCV
extrinsic (x right, y down, z forward). Pixels are enumerated row-major, ray n = j · width + i.

Shading: ``albedo · (ambient + diffuse · max(0, n·l) · visibility)`` with a white light; two-sided (normals
are flipped to face the camera); n is the barycentric interpolation of the vertex normals (face normal
for layers with ``smooth=False``); l is the direction towards the directional light; visibility is the
fraction of shadow rays towards the light (jittered inside a cone of half-angle ``shadow_softness`` for
soft shadows, seeded) that leave the scene, 1 without shadows. Shadow rays that provably leave the
scene (a conservative bound against the layers' bounding volumes) are not traced (``hogsa.data.shadows``).

Supersampling s > 1: the colour is the box average of s×s sub-pixel rays on a regular grid inside each
pixel, while mask, depth and face come from the single ray through the pixel centre, so they are never
blended and are identical to those of s = 1.

Precision: Embree intersects in float32, so a pixel centre within ~1e-4 px of a silhouette edge (for
metre-scale scenes) may fall either way. Hit locations are then recomputed in float64 on the hit
triangle's plane, so depths and barycentrics are exact up to float64 rounding on that triangle. Rays
are traced and solved as trimesh's Embree ray queries do (origins and vertices shifted and scaled by
trimesh's ``scale_to_box`` convention before the float32 cast, directions renormalised by
``trimesh.util.unitize``), so the images equal those of ``RayMeshIntersector`` queries bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import trimesh
from embreex import rtcore_scene
from embreex.mesh_construction import TriangleMesh

from hogsa.data.shadows import SHADOW_RAY_OFFSET, light_visibility, may_be_blocked, shadow_ray_origins

ColorFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def sample_bilinear(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinearly filtered lookup of a uint8 texture [H, W, C] at UVs [N, 2] → [N, C] float in [0, 1].

    OBJ convention: u runs left to right, v bottom to top, so texture column x = u·W and row y = (1 − v)·H,
    with texel centres at integer + 0.5 (a UV at a texel centre returns exactly that texel). Addressing
    is clamp-to-edge.
    """
    height, width = texture.shape[:2]
    return _sample_texels(texture.reshape(height * width, -1).astype(np.float64) / 255.0, height, width, uv)


def _sample_texels(texels: np.ndarray, height: int, width: int, uv: np.ndarray) -> np.ndarray:
    """:func:`sample_bilinear` of the texture whose texels [H·W, C] (row-major) are given in [0, 1]."""
    x = uv[:, 0] * width - 0.5
    y = (1.0 - uv[:, 1]) * height - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    xa, xb = np.clip(x0, 0, width - 1), np.clip(x0 + 1, 0, width - 1)
    ya, yb = np.clip(y0, 0, height - 1) * width, np.clip(y0 + 1, 0, height - 1) * width

    def tex(row: np.ndarray, col: np.ndarray) -> np.ndarray:  # texels [N, C] at flat index row + col, in [0, 1]
        return np.take(texels, row + col, axis=0)

    left = 1 - fx
    top = tex(ya, xa) * left + tex(ya, xb) * fx
    bottom = tex(yb, xa) * left + tex(yb, xb) * fx
    return top * (1 - fy) + bottom * fy


@dataclass
class MeshLayer:
    """One part of the scene with exactly one appearance source (texture + face_uvs, vertex_colors or color_fn).

    vertices: [V, 3] world positions, metres. faces: [F, 3] vertex indices.
    part_id: value written into the mask, 1..255 (1 right hand, 2 left hand, 3 object by convention).
    face_uvs: [F, 3, 2] per-corner UVs in [0, 1], OBJ convention (see :func:`sample_bilinear`).
    texture: [H, W, 3] uint8, used with face_uvs.
    vertex_colors: [V, 3] float in [0, 1], interpolated barycentrically.
    color_fn: solid texture, ``color_fn(face_index [N], barycentric [N, 3]) → [N, 3]`` float in [0, 1];
        face indices are local to this layer (rows of ``faces``).
    smooth: shade with interpolated vertex normals (True) or flat face normals (False, e.g. for boxes).
    """

    vertices: np.ndarray
    faces: np.ndarray
    part_id: int
    face_uvs: np.ndarray | None = None
    texture: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    color_fn: ColorFn | None = None
    smooth: bool = True
    _texels: np.ndarray | None = field(default=None, init=False, repr=False)  # texture in [0, 1], on first use

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices must be [V, 3], got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces must be [F, 3], got {self.faces.shape}")
        if not 1 <= self.part_id <= 255:
            raise ValueError(f"part_id must be in 1..255 (0 is background), got {self.part_id}")
        sources = (self.texture is not None) + (self.vertex_colors is not None) + (self.color_fn is not None)
        if sources != 1:
            raise ValueError("give exactly one of texture (with face_uvs), vertex_colors or color_fn")
        if (self.texture is None) != (self.face_uvs is None):
            raise ValueError("texture and face_uvs must be given together")
        if self.texture is not None:
            self.texture = np.asarray(self.texture)
            self.face_uvs = np.asarray(self.face_uvs, dtype=np.float64)
            if self.texture.dtype != np.uint8 or self.texture.ndim != 3 or self.texture.shape[2] != 3:
                raise ValueError("texture must be a uint8 [H, W, 3] array")
            if self.face_uvs.shape != (len(self.faces), 3, 2):
                raise ValueError(f"face_uvs must be [F, 3, 2], got {self.face_uvs.shape}")
        if self.vertex_colors is not None:
            self.vertex_colors = np.asarray(self.vertex_colors, dtype=np.float64)
            if self.vertex_colors.shape != self.vertices.shape:
                raise ValueError(f"vertex_colors must be [V, 3], got {self.vertex_colors.shape}")

    def albedo(self, face_index: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
        """Surface colour [N, 3] in [0, 1] at local faces [N] and barycentric coordinates [N, 3]."""
        if self.texture is not None:
            uv = np.einsum("nk,nkc->nc", barycentric, _rows(self.face_uvs, face_index))
            height, width = self.texture.shape[:2]
            if self._texels is None:  # once for all the views a layer is rendered in
                self._texels = self.texture.reshape(height * width, -1).astype(np.float64) / 255.0
            return _sample_texels(self._texels, height, width, uv)
        if self.vertex_colors is not None:
            return np.einsum("nk,nkc->nc", barycentric, _rows(self.vertex_colors, _rows(self.faces, face_index)))
        colors = np.asarray(self.color_fn(face_index, barycentric), dtype=np.float64)
        if colors.shape != (len(face_index), 3):
            raise ValueError(f"color_fn must return [N, 3], got {colors.shape}")
        return np.clip(colors, 0.0, 1.0)


@dataclass
class Light:
    """White ambient light plus one directional light with optional (soft) shadows.

    ambient, diffuse: intensities (the lit colour of a surface facing the light is albedo · (ambient + diffuse)).
    direction: [3] direction TOWARDS the light in the world frame (normalised on construction).
    shadows: cast shadow rays. shadow_softness: angular radius of the light, radians (0 gives hard shadows).
    shadow_samples: shadow rays per shaded sample when shadow_softness > 0.
    """

    ambient: float
    diffuse: float
    direction: np.ndarray
    shadows: bool = False
    shadow_softness: float = 0.0
    shadow_samples: int = 1

    def __post_init__(self) -> None:
        direction = np.asarray(self.direction, dtype=np.float64)
        norm = np.linalg.norm(direction)
        if direction.shape != (3,) or norm == 0:
            raise ValueError("direction must be a non-zero [3] vector")
        self.direction = direction / norm
        if self.shadow_samples < 1 or self.shadow_softness < 0:
            raise ValueError("need shadow_samples >= 1 and shadow_softness >= 0")


class RenderResult(NamedTuple):
    """rgb [H, W, 3] float32 in [0, 1]; mask [H, W] uint8 part ids (0 background); depth [H, W] float32
    camera-frame z in metres (0 where nothing is hit); face [H, W] int64 global face index (-1 none)."""

    rgb: np.ndarray
    mask: np.ndarray
    depth: np.ndarray
    face: np.ndarray


class Scene:
    """All layers as one triangle soup with its Embree BVH; F counts the faces of all layers, in layer order.

    Build it once per frame and render every view of the frame from it (:func:`render_view`).
    """

    def __init__(self, layers: Sequence[MeshLayer]):
        """Concatenate the layers (vertex indices offset, faces kept in order) and build the BVH."""
        if not layers or sum(len(layer.faces) for layer in layers) == 0:
            raise ValueError("the scene needs at least one face")
        vertex_offset = np.cumsum([0] + [len(layer.vertices) for layer in layers[:-1]])
        face_counts = [len(layer.faces) for layer in layers]
        vertices = np.concatenate([layer.vertices for layer in layers])
        faces = np.concatenate([layer.faces + off for layer, off in zip(layers, vertex_offset, strict=True)])
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
        self.layers = layers
        self.layer_of_face = np.repeat(np.arange(len(layers)), face_counts)  # [F] int layer index
        self.face_offset = np.cumsum([0] + face_counts[:-1])  # [L] global index of each layer's first face
        self.part_of_face = np.array([layer.part_id for layer in layers], dtype=np.uint8)[self.layer_of_face]  # [F]
        self.triangles = np.asarray(mesh.triangles)  # [F, 3, 3] corner positions, metres
        self.face_normals = np.asarray(mesh.face_normals)  # [F, 3] unit geometric normals
        smooth = np.array([layer.smooth for layer in layers])[self.layer_of_face]
        self.corner_normals = np.where(  # [F, 3, 3] unit shading normals at the corners
            smooth[:, None, None], np.asarray(mesh.vertex_normals)[faces], self.face_normals[:, None, :]
        )
        # Per-face terms of trimesh.triangles.points_to_barycentric (Cramer's rule on the edges from corner 0).
        self.edges = self.triangles[:, 1:] - self.triangles[:, :1]  # [F, 2, 3] corner 1 and 2 minus corner 0
        first, second = self.edges[:, 0], self.edges[:, 1]
        dot00, dot01, dot11 = _row_dot(first, first), _row_dot(first, second), _row_dot(second, second)
        self.edge_dots = np.stack([dot00, dot01, dot11], axis=1)  # [F, 3] e0·e0, e0·e1, e1·e1
        self.inverse_det = 1.0 / (dot00 * dot11 - dot01 * dot01)  # [F]
        # Embree is float32: trimesh's scale_to_box convention first moves the scene's min corner to the
        # origin and scales its bounding-box diagonal to 100; ray origins get the same transform.
        self._shift = vertices.min(axis=0)
        self._scale = 100.0 / mesh.scale
        # Bounding boxes [L', 3] of the layers with faces (for shadow-ray culling), and a distance (m) far
        # above Embree's float32 resolution (~1e-7 of the scene's size) yet below SHADOW_RAY_OFFSET for
        # scenes up to 10 m.
        self.layer_min = np.array([layer.vertices.min(axis=0) for layer in layers if len(layer.faces)])
        self.layer_max = np.array([layer.vertices.max(axis=0) for layer in layers if len(layer.faces)])
        self.margin = 1e-5 * max(1.0, mesh.scale)
        # [F] m, how far shadows.shadow_ray_origins may move a hit point towards the smooth surface: at most the
        # longest edge (|(p − corner) · n| ≤ |p − corner|); on flat faces (corner normals ⊥ the face) only
        # rounding, far below the margin.
        longest_edge = np.linalg.norm(self.triangles - np.roll(self.triangles, 1, axis=1), axis=2).max(axis=1)
        self.lift_bound = np.where(smooth, longest_edge, 0.0)
        self._embree = rtcore_scene.EmbreeScene()
        TriangleMesh(scene=self._embree, vertices=self.to_embree(vertices), indices=faces.astype(np.int32))

    def to_embree(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] (metres, any float dtype) → float32 points [..., 3] in Embree's frame."""
        return ((np.asarray(points, dtype=np.float64) - self._shift) * self._scale).astype(np.float32)

    def first_faces(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Global index [N] (int32) of the first face hit by each ray, -1 for none.

        origins: [N, 3] float32 in Embree's frame (:meth:`to_embree`); directions: [N, 3] float32 unit, world.
        """
        return self._embree.run(origins, directions)


class _Rays(NamedTuple):
    """Camera rays from one origin; N counts the rays."""

    directions: np.ndarray  # [N, 3] unit directions from camera_rays, world (decide which side of a face is seen)
    unit: np.ndarray  # [N, 3] the same renormalised by trimesh.util.unitize: hits are solved along these
    unit32: np.ndarray  # [N, 3] float32 copy of unit, traced by Embree


def _rays(directions: np.ndarray) -> _Rays:
    """The _Rays of camera_rays directions [N, 3]."""
    unit = trimesh.util.unitize(directions)
    return _Rays(directions, unit, unit.astype(np.float32))


class View:
    """One camera's primary rays at supersampling s ≥ 1, computed once for every frame the camera sees.

    K [3, 3], world2cam [4, 4] and the image size width×height follow the module's conventions. origin [3]
    is the camera centre (world, metres); ``centre`` holds the H·W pixel-centre rays, ``samples`` the
    (s·H)·(s·W) sub-pixel rays (row-major on the sub-pixel grid; ``centre`` itself for s = 1).
    """

    def __init__(self, K: np.ndarray, world2cam: np.ndarray, width: int, height: int, supersample: int = 1):
        if supersample < 1:
            raise ValueError(f"supersample must be >= 1, got {supersample}")
        self.K = np.asarray(K, dtype=np.float64)
        self.world2cam = np.asarray(world2cam, dtype=np.float64)
        self.width, self.height, self.supersample = width, height, supersample
        self.origin, directions = camera_rays(self.K, self.world2cam, width, height)
        self.centre = _rays(directions)
        self.samples = self.centre
        if supersample > 1:
            scale = np.diag([supersample, supersample, 1.0])  # image point x ↦ s·x keeps centres at integer + 0.5
            _, directions = camera_rays(scale @ self.K, self.world2cam, width * supersample, height * supersample)
            self.samples = _rays(directions)


class _Hits(NamedTuple):
    """The first hits of a batch of rays; M counts the rays that hit."""

    ray: np.ndarray  # [M] int index of the ray
    face: np.ndarray  # [M] int global face index
    location: np.ndarray  # [M, 3] world hit point on the face's plane, metres
    normal: np.ndarray  # [M, 3] unit geometric normal of the face


def camera_rays(K: np.ndarray, world2cam: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Rays through the pixel centres → (origin [3] camera centre in world, directions [H·W, 3] unit, world).

    Ray n = j · width + i passes through image point (i + 0.5, j + 0.5).
    """
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pixels = np.stack([cols.ravel(), rows.ravel(), np.ones(cols.size)], axis=-1)
    rotation, translation = world2cam[:3, :3], world2cam[:3, 3]
    # R^T K^-1 p per pixel; einsum because OpenBLAS' [N, 3] @ [3, 3] matmul is ~20x slower here.
    directions = np.einsum("dc,nc->nd", rotation.T @ np.linalg.inv(K), pixels)
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    return -rotation.T @ translation, directions


def _row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products [N] of a, b [N, 3], summed as trimesh.util.diagonal_dot does."""
    return np.dot(a * b, [1.0, 1.0, 1.0])


def _row_norm(vectors: np.ndarray) -> np.ndarray:
    """Euclidean norms [N] of vectors [N, 3], summed as np.linalg.norm(axis=1) does, without its overhead."""
    squares = vectors * vectors
    return np.sqrt((squares[:, 0] + squares[:, 1]) + squares[:, 2])


def _rows(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    """array[index] for an integer index [M] into the first axis: np.take, several times faster on [N, ...] arrays."""
    return np.take(array, index, axis=0)


def _intersect(scene: Scene, origin: np.ndarray, rays: _Rays) -> _Hits:
    """First hits of rays from one origin [3] (world, metres), located in float64 on the hit face's plane.

    The plane-line solve of trimesh.intersections.planes_lines, with the origin's offset from each face's
    plane computed once per face.
    """
    origins = np.tile(scene.to_embree(origin), (len(rays.unit), 1))
    faces = scene.first_faces(origins, rays.unit32)
    ray = np.flatnonzero(faces != -1)
    faces = faces[ray].astype(np.int64)
    offset = _row_dot(scene.triangles[:, 0] - origin, scene.face_normals)[faces]  # [M] (corner 0 − origin) · normal
    unit, normals = _rows(rays.unit, ray), _rows(scene.face_normals, faces)
    slope = _row_dot(unit, normals)  # [M] direction · normal
    valid = np.abs(slope) > 1e-5  # a ray (nearly) parallel to its face's plane misses
    if not valid.all():
        kept = np.flatnonzero(valid)
        ray, faces, offset, slope = ray[kept], faces[kept], offset[kept], slope[kept]
        unit, normals = _rows(unit, kept), _rows(normals, kept)
    locations = unit * np.divide(offset, slope)[:, None]
    locations += origin
    return _Hits(ray, faces, locations, normals)


def _barycentric(scene: Scene, hits: _Hits) -> np.ndarray:
    """Barycentric coordinates [M, 3] of the hit points on their faces, clipped to the triangle, sum 1.

    trimesh.triangles.points_to_barycentric (Cramer's rule) with the per-face terms of the Scene.
    """
    edges, edge_dots = _rows(scene.edges, hits.face), _rows(scene.edge_dots, hits.face)
    inverse_det = _rows(scene.inverse_det, hits.face)
    offset = hits.location - _rows(scene.triangles[:, 0], hits.face)
    dot02, dot12 = _row_dot(edges[:, 0], offset), _row_dot(edges[:, 1], offset)
    barycentric = np.empty((len(hits.face), 3))
    barycentric[:, 2] = (edge_dots[:, 0] * dot12 - edge_dots[:, 1] * dot02) * inverse_det
    barycentric[:, 1] = (edge_dots[:, 2] * dot02 - edge_dots[:, 1] * dot12) * inverse_det
    barycentric[:, 0] = 1 - barycentric[:, 1] - barycentric[:, 2]
    # Embree's float32 test may accept a point just outside its triangle: clip it back on.
    barycentric = np.clip(barycentric, 0.0, None)
    barycentric /= ((barycentric[:, 0] + barycentric[:, 1]) + barycentric[:, 2])[:, None]  # = .sum(axis=1)
    return barycentric


def _albedo(scene: Scene, hits: _Hits, barycentric: np.ndarray) -> np.ndarray:
    """Surface colour [M, 3] of the hits (barycentric [M, 3]), each layer evaluated on its own (local) faces."""
    albedo = np.empty((len(hits.face), 3))
    layer_of_hit = scene.layer_of_face[hits.face]
    for index, layer in enumerate(scene.layers):
        selected = np.flatnonzero(layer_of_hit == index)
        if selected.size:
            local_face = hits.face[selected] - scene.face_offset[index]
            albedo[selected] = layer.albedo(local_face, _rows(barycentric, selected))
    return albedo


def _shade(scene: Scene, hits: _Hits, directions: np.ndarray, light: Light, rng: np.random.Generator) -> np.ndarray:
    """Lambert-shaded colour [M, 3] of the hits of rays with directions [N, 3]."""
    barycentric = _barycentric(scene, hits)
    face_normals = hits.normal
    towards_camera = np.where(np.einsum("mc,mc->m", face_normals, _rows(directions, hits.ray)) > 0, -1.0, 1.0)
    normals = face_normals * towards_camera[:, None]
    corner_normals = _rows(scene.corner_normals, hits.face) * towards_camera[:, None, None]
    shading_normals = np.einsum("mk,mkc->mc", barycentric, corner_normals)
    length = _row_norm(shading_normals)[:, None]
    # Opposed corner normals (folded or non-manifold surfaces) can cancel: fall back to the face normal.
    shading_normals = np.where(length > 1e-6, shading_normals / np.maximum(length, 1e-6), normals)
    cosine = np.clip(shading_normals @ light.direction, 0.0, None)
    if light.shadows:
        lit = np.flatnonzero(cosine > 0)
        # A shadow-ray origin lies within its face's lift bound of the hit point offset along the normal.
        offset = _rows(hits.location, lit) + SHADOW_RAY_OFFSET * _rows(normals, lit)
        traced = may_be_blocked(scene, offset, scene.lift_bound[hits.face[lit]], light)
        near = lit[traced]
        triangles = _rows(scene.triangles, hits.face[near])
        origins = shadow_ray_origins(
            _rows(hits.location, near), _rows(barycentric, near), triangles, _rows(corner_normals, near),
            _rows(normals, near),
        )
        cosine[lit] *= light_visibility(scene, origins, traced, light, rng)
    return _albedo(scene, hits, barycentric) * (light.ambient + light.diffuse * cosine)[:, None]


def _box_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor×factor blocks: [H·factor, W·factor, C] → [H, W, C].

    The block's samples are summed in row-major order, the order of numpy's ``mean(axis=(1, 3))`` on the
    blocked [H, factor, W, factor, C] view, without its reduction machinery.
    """
    height, width, channels = image.shape
    blocks = image.reshape(height // factor, factor, width // factor, factor, channels)
    total = blocks[:, 0, :, 0]
    for row in range(factor):
        for col in range(factor):
            if row or col:
                total = total + blocks[:, row, :, col]
    return total / (factor * factor)


def render_view(
    scene: Scene, view: View, light: Light, background: Sequence[float] = (0.0, 0.0, 0.0), seed: int = 0
) -> RenderResult:
    """Ray-trace the scene seen by one camera's view into a view.width×view.height image.

    background: RGB in [0, 1] where nothing is hit. The colour averages the view's s×s sub-pixel rays; mask,
    depth and face always come from the pixel-centre ray. seed: shadow-ray jitter; the result is a
    deterministic function of the inputs.
    """
    rng = np.random.default_rng(seed)
    width, height, supersample = view.width, view.height, view.supersample
    centre = _intersect(scene, view.origin, view.centre)
    samples = centre if supersample == 1 else _intersect(scene, view.origin, view.samples)

    colors = np.empty((len(view.samples.directions), 3))
    colors[:] = np.asarray(background, dtype=np.float64)
    colors[samples.ray] = _shade(scene, samples, view.samples.directions, light, rng)
    rgb = _box_downsample(colors.reshape(height * supersample, width * supersample, 3), supersample)

    mask = np.zeros(width * height, dtype=np.uint8)
    depth = np.zeros(width * height, dtype=np.float32)
    face = np.full(width * height, -1, dtype=np.int64)
    mask[centre.ray] = scene.part_of_face[centre.face]
    depth[centre.ray] = centre.location @ view.world2cam[2, :3] + view.world2cam[2, 3]
    face[centre.ray] = centre.face
    return RenderResult(
        rgb=np.clip(rgb, 0.0, 1.0).astype(np.float32),
        mask=mask.reshape(height, width),
        depth=depth.reshape(height, width),
        face=face.reshape(height, width),
    )


def render(
    layers: Sequence[MeshLayer],
    K: np.ndarray,
    world2cam: np.ndarray,
    width: int,
    height: int,
    light: Light,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    supersample: int = 1,
    seed: int = 0,
) -> RenderResult:
    """Ray-trace the layers seen by one OpenCV camera (K [3, 3], world2cam [4, 4]) into a width×height image.

    One image of :func:`render_view` with a Scene of the layers and a View of the camera; supersample:
    s ≥ 1 sub-pixel rays per pixel side.
    """
    return render_view(Scene(layers), View(K, world2cam, width, height, supersample), light, background, seed)
