"""The open hand's shape space: ten displacement fields (V, 3) in metres per unit beta.

Built from the skeleton and the skinning weights: lengths move along the bones and joint
cross-sections move rigidly, so the regressed joints follow the surface.
"""

from __future__ import annotations

import numpy as np

from hogsa.open_hand.skeleton import FINGER_JOINTS, NUM_JOINTS, Skeleton, normalize

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


def _length_field(
    verts: np.ndarray, weights: np.ndarray, skel: Skeleton, digits: tuple[str, ...], rate: float
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
            along = np.maximum((verts - skel.joints[j]) @ normalize(bone), 0.0)
            field += weights[:, j, None] * (carried + rate * along[:, None] * normalize(bone))
            carried = carried + rate * bone  # the bone ends at the next joint of the digit
    return field


def _thickness_field(verts: np.ndarray, weights: np.ndarray, skel: Skeleton, rate: float) -> np.ndarray:
    """Radial growth of every digit by ``rate`` times the distance to its capsule axis."""
    field = np.zeros_like(verts)
    for j in range(1, NUM_JOINTS):
        start, end = skel.capsules[j]
        t = np.clip((verts - start) @ (end - start) / ((end - start) @ (end - start)), 0.0, 1.0)
        field += weights[:, j, None] * rate * (verts - (start + t[:, None] * (end - start)))
    return field


def _palm_field(verts: np.ndarray, weights: np.ndarray, skel: Skeleton, axis: int, rate: float) -> np.ndarray:
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


def shapedirs(verts: np.ndarray, weights: np.ndarray, skel: Skeleton) -> np.ndarray:
    """(V, 3, 10) shape components in the order of ``SHAPE_NAMES``, from vertices (V, 3) and weights (V, 16)."""
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
