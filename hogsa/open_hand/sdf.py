"""The open hand's signed distance field (metres, negative inside), evaluated on points (N, 3).

A rounded palm slab and a forearm stub, smoothly united with the digits' tapered capsules; the
capsules of one digit blend tightly, neighbouring digits only in short webs at their bases.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull

from hogsa.open_hand.skeleton import FINGER_JOINTS, NUM_JOINTS, Skeleton, normalize

SMOOTH_K_DIGIT = 0.002  # smooth-minimum radius between the capsules of one digit, m
SMOOTH_K_WEB = 0.008  # smooth-minimum radius between neighbouring digits (short webs at their bases), m
SMOOTH_K_PALM = 0.006  # smooth-minimum radius between the digits and the palm, m


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
    normals = normalize(np.stack([edges[:, 1], -edges[:, 0]], axis=1))  # outward
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


def _palm_sdf(points: np.ndarray, skel: Skeleton) -> np.ndarray:
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


def bone_sdfs(points: np.ndarray, skel: Skeleton) -> np.ndarray:
    """(N, 16) signed distance to each joint's primitive; column 0 is the palm."""
    out = np.empty((len(points), NUM_JOINTS))
    out[:, 0] = _palm_sdf(points, skel)
    for j in range(1, NUM_JOINTS):
        out[:, j] = _tapered_capsule(points, *skel.capsules[j], *skel.radii[j])
    return out


def hand_sdf(points: np.ndarray, skel: Skeleton) -> np.ndarray:
    """(N,) signed distance of the whole hand; neighbouring digits join only in short webs."""
    bones = bone_sdfs(points, skel)
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


def sdf_gradient(points: np.ndarray, skel: Skeleton, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Field values (N,) and central-difference gradients (N, 3) of ``hand_sdf``."""
    offsets = np.vstack([np.zeros((1, 3)), np.eye(3) * eps, -np.eye(3) * eps])
    values = hand_sdf((points[None] + offsets[:, None]).reshape(-1, 3), skel).reshape(7, -1)
    return values[0], (values[1:4] - values[4:7]).T / (2 * eps)
