"""The open hand's designed skeleton: MANO's joint layout and the capsule chain of each digit.

Right hand, template frame, metres: wrist joint at the origin, fingers along -x, palm facing -y,
thumb on the +z side. Each finger and the thumb is a planar chain of three tapered capsules; joint
pivots sit ``JOINT_PALMAR_OFFSET`` digit radii palmward of the capsule axis (anatomical axes are
nearer the middle), which keeps the palmar skin of a joint flexed to 90 degrees from collapsing under
pure linear blend skinning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Side = Literal["right", "left"]

NUM_JOINTS = 16
PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
FINGER_JOINTS = {
    "index": (1, 2, 3), "middle": (4, 5, 6), "pinky": (7, 8, 9), "ring": (10, 11, 12), "thumb": (13, 14, 15),
}
TIP_ORDER = ("thumb", "index", "middle", "ring", "pinky")
PALM_DIRECTION = np.array([0.0, -1.0, 0.0])  # the palm faces -y

RADIUS_TAPER = 0.92  # capsule radius ratio from one joint to the next
JOINT_PALMAR_OFFSET = 0.35  # joint pivots sit this fraction of the digit radius palmward of its axis


@dataclass(frozen=True)
class Digit:
    """Design of a finger or the thumb: a planar chain of three capsules (metres, degrees)."""

    base: tuple[float, float, float]  # axis point of the first joint (finger MCP, thumb CMC)
    direction: tuple[float, float, float]  # direction of the first bone (normalised on use)
    pad: tuple[float, float, float]  # roughly where the pad faces; made orthogonal to direction
    lengths: tuple[float, float, float]  # joint to joint; the last is joint to the skin at the tip
    rest_flex: tuple[float, float, float]  # flexion already present at each joint in the template
    radius: float  # capsule radius at the first joint; tapers by RADIUS_TAPER per bone


# Adult proportions: wrist to middle tip 0.187 m, palm 0.080 m wide; fingers splay 1-17 degrees.
DIGITS = {
    "index": Digit((-0.088, 0, 0.027), (-1, 0, 0.17), (0, -1, 0), (0.041, 0.024, 0.022), (3, 4, 3), 0.0092),
    "middle": Digit((-0.091, 0, 0.008), (-1, 0, 0.02), (0, -1, 0), (0.045, 0.028, 0.024), (3, 4, 3), 0.0094),
    "pinky": Digit((-0.078, 0, -0.029), (-1, 0, -0.30), (0, -1, 0), (0.034, 0.020, 0.021), (3, 4, 3), 0.0080),
    "ring": Digit((-0.087, 0, -0.011), (-1, 0, -0.13), (0, -1, 0), (0.043, 0.027, 0.024), (3, 4, 3), 0.0088),
    # the thumb leaves the palm 31 degrees off the index and 16 palmward, its pad turned to the fingers
    "thumb": Digit(
        (-0.020, -0.010, 0.022), (-0.77, -0.28, 0.58), (0, -0.6, -0.8), (0.043, 0.032, 0.027), (0, 5, 5), 0.0125
    ),
}


@dataclass(frozen=True)
class Skeleton:
    """The designed rig of the right hand in its template frame (metres)."""

    joints: np.ndarray  # (16, 3) joint pivots
    bone_ends: np.ndarray  # (16, 3) end of each joint's bone: the child joint, or the fingertip
    capsules: np.ndarray  # (16, 2, 3) axis start/end of each bone's capsule; row 0 unused (palm)
    radii: np.ndarray  # (16, 2) capsule radius at its start and end
    flexion_axes: np.ndarray  # (16, 3) unit axes; positive rotation curls the bone palmward; row 0 zero
    pad_directions: np.ndarray  # (16, 3) unit palmar direction of each bone; row 0 = PALM_DIRECTION


def check_side(side: str) -> None:
    """Raise unless ``side`` is ``"right"`` or ``"left"``."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")


def normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation of vectors (..., 3) about a unit ``axis`` by ``angle`` radians."""
    return v * np.cos(angle) + np.cross(axis, v) * np.sin(angle) + axis * (v @ axis) * (1 - np.cos(angle))


def build_skeleton() -> Skeleton:
    """The right-hand skeleton built from ``DIGITS`` (cheap; no mesh needed)."""
    joints = np.zeros((NUM_JOINTS, 3))
    ends = np.zeros((NUM_JOINTS, 3))
    capsules = np.zeros((NUM_JOINTS, 2, 3))
    radii = np.zeros((NUM_JOINTS, 2))
    axes = np.zeros((NUM_JOINTS, 3))
    pads = np.tile(PALM_DIRECTION, (NUM_JOINTS, 1))
    for name, digit in DIGITS.items():
        direction = normalize(np.asarray(digit.direction, float))
        pad = np.asarray(digit.pad, float)
        pad = normalize(pad - (pad @ direction) * direction)
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
    return Skeleton(joints, ends, capsules, radii, axes, pads)


def joint_plane_normal(skel: Skeleton, joint: int) -> np.ndarray:
    """Unit normal (3,) of the cross-section through a joint: mean direction of the bones meeting there."""
    if joint == 0:
        return normalize(skel.bone_ends[0] - skel.joints[0])
    own = normalize(skel.capsules[joint, 1] - skel.capsules[joint, 0])
    parent = PARENTS[joint]
    incoming = normalize(skel.capsules[parent, 1] - skel.capsules[parent, 0]) if parent > 0 else own
    return normalize(own + incoming)
