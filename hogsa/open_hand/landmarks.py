"""Landmarks and contact priors on the open hand's surface: fingertip vertices, palm and fingerpads.

Vertex ids (int64) into the template mesh (right hand; the left one shares the vertex order).
"""

from __future__ import annotations

import numpy as np

from hogsa.open_hand.skeleton import FINGER_JOINTS, PALM_DIRECTION, TIP_ORDER, Skeleton, normalize
from hogsa.open_hand.surface import vertex_normals


def tip_ids(verts: np.ndarray, weights: np.ndarray, skel: Skeleton) -> np.ndarray:
    """(5,) int64: per digit in TIP_ORDER, the vertex furthest along its distal bone."""
    tips = []
    for name in TIP_ORDER:
        joints = list(FINGER_JOINTS[name])
        direction = normalize(skel.capsules[joints[2], 1] - skel.capsules[joints[2], 0])
        digit = np.flatnonzero(weights[:, joints].sum(axis=1) > 0.5)
        tips.append(digit[np.argmax(verts[digit] @ direction)])
    return np.array(tips, dtype=np.int64)


def contact_regions(
    verts: np.ndarray, faces: np.ndarray, weights: np.ndarray, skel: Skeleton
) -> tuple[np.ndarray, np.ndarray]:
    """Vertex ids (sorted int64) on the palmar surface of the palm (with the thenar) and of the
    five distal phalanges (fingerpads, grouped in TIP_ORDER)."""
    normals = vertex_normals(verts, faces)
    knuckle_x = max(skel.joints[FINGER_JOINTS[n][0], 0] for n in ("index", "middle", "ring", "pinky"))
    on_palm = weights[:, 0] + weights[:, FINGER_JOINTS["thumb"][0]] > 0.9
    palmar = normals @ PALM_DIRECTION > 0.5
    palm = on_palm & palmar & (verts[:, 0] < -0.01) & (verts[:, 0] > knuckle_x)
    pads = []
    for name in TIP_ORDER:
        distal = FINGER_JOINTS[name][2]
        pads.append(np.flatnonzero((weights[:, distal] > 0.9) & (normals @ skel.pad_directions[distal] > 0.5)))
    return np.flatnonzero(palm).astype(np.int64), np.concatenate(pads).astype(np.int64)
