"""The open hand's rig on its surface: linear blend skinning weights and the joint regressor.

Template frame of ``hogsa.open_hand.skeleton`` (right hand, metres). A vertex follows the bone it
lies on; each joint blends parent and child linearly over ``JOINT_BLEND`` digit radii either side of
the joint plane; fingertips and the palm away from the knuckles are rigid (weight exactly 1). The
sparse regressor reproduces each designed joint from a ring of nearby vertices.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from scipy.optimize import lsq_linear

from hogsa.open_hand.sdf import bone_sdfs
from hogsa.open_hand.skeleton import FINGER_JOINTS, NUM_JOINTS, Skeleton, joint_plane_normal
from hogsa.open_hand.surface import vertex_averaging

JOINT_BLEND = 1.5  # half-width of each joint's skinning blend, in digit radii at the joint
PALM_BLEND = 0.006  # m; signed-distance difference over which palm and thumb metacarpal blend
WEIGHT_SMOOTHING_ROUNDS = 2  # one-ring averaging rounds softening region boundaries
WEIGHT_FLOOR = 0.01  # smaller weights are dropped, so far-away bones have exactly zero influence
RING_SIZE = 40  # vertices regressing each joint
RING_SLAB = 0.004  # m; a joint's ring lies within this distance of the joint plane
REGRESSION_TOLERANCE = 1e-4  # m; largest accepted distance between a regressed joint and its pivot


def _ramp(x: np.ndarray) -> np.ndarray:
    """Linear step from 0 (x <= -1) to 1 (x >= 1)."""
    return np.clip(0.5 + 0.5 * x, 0.0, 1.0)


def _digit_weights(verts: np.ndarray, sdf: np.ndarray, skel: Skeleton, chain: tuple[int, int, int]) -> np.ndarray:
    """(N, 16) weights, rows summing to 1, of vertices (N, 3) assigned to the digit of joints ``chain``.

    ``sdf`` (N, 16) holds their distances to each bone (``bone_sdfs``). Each joint of the chain hands
    a vertex from the parent bone (the palm for the first joint) to its own bone across its plane.
    """
    weights = np.zeros((len(verts), NUM_JOINTS))
    on_palm = np.zeros(len(verts))
    if chain == FINGER_JOINTS["thumb"]:  # palm beside the thumb's metacarpal stays with the palm
        on_palm = _ramp((sdf[:, list(chain)].min(axis=1) - sdf[:, 0]) / PALM_BLEND)
    weights[:, 0] += on_palm
    share, parent = 1.0 - on_palm, 0  # the part of each vertex still travelling down the chain
    for j in chain:
        signed = (verts - skel.joints[j]) @ joint_plane_normal(skel, j)
        past = _ramp(signed / (JOINT_BLEND * skel.radii[j, 0]))
        weights[:, parent] += share * (1.0 - past)
        share, parent = share * past, j
    weights[:, parent] += share
    return weights


def skinning_weights(verts: np.ndarray, faces: np.ndarray, skel: Skeleton) -> np.ndarray:
    """(V, 16) LBS weights, rows summing to 1: a vertex follows its bone, blending near joints.

    Each vertex belongs to its nearest digit. Along the digit, every joint hands it from the parent
    bone to its own bone, linearly over ``JOINT_BLEND`` radii either side of the joint plane: a blend
    this wide keeps linear blend skinning from crushing the palmar skin of a 90-degree joint. The
    thumb leaves the palm sideways, so palm vertices beside its metacarpal also stay with the palm by
    distance (``PALM_BLEND``). Two rounds of one-ring smoothing soften region boundaries; weights
    below ``WEIGHT_FLOOR`` are dropped, so fingertips and the palm away from the knuckles are rigid.
    """
    sdf = bone_sdfs(verts, skel)
    weights = np.zeros_like(sdf)
    chains = list(FINGER_JOINTS.values())
    nearest = np.argmin(np.stack([sdf[:, list(chain)].min(axis=1) for chain in chains], axis=1), axis=1)
    for k, chain in enumerate(chains):
        rows = np.flatnonzero(nearest == k)
        weights[rows] = _digit_weights(verts[rows], sdf[rows], skel, chain)
    average = vertex_averaging(verts, faces, include_self=True)
    for _ in range(WEIGHT_SMOOTHING_ROUNDS):
        weights = average @ weights
    weights[weights < WEIGHT_FLOOR] = 0.0
    return weights / weights.sum(axis=1, keepdims=True)


def _joint_ring(verts: np.ndarray, skel: Skeleton, joint: int) -> np.ndarray:
    """Ids (``RING_SIZE``,) of the vertices nearest to ``joint`` within ``RING_SLAB`` of its plane."""
    offset = verts - skel.joints[joint]
    in_slab = np.flatnonzero(np.abs(offset @ joint_plane_normal(skel, joint)) < RING_SLAB)
    return in_slab[np.argsort(np.linalg.norm(offset[in_slab], axis=1))[:RING_SIZE]]


def _ring_weights(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(K,) nonnegative weights summing to 1, as uniform as possible, with ``w @ points`` ≈ ``target`` (3,)."""
    stiff = 1e5  # weight of the constraints (joint position, sum to one) against uniformity
    a = np.vstack([stiff * points.T, stiff * np.ones((1, len(points))), np.eye(len(points))])
    b = np.concatenate([stiff * target, [stiff], np.full(len(points), 1.0 / len(points))])
    w = lsq_linear(a, b, bounds=(0.0, np.inf)).x
    w = np.where(w > 1e-6, w, 0.0)
    w /= w.sum()
    return w


def joint_regressor(verts: np.ndarray, skel: Skeleton) -> scipy.sparse.csc_matrix:
    """(16, V) nonnegative rows summing to 1 that reproduce each designed joint from nearby vertices.

    For each joint, its ring of vertices (``_joint_ring``) gets weights as close to uniform as
    possible while regressing the joint pivot (to ~0.01 mm).
    """
    rows, cols, vals = [], [], []
    for j in range(NUM_JOINTS):
        ring = _joint_ring(verts, skel, j)
        w = _ring_weights(verts[ring], skel.joints[j])
        error = np.linalg.norm(w @ verts[ring] - skel.joints[j])
        if error > REGRESSION_TOLERANCE:
            raise RuntimeError(f"open hand joint {j} cannot be regressed from its ring ({error * 1e3:.2f} mm)")
        rows += [j] * int((w > 0).sum())
        cols += ring[w > 0].tolist()
        vals += w[w > 0].tolist()
    return scipy.sparse.csc_matrix((vals, (rows, cols)), shape=(NUM_JOINTS, len(verts)))
