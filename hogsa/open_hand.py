"""The open hand: a procedural, license-free hand model written in MANO's pickle format.

hogsa's default hand when no licensed MANO download is configured. ``open_hand_file(side)`` builds
``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` once and caches it; the file loads through
``smplx.MANO(..., use_pca=False, flat_hand_mean=True, num_betas=10)`` like the official one. It holds
only plain Python containers, strings and numbers, numpy arrays and a scipy.sparse ``J_regressor``,
so hogsa's restricted unpickler accepts it.

Construction (deterministic; metres, right hand; the left one is its mirror image):

1. A designed skeleton (``_DIGITS`` → ``_Skeleton``): each finger and the thumb is a planar chain of
   three tapered capsules; joints in MANO order (0 wrist, 1-3 index, 4-6 middle, 7-9 pinky,
   10-12 ring, 13-15 thumb CMC/MCP/IP). Joint pivots sit 0.35 digit radii palmward of the capsule
   axis (anatomical axes are nearer the middle): with pure linear blend skinning this keeps the
   palmar skin of a joint flexed to 90 degrees from collapsing.
2. A signed distance field: a rounded palm slab and a forearm stub, smoothly united with the
   digits (digits blend into each other only in short webs at their bases). Marching cubes
   on a 5 mm grid gives ~2,300 vertices with even edges; tangential relaxation keeps them on the
   surface. The mesh is one closed, consistently wound, outward-facing genus-0 manifold.
3. Skinning weights: a vertex follows the bone it lies on; each joint blends parent and child
   linearly over 1.5 digit radii either side of the joint plane; fingertips and the palm away
   from the knuckles are rigid (weight exactly 1).
4. A sparse ``J_regressor`` reproducing each designed joint from a ring of nearby vertices.
5. Ten shape components (``shape_names``): displacement fields of about 5 % per unit beta built
   from the skeleton and the weights (lengths move along the bones, so the joints follow).

Canonical frame: wrist joint at the origin, fingers along -x, palm facing -y (back of the hand +y),
thumb on the +z side. The left hand mirrors the right through x = 0 (same vertex order and tip ids,
faces re-wound); with MANO's axis-angle convention the left pose (rx, ry, rz) equals the right pose
(rx, -ry, -rz).

Pose: the open hand has no pose-corrective blend shapes — ``posedirs`` is zero and posing is pure
linear blend skinning. ``flexion_axes`` (16, 3) holds each joint's flexion axis in the template
frame: a positive rotation about it curls the bone toward the palm (right hand: close to +z for the
fingers, (0.60, -0.64, 0.48) for the thumb). ``fist_pose`` and ``pinch_pose`` are built from them.

Entries beyond MANO's: ``tip_ids`` (5,) fingertip vertices (thumb, index, middle, ring, pinky),
``shape_names`` (10 str), ``bone_segments`` (16, 2, 3) start/end of each joint's bone (joint 0:
wrist to middle MCP), ``flexion_axes`` (16, 3), ``palm_vertex_ids`` and ``fingerpad_vertex_ids``
(palmar surface of the palm and of the distal phalanges: hand-centric contact priors) and
``open_hand_version``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse
from scipy.optimize import lsq_linear
from scipy.spatial import ConvexHull

Side = Literal["right", "left"]

OPEN_HAND_VERSION = 1  # bump when the geometry or rig changes, so cached files are rebuilt

NUM_JOINTS = 16
PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
ROOT_PARENT = 4294967295  # MANO's kintree_table marks the root's parent as uint32(-1)
FINGER_JOINTS = {
    "index": (1, 2, 3), "middle": (4, 5, 6), "pinky": (7, 8, 9), "ring": (10, 11, 12), "thumb": (13, 14, 15),
}
TIP_ORDER = ("thumb", "index", "middle", "ring", "pinky")
PALM_DIRECTION = np.array([0.0, -1.0, 0.0])  # the palm faces -y

SHAPE_NAMES = [
    "size: uniform scale about the wrist, +5 % per unit",
    "palm width: palm spread along z, digits carried along, +5 % per unit",
    "palm length: palm stretched along x, digits carried along, +6 % per unit",
    "finger length: index, middle, ring and pinky bones lengthened, +6 % per unit",
    "finger thickness: radial growth of all five digits, +8 % per unit",
    "thumb length: thumb metacarpal and phalanges lengthened, +7 % per unit",
    "index length: index phalanges lengthened, +7 % per unit",
    "middle length: middle-finger phalanges lengthened, +7 % per unit",
    "ring length: ring-finger phalanges lengthened, +7 % per unit",
    "pinky length: pinky phalanges lengthened, +7 % per unit",
]

GRID_STEP = 0.005  # marching-cubes voxel, m: sets the resolution (~2,300 vertices, ~4.7 mm edges)
SMOOTH_K_DIGIT = 0.002  # smooth-minimum radius between the capsules of one digit, m
SMOOTH_K_WEB = 0.008  # smooth-minimum radius between neighbouring digits (short webs at their bases), m
SMOOTH_K_PALM = 0.006  # smooth-minimum radius between the digits and the palm, m
RADIUS_TAPER = 0.92  # capsule radius ratio from one joint to the next
JOINT_PALMAR_OFFSET = 0.35  # joint pivots sit this fraction of the digit radius palmward of its axis
JOINT_BLEND = 1.5  # half-width of each joint's skinning blend, in digit radii at the joint
PALM_BLEND = 0.006  # m; signed-distance difference over which palm and thumb metacarpal blend
WEIGHT_SMOOTHING_ROUNDS = 2  # one-ring averaging rounds softening region boundaries
WEIGHT_FLOOR = 0.01  # smaller weights are dropped, so far-away bones have exactly zero influence


# ----------------------------------------------------------------------------------------------
# Skeleton
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Digit:
    """Design of a finger or the thumb: a planar chain of three capsules (metres, degrees)."""

    base: tuple[float, float, float]  # axis point of the first joint (finger MCP, thumb CMC)
    direction: tuple[float, float, float]  # direction of the first bone (normalised on use)
    pad: tuple[float, float, float]  # roughly where the pad faces; made orthogonal to direction
    lengths: tuple[float, float, float]  # joint to joint; the last is joint to the skin at the tip
    rest_flex: tuple[float, float, float]  # flexion already present at each joint in the template
    radius: float  # capsule radius at the first joint; tapers by RADIUS_TAPER per bone


# Adult proportions: wrist to middle tip 0.187 m, palm 0.080 m wide; fingers splay 1-17 degrees.
_DIGITS = {
    "index": _Digit((-0.088, 0, 0.027), (-1, 0, 0.17), (0, -1, 0), (0.041, 0.024, 0.022), (3, 4, 3), 0.0092),
    "middle": _Digit((-0.091, 0, 0.008), (-1, 0, 0.02), (0, -1, 0), (0.045, 0.028, 0.024), (3, 4, 3), 0.0094),
    "pinky": _Digit((-0.078, 0, -0.029), (-1, 0, -0.30), (0, -1, 0), (0.034, 0.020, 0.021), (3, 4, 3), 0.0080),
    "ring": _Digit((-0.087, 0, -0.011), (-1, 0, -0.13), (0, -1, 0), (0.043, 0.027, 0.024), (3, 4, 3), 0.0088),
    # the thumb leaves the palm 31 degrees off the index and 16 palmward, its pad turned to the fingers
    "thumb": _Digit(
        (-0.020, -0.010, 0.022), (-0.77, -0.28, 0.58), (0, -0.6, -0.8), (0.043, 0.032, 0.027), (0, 5, 5), 0.0125
    ),
}


@dataclass(frozen=True)
class _Skeleton:
    """The designed rig of the right hand in its template frame (metres)."""

    joints: np.ndarray  # (16, 3) joint pivots
    bone_ends: np.ndarray  # (16, 3) end of each joint's bone: the child joint, or the fingertip
    capsules: np.ndarray  # (16, 2, 3) axis start/end of each bone's capsule; row 0 unused (palm)
    radii: np.ndarray  # (16, 2) capsule radius at its start and end
    flexion_axes: np.ndarray  # (16, 3) unit axes; positive rotation curls the bone palmward; row 0 zero
    pad_directions: np.ndarray  # (16, 3) unit palmar direction of each bone; row 0 = PALM_DIRECTION


def _normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation of vectors (..., 3) about a unit ``axis`` by ``angle`` radians."""
    return v * np.cos(angle) + np.cross(axis, v) * np.sin(angle) + axis * (v @ axis) * (1 - np.cos(angle))


def _skeleton() -> _Skeleton:
    """The right-hand skeleton built from ``_DIGITS`` (cheap; no mesh needed)."""
    joints = np.zeros((NUM_JOINTS, 3))
    ends = np.zeros((NUM_JOINTS, 3))
    capsules = np.zeros((NUM_JOINTS, 2, 3))
    radii = np.zeros((NUM_JOINTS, 2))
    axes = np.zeros((NUM_JOINTS, 3))
    pads = np.tile(PALM_DIRECTION, (NUM_JOINTS, 1))
    for name, digit in _DIGITS.items():
        direction = _normalize(np.asarray(digit.direction, float))
        pad = np.asarray(digit.pad, float)
        pad = _normalize(pad - (pad @ direction) * direction)
        axis = np.cross(direction, pad)  # rotating `direction` about `axis` turns it toward `pad`
        point, radius, flex = np.asarray(digit.base, float), digit.radius, 0.0
        for k, joint in enumerate(FINGER_JOINTS[name]):
            flex += np.radians(digit.rest_flex[k])
            bone_dir, bone_pad = _rotate(direction, axis, flex), _rotate(pad, axis, flex)
            end_radius = radius * RADIUS_TAPER
            length = digit.lengths[k] - (end_radius if k == 2 else 0.0)  # the tip's skin is a radius further
            capsules[joint] = point, point + length * bone_dir
            radii[joint] = radius, end_radius
            joints[joint] = point + JOINT_PALMAR_OFFSET * radius * bone_pad
            ends[joint] = capsules[joint, 1] + JOINT_PALMAR_OFFSET * end_radius * bone_pad
            axes[joint], pads[joint] = axis, bone_pad
            point, radius = capsules[joint, 1], end_radius
    ends[0] = joints[FINGER_JOINTS["middle"][0]]
    return _Skeleton(joints, ends, capsules, radii, axes, pads)


# ----------------------------------------------------------------------------------------------
# Signed distance field (negative inside), evaluated on points (N, 3)
# ----------------------------------------------------------------------------------------------


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum of two distance fields, blending where they differ by < k."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def _tapered_capsule(points: np.ndarray, start: np.ndarray, end: np.ndarray, r0: float, r1: float) -> np.ndarray:
    """Approximate signed distance (N,) to a capsule whose radius goes linearly from r0 to r1."""
    axis = end - start
    t = np.clip((points - start) @ axis / (axis @ axis), 0.0, 1.0)
    return np.linalg.norm(points - (start + t[:, None] * axis), axis=1) - (r0 + (r1 - r0) * t)


def _rounded_box(points: np.ndarray, center: tuple, half_size: tuple, rounding: float) -> np.ndarray:
    """Exact signed distance (N,) to an axis-aligned box with edges rounded by ``rounding``."""
    q = np.abs(points - np.asarray(center)) - (np.asarray(half_size) - rounding)
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0) - rounding


def _polygon_sdf(points_2d: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Exact signed distance (N,) from 2-D points to a convex counter-clockwise polygon (M, 2)."""
    dist = np.full(len(points_2d), np.inf)
    inside = np.ones(len(points_2d), bool)
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0)):
        edge, rel = b - a, points_2d - a
        t = np.clip(rel @ edge / (edge @ edge), 0.0, 1.0)
        dist = np.minimum(dist, np.linalg.norm(rel - t[:, None] * edge, axis=1))
        inside &= edge[0] * rel[:, 1] - edge[1] * rel[:, 0] > 0
    return np.where(inside, -dist, dist)


def _inset_polygon(polygon: np.ndarray, distance: float) -> np.ndarray:
    """Convex counter-clockwise polygon (M, 2) with every edge moved inward by ``distance``."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    normals = _normalize(np.stack([edges[:, 1], -edges[:, 0]], axis=1))  # outward
    offsets = np.einsum("ij,ij->i", normals, polygon) - distance
    prev = np.roll(np.arange(len(polygon)), 1)  # vertex i joins edges i-1 and i
    lines = np.stack([normals[prev], normals], axis=1)
    return np.linalg.solve(lines, np.stack([offsets[prev], offsets], axis=1)[..., None])[..., 0]


def _rounded_slab(
    points: np.ndarray, outline_xz: np.ndarray, half_thickness: float, corner: float, rim: float
) -> np.ndarray:
    """Signed distance (N,) to the slab |y| <= half_thickness over a convex x-z outline.

    ``outline_xz`` (M, 2, counter-clockwise in (x, z)) is the mid-plane outline; its corners are
    rounded with radius ``corner`` and the slab's rims with radius ``rim`` (rim <= corner).
    """
    outline = _polygon_sdf(points[:, [0, 2]], _inset_polygon(outline_xz, corner)) - corner
    w = np.stack([outline + rim, np.abs(points[:, 1]) - (half_thickness - rim)], axis=1)
    return np.minimum(w.max(axis=1), 0.0) + np.linalg.norm(np.maximum(w, 0.0), axis=1) - rim


def _palm_sdf(points: np.ndarray, skel: _Skeleton) -> np.ndarray:
    """Palm (25 mm thick, reaching 4 mm past the knuckles) smoothly united with a forearm stub."""
    mcps = [FINGER_JOINTS[name][0] for name in ("pinky", "ring", "middle", "index")]
    knuckles = [skel.capsules[j, 0, [0, 2]] - [0.004, 0.0] for j in mcps]
    edges = [[-0.004, -0.027], [-0.025, -0.038], [-0.060, -0.040], [-0.078, -0.038],  # wrist, ulnar edge
             [-0.088, 0.036], [-0.055, 0.041], [-0.025, 0.036], [-0.004, 0.026]]  # thumb web, radial edge
    outline = np.array(knuckles + edges)
    outline = outline[ConvexHull(outline).vertices]  # counter-clockwise
    palm = _rounded_slab(points, outline, half_thickness=0.0125, corner=0.010, rim=0.008)
    forearm = _rounded_box(points, (0.010, 0.0, 0.0), (0.022, 0.016, 0.026), 0.014)
    return _smooth_min(palm, forearm, 2 * SMOOTH_K_PALM)


def _bone_sdfs(points: np.ndarray, skel: _Skeleton) -> np.ndarray:
    """(N, 16) signed distance to each joint's primitive; column 0 is the palm."""
    out = np.empty((len(points), NUM_JOINTS))
    out[:, 0] = _palm_sdf(points, skel)
    for j in range(1, NUM_JOINTS):
        out[:, j] = _tapered_capsule(points, *skel.capsules[j], *skel.radii[j])
    return out


def _hand_sdf(points: np.ndarray, skel: _Skeleton) -> np.ndarray:
    """(N,) signed distance of the whole hand; neighbouring digits join only in short webs."""
    bones = _bone_sdfs(points, skel)
    digits = []
    for joints in FINGER_JOINTS.values():
        digit = bones[:, joints[0]]
        for j in joints[1:]:
            digit = _smooth_min(digit, bones[:, j], SMOOTH_K_DIGIT)
        digits.append(digit)
    webbed = digits[0]
    for digit in digits[1:]:
        webbed = _smooth_min(webbed, digit, SMOOTH_K_WEB)
    return _smooth_min(bones[:, 0], webbed, SMOOTH_K_PALM)


def _sdf_gradient(points: np.ndarray, skel: _Skeleton, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Field values (N,) and central-difference gradients (N, 3) of ``_hand_sdf``."""
    offsets = np.vstack([np.zeros((1, 3)), np.eye(3) * eps, -np.eye(3) * eps])
    values = _hand_sdf((points[None] + offsets[:, None]).reshape(-1, 3), skel).reshape(7, -1)
    return values[0], (values[1:4] - values[4:7]).T / (2 * eps)


# ----------------------------------------------------------------------------------------------
# Surface mesh
# ----------------------------------------------------------------------------------------------


def _vertex_adjacency(n_verts: int, faces: np.ndarray, include_self: bool = True) -> scipy.sparse.csr_matrix:
    """(V, V) row-stochastic averaging over each vertex's edge neighbours (and itself)."""
    own = np.arange(n_verts) if include_self else np.zeros(0, np.int64)
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], own])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], own])
    adj = scipy.sparse.coo_matrix((np.ones(len(i)), (i, j)), shape=(n_verts, n_verts)).tocsr()
    adj = ((adj + adj.T) > 0).astype(np.float64)
    return scipy.sparse.diags(1.0 / np.asarray(adj.sum(axis=1)).ravel()) @ adj


def _face_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) area-scaled face normals (right-hand rule on the winding)."""
    return np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])


def _vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals."""
    normals = np.zeros_like(verts)
    face_normals = _face_normals(verts, faces)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return _normalize(normals)


def _extract_surface(skel: _Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Even triangle mesh of the hand SDF: (V, 3) float64 vertices, (F, 3) int64 faces, outward.

    Marching cubes on a coarse grid yields the target resolution directly, with near-uniform edges
    (quadric decimation of a fine mesh leaves centimetre-long slivers along the digits, which cannot
    bend at the joints); tangential relaxation then evens the triangles out on the surface.
    """
    from skimage.measure import marching_cubes

    reach = np.concatenate([skel.capsules[1:].reshape(-1, 3), [[0.035, 0.0, 0.0]]])
    lo, hi = reach.min(axis=0) - 0.025, reach.max(axis=0) + 0.025
    grid = np.stack(np.meshgrid(*[np.arange(a, b, GRID_STEP) for a, b in zip(lo, hi)], indexing="ij"), axis=-1)
    sdf = _hand_sdf(grid.reshape(-1, 3), skel).reshape(grid.shape[:3])
    faces_of_grid = [sdf[0], sdf[-1], sdf[:, 0], sdf[:, -1], sdf[:, :, 0], sdf[:, :, -1]]
    if min(face.min() for face in faces_of_grid) <= 0:
        raise RuntimeError("open hand surface touches the sampling grid boundary")
    verts, faces, _, _ = marching_cubes(sdf, level=0.0, spacing=(GRID_STEP,) * 3)
    verts, faces = verts + lo, faces.astype(np.int64)
    if np.einsum("ij,ij->", verts[faces[:, 0]], _face_normals(verts, faces)) < 0:  # 6 x signed volume
        faces = faces[:, ::-1].copy()
    verts = _relax_on_surface(verts, faces, skel)
    _check_surface(verts, faces, skel)
    return verts, faces


def _project_to_surface(points: np.ndarray, skel: _Skeleton, iterations: int = 3) -> np.ndarray:
    """Points (N, 3) moved onto the SDF zero level set by Newton steps along the gradient."""
    for _ in range(iterations):
        value, grad = _sdf_gradient(points, skel)
        points = points - (value / np.maximum((grad * grad).sum(axis=1), 1e-6))[:, None] * grad
    return points


def _relax_on_surface(verts: np.ndarray, faces: np.ndarray, skel: _Skeleton, rounds: int = 10) -> np.ndarray:
    """(V, 3) vertices after tangential Laplacian relaxation, re-projected onto the SDF each round."""
    average = _vertex_adjacency(len(verts), faces, include_self=False)
    for _ in range(rounds):
        normals = _vertex_normals(verts, faces)
        step = average @ verts - verts
        step -= (step * normals).sum(axis=1, keepdims=True) * normals
        verts = _project_to_surface(verts + 0.5 * step, skel)
    return verts


def _check_surface(verts: np.ndarray, faces: np.ndarray, skel: _Skeleton) -> None:
    """Raise unless the mesh is one closed, outward, genus-0 manifold with no degenerate face."""
    import trimesh

    mesh = trimesh.Trimesh(verts, faces, process=False)
    _, grad = _sdf_gradient(verts[faces].mean(axis=1), skel)
    checks = {
        "watertight": mesh.is_watertight,
        "winding consistent": mesh.is_winding_consistent,
        "single genus-0 component": mesh.body_count == 1 and mesh.euler_number == 2,
        "outward": mesh.volume > 0 and bool((np.einsum("ij,ij->i", mesh.face_normals, grad) > 0).all()),
        "no degenerate faces": mesh.area_faces.min() > 1e-9,
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise RuntimeError(f"open hand mesh failed its checks: {', '.join(failed)}")


# ----------------------------------------------------------------------------------------------
# Rig: skinning weights and joint regressor
# ----------------------------------------------------------------------------------------------


def _ramp(x: np.ndarray) -> np.ndarray:
    """Linear step from 0 (x <= -1) to 1 (x >= 1)."""
    return np.clip(0.5 + 0.5 * x, 0.0, 1.0)


def _joint_plane_normal(skel: _Skeleton, joint: int) -> np.ndarray:
    """Unit normal (3,) of the cross-section through a joint: mean direction of the bones meeting there."""
    if joint == 0:
        return _normalize(skel.bone_ends[0] - skel.joints[0])
    own = _normalize(skel.capsules[joint, 1] - skel.capsules[joint, 0])
    parent = PARENTS[joint]
    incoming = _normalize(skel.capsules[parent, 1] - skel.capsules[parent, 0]) if parent > 0 else own
    return _normalize(own + incoming)


def _skinning_weights(verts: np.ndarray, faces: np.ndarray, skel: _Skeleton) -> np.ndarray:
    """(V, 16) LBS weights, rows summing to 1: a vertex follows its bone, blending near joints.

    Each vertex belongs to its nearest digit. Along the digit, every joint hands it from the parent
    bone (the palm for the first joint) to its own bone, linearly over ``JOINT_BLEND`` radii either
    side of the joint plane: a blend this wide keeps linear blend skinning from crushing the palmar
    skin of a 90-degree joint. The thumb leaves the palm sideways, so palm vertices beside its
    metacarpal also stay with the palm by distance (``PALM_BLEND``). Two rounds of one-ring
    smoothing soften region boundaries; weights below ``WEIGHT_FLOOR`` are dropped, so fingertips and
    the palm away from the knuckles are rigid.
    """
    sdf = _bone_sdfs(verts, skel)
    weights = np.zeros_like(sdf)
    chains = list(FINGER_JOINTS.values())
    nearest = np.argmin(np.stack([sdf[:, list(chain)].min(axis=1) for chain in chains], axis=1), axis=1)
    for k, chain in enumerate(chains):
        rows = np.flatnonzero(nearest == k)
        on_palm = np.zeros(len(rows))
        if chain == FINGER_JOINTS["thumb"]:
            on_palm = _ramp((sdf[rows][:, list(chain)].min(axis=1) - sdf[rows, 0]) / PALM_BLEND)
        weights[rows, 0] += on_palm
        share, parent = 1.0 - on_palm, 0  # the part of each vertex still travelling down the chain
        for j in chain:
            signed = (verts[rows] - skel.joints[j]) @ _joint_plane_normal(skel, j)
            past = _ramp(signed / (JOINT_BLEND * skel.radii[j, 0]))
            weights[rows, parent] += share * (1.0 - past)
            share, parent = share * past, j
        weights[rows, parent] += share
    average = _vertex_adjacency(len(verts), faces)
    for _ in range(WEIGHT_SMOOTHING_ROUNDS):
        weights = average @ weights
    weights[weights < WEIGHT_FLOOR] = 0.0
    return weights / weights.sum(axis=1, keepdims=True)


def _joint_regressor(verts: np.ndarray, skel: _Skeleton, ring_size: int = 40) -> scipy.sparse.csc_matrix:
    """(16, V) nonnegative rows summing to 1 that reproduce each designed joint from nearby vertices.

    For each joint, the ``ring_size`` vertices closest to it within a 4 mm slab across the joint get
    weights as close to uniform as possible while regressing the joint pivot (to ~0.01 mm).
    """
    rows, cols, vals = [], [], []
    stiff = 1e5  # weight of the constraints (joint position, sum to one) against uniformity
    for j in range(NUM_JOINTS):
        offset = verts - skel.joints[j]
        in_slab = np.flatnonzero(np.abs(offset @ _joint_plane_normal(skel, j)) < 0.004)
        ring = in_slab[np.argsort(np.linalg.norm(offset[in_slab], axis=1))[:ring_size]]
        a = np.vstack([stiff * verts[ring].T, stiff * np.ones((1, len(ring))), np.eye(len(ring))])
        b = np.concatenate([stiff * skel.joints[j], [stiff], np.full(len(ring), 1.0 / len(ring))])
        w = lsq_linear(a, b, bounds=(0.0, np.inf)).x
        w = np.where(w > 1e-6, w, 0.0)
        w /= w.sum()
        error = np.linalg.norm(w @ verts[ring] - skel.joints[j])
        if error > 1e-4:
            raise RuntimeError(f"open hand joint {j} cannot be regressed from its ring ({error * 1e3:.2f} mm)")
        rows += [j] * int((w > 0).sum())
        cols += ring[w > 0].tolist()
        vals += w[w > 0].tolist()
    return scipy.sparse.csc_matrix((vals, (rows, cols)), shape=(NUM_JOINTS, len(verts)))


# ----------------------------------------------------------------------------------------------
# Shape space: displacement fields (V, 3) per unit beta
# ----------------------------------------------------------------------------------------------


def _length_field(
    verts: np.ndarray, weights: np.ndarray, skel: _Skeleton, digits: tuple[str, ...], rate: float
) -> np.ndarray:
    """Every bone of ``digits`` lengthened by ``rate`` (fraction per unit beta).

    A vertex on bone j moves with the accumulated growth of the bones before it in the digit plus
    ``rate`` times its own distance past joint j along the bone, blended by the skinning weights;
    joint cross-sections move rigidly, so the regressed joints follow.
    """
    field = np.zeros_like(verts)
    for name in digits:
        carried = np.zeros(3)
        for j in FINGER_JOINTS[name]:
            bone = skel.bone_ends[j] - skel.joints[j]
            along = np.maximum((verts - skel.joints[j]) @ _normalize(bone), 0.0)
            field += weights[:, j, None] * (carried + rate * along[:, None] * _normalize(bone))
            carried = carried + rate * bone  # the bone ends at the next joint of the digit
    return field


def _thickness_field(verts: np.ndarray, weights: np.ndarray, skel: _Skeleton, rate: float) -> np.ndarray:
    """Radial growth of every digit by ``rate`` times the distance to its capsule axis."""
    field = np.zeros_like(verts)
    for j in range(1, NUM_JOINTS):
        start, end = skel.capsules[j]
        t = np.clip((verts - start) @ (end - start) / ((end - start) @ (end - start)), 0.0, 1.0)
        field += weights[:, j, None] * rate * (verts - (start + t[:, None] * (end - start)))
    return field


def _palm_field(verts: np.ndarray, weights: np.ndarray, skel: _Skeleton, axis: int, rate: float) -> np.ndarray:
    """Palm stretched along ``axis`` (0: length, behind the wrist unmoved; 2: width) by ``rate``.

    Palm vertices move with their own coordinate; digit vertices rigidly with their first joint.
    """
    anchor = weights[:, 0] * verts[:, axis]
    for joints in FINGER_JOINTS.values():
        anchor += weights[:, list(joints)].sum(axis=1) * skel.joints[joints[0], axis]
    if axis == 0:
        anchor = np.minimum(anchor, 0.0)
    field = np.zeros_like(verts)
    field[:, axis] = rate * anchor
    return field


def _shapedirs(verts: np.ndarray, weights: np.ndarray, skel: _Skeleton) -> np.ndarray:
    """(V, 3, 10) shape components in the order of ``SHAPE_NAMES``."""
    fingers = ("index", "middle", "ring", "pinky")
    fields = [
        0.05 * verts,  # the wrist joint is the origin
        _palm_field(verts, weights, skel, axis=2, rate=0.05),
        _palm_field(verts, weights, skel, axis=0, rate=0.06),
        _length_field(verts, weights, skel, fingers, rate=0.06),
        _thickness_field(verts, weights, skel, rate=0.08),
        *[_length_field(verts, weights, skel, (name,), rate=0.07) for name in ("thumb", *fingers)],
    ]
    return np.stack(fields, axis=2)


# ----------------------------------------------------------------------------------------------
# Landmarks and contact priors
# ----------------------------------------------------------------------------------------------


def _tip_ids(verts: np.ndarray, weights: np.ndarray, skel: _Skeleton) -> np.ndarray:
    """(5,) int64: per digit in TIP_ORDER, the vertex furthest along its distal bone."""
    tips = []
    for name in TIP_ORDER:
        joints = list(FINGER_JOINTS[name])
        direction = _normalize(skel.capsules[joints[2], 1] - skel.capsules[joints[2], 0])
        digit = np.flatnonzero(weights[:, joints].sum(axis=1) > 0.5)
        tips.append(digit[np.argmax(verts[digit] @ direction)])
    return np.array(tips, dtype=np.int64)


def _contact_regions(
    verts: np.ndarray, faces: np.ndarray, weights: np.ndarray, skel: _Skeleton
) -> tuple[np.ndarray, np.ndarray]:
    """Vertex ids (sorted int64) on the palmar surface of the palm (with the thenar) and of the
    five distal phalanges (fingerpads, grouped in TIP_ORDER)."""
    normals = _vertex_normals(verts, faces)
    knuckle_x = max(skel.joints[FINGER_JOINTS[n][0], 0] for n in ("index", "middle", "ring", "pinky"))
    on_palm = weights[:, 0] + weights[:, FINGER_JOINTS["thumb"][0]] > 0.9
    palmar = normals @ PALM_DIRECTION > 0.5
    palm = on_palm & palmar & (verts[:, 0] < -0.01) & (verts[:, 0] > knuckle_x)
    pads = []
    for name in TIP_ORDER:
        distal = FINGER_JOINTS[name][2]
        pads.append(np.flatnonzero((weights[:, distal] > 0.9) & (normals @ skel.pad_directions[distal] > 0.5)))
    return np.flatnonzero(palm).astype(np.int64), np.concatenate(pads).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Reference poses
# ----------------------------------------------------------------------------------------------

# Flexion in degrees of each digit's three joints (MCP, PIP, DIP; thumb CMC, MCP, IP) about their
# flexion axes. The thumb angles were fitted: pinch puts the thumb tip on the index tip, fist lays
# the thumb across the middle phalanges of the index and middle fingers.
_FIST = {
    "index": (75, 90, 70), "middle": (75, 90, 70), "ring": (75, 90, 70), "pinky": (75, 90, 70), "thumb": (5, 37, 49),
}
_PINCH = {
    "index": (45, 50, 25), "middle": (20, 25, 15), "ring": (20, 25, 15), "pinky": (20, 25, 15), "thumb": (11, 20, 21),
}


def pose_from_flexion(side: Side, flexion: dict[str, tuple[float, float, float]]) -> np.ndarray:
    """(45,) absolute axis-angle hand pose (joints 1-15) flexing each named digit's joints.

    ``flexion`` maps digit names to three angles in degrees (positive curls toward the palm).
    """
    axes = _skeleton().flexion_axes
    pose = np.zeros((NUM_JOINTS, 3))
    for name, angles in flexion.items():
        for joint, angle in zip(FINGER_JOINTS[name], angles):
            pose[joint] = np.radians(angle) * axes[joint]
    if side == "left":  # mirrored through x = 0: (rx, ry, rz) -> (rx, -ry, -rz)
        pose *= np.array([1.0, -1.0, -1.0])
    return pose[1:].reshape(45)


def fist_pose(side: Side) -> np.ndarray:
    """(45,) absolute axis-angle fist: fingers flexed 75/90/70 degrees, thumb across them."""
    return pose_from_flexion(side, _FIST)


def pinch_pose(side: Side) -> np.ndarray:
    """(45,) absolute axis-angle precision pinch: thumb tip on the index tip (tip vertices ~8 mm apart)."""
    return pose_from_flexion(side, _PINCH)


# ----------------------------------------------------------------------------------------------
# Assembly, mirroring, cache
# ----------------------------------------------------------------------------------------------


def _build_right() -> dict[str, Any]:
    """MANO-format dict of the right open hand (about a second)."""
    skel = _skeleton()
    verts, faces = _extract_surface(skel)
    weights = _skinning_weights(verts, faces, skel)
    j_regressor = _joint_regressor(verts, skel)
    palm_ids, fingerpad_ids = _contact_regions(verts, faces, weights, skel)
    return {
        "v_template": verts,
        "f": faces,
        "J_regressor": j_regressor,
        "J": j_regressor @ verts,
        "kintree_table": np.stack([np.where(PARENTS < 0, ROOT_PARENT, PARENTS), np.arange(NUM_JOINTS)]),
        "weights": weights,
        "posedirs": np.zeros((len(verts), 3, 9 * (NUM_JOINTS - 1))),
        "shapedirs": _shapedirs(verts, weights, skel),
        "shape_names": list(SHAPE_NAMES),
        "hands_components": np.eye(45),
        "hands_mean": np.zeros(45),
        "hands_coeffs": np.zeros((1, 45)),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "tip_ids": _tip_ids(verts, weights, skel),
        "bone_segments": np.stack([skel.joints, skel.bone_ends], axis=1),
        "flexion_axes": skel.flexion_axes,
        "palm_vertex_ids": palm_ids,
        "fingerpad_vertex_ids": fingerpad_ids,
        "open_hand_version": OPEN_HAND_VERSION,
    }


def _mirror(right: dict[str, Any]) -> dict[str, Any]:
    """The left hand: the right one mirrored through x = 0, faces re-wound to stay outward.

    Positions and displacements get x negated; axial vectors (flexion axes) get y and z negated as a
    mirrored rotation does, so the left pose (rx, -ry, -rz) gives the mirror of the right pose (rx, ry, rz).
    """
    flip = np.array([-1.0, 1.0, 1.0])
    left = dict(right)
    left.update(
        v_template=right["v_template"] * flip,
        f=right["f"][:, ::-1].copy(),
        J=right["J"] * flip,
        shapedirs=right["shapedirs"] * flip[None, :, None],
        bone_segments=right["bone_segments"] * flip,
        flexion_axes=right["flexion_axes"] * -flip,
    )
    return left


_BUILT: dict[str, Any] = {}  # the right hand, built once per process


def build_open_hand(side: Side) -> dict[str, Any]:
    """MANO-format dict of the open hand for one side (deterministic, no randomness).

    Keys as in the official MANO pkl — ``v_template`` (V, 3) m, ``f`` (F, 3) int64, ``J_regressor``
    (16, V) csc, ``J`` (16, 3), ``kintree_table`` (2, 16), ``weights`` (V, 16), ``posedirs``
    (V, 3, 135) zero, ``shapedirs`` (V, 3, 10), ``hands_components`` (45, 45) identity,
    ``hands_mean`` (45,) zero, ``hands_coeffs`` (1, 45) zero, ``bs_style``, ``bs_type`` — plus
    ``tip_ids``, ``shape_names``, ``bone_segments``, ``flexion_axes``, ``palm_vertex_ids``,
    ``fingerpad_vertex_ids`` and ``open_hand_version`` (see the module docstring). Each call returns
    fresh copies.
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if not _BUILT:
        _BUILT.update(_build_right())
    right = {key: (value.copy() if hasattr(value, "copy") else value) for key, value in _BUILT.items()}
    return right if side == "right" else _mirror(right)


def default_cache_dir() -> Path:
    """``$HOGSA_CACHE/open_hand/v<VERSION>-<source hash>`` (default cache root ``~/.cache/hogsa``).

    The hash of this module's source keys the cache too, so an edited construction never reuses a
    file built by older code even when the version was not bumped.
    """
    root = Path(os.environ["HOGSA_CACHE"]) if os.environ.get("HOGSA_CACHE") else Path.home() / ".cache" / "hogsa"
    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    return root / "open_hand" / f"v{OPEN_HAND_VERSION}-{source}"


def open_hand_file(side: Side, cache_dir: str | Path | None = None) -> Path:
    """Path to ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` of the open hand, built on first use and cached.

    ``cache_dir`` defaults to ``default_cache_dir()``. The file is written atomically (a temporary
    file in the same folder, then ``os.replace``), so concurrent callers never read a partial file.
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"MANO_{side.upper()}.pkl"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    data = build_open_hand(side)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=path.name, suffix=".tmp", delete=False) as tmp:
        try:
            pickle.dump(data, tmp, protocol=4)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.chmod(tmp.name, 0o644)  # temporary files are created private; the cache is a normal file
    os.replace(tmp.name, path)
    return path
