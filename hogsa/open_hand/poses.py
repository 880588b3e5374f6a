"""Named poses of the open hand: (45,) absolute axis-angle hand poses (joints 1-15, radians).

Each joint is flexed about its designed flexion axis (``Skeleton.flexion_axes``); a positive angle
curls the bone toward the palm. The left hand mirrors the right through x = 0, so its pose
(rx, ry, rz) is the right pose (rx, -ry, -rz).
"""

from __future__ import annotations

import numpy as np

from hogsa.open_hand.skeleton import FINGER_JOINTS, NUM_JOINTS, Side, build_skeleton, check_side

# Flexion in degrees of each digit's three joints (MCP, PIP, DIP; thumb CMC, MCP, IP) about their
# flexion axes. The thumb angles were fitted: pinch puts the thumb tip on the index tip, fist lays
# the thumb across the middle phalanges of the index and middle fingers.
FIST_FLEXION = {
    "index": (75, 90, 70), "middle": (75, 90, 70), "ring": (75, 90, 70), "pinky": (75, 90, 70), "thumb": (5, 37, 49),
}
PINCH_FLEXION = {
    "index": (45, 50, 25), "middle": (20, 25, 15), "ring": (20, 25, 15), "pinky": (20, 25, 15), "thumb": (11, 20, 21),
}


def pose_from_flexion(side: Side, flexion: dict[str, tuple[float, float, float]]) -> np.ndarray:
    """(45,) absolute axis-angle hand pose (joints 1-15) flexing each named digit's joints.

    ``flexion`` maps digit names to three angles in degrees (positive curls toward the palm).
    """
    check_side(side)
    unknown = sorted(set(flexion) - set(FINGER_JOINTS))
    if unknown:
        raise ValueError(f"flexion names unknown digits {unknown}; expected some of {sorted(FINGER_JOINTS)}")
    axes = build_skeleton().flexion_axes
    pose = np.zeros((NUM_JOINTS, 3))
    for name, angles in flexion.items():
        for joint, angle in zip(FINGER_JOINTS[name], angles):
            pose[joint] = np.radians(angle) * axes[joint]
    if side == "left":  # mirrored through x = 0: (rx, ry, rz) -> (rx, -ry, -rz)
        pose *= np.array([1.0, -1.0, -1.0])
    return pose[1:].reshape(45)


def fist_pose(side: Side) -> np.ndarray:
    """(45,) absolute axis-angle fist: fingers flexed 75/90/70 degrees, thumb across them."""
    return pose_from_flexion(side, FIST_FLEXION)


def pinch_pose(side: Side) -> np.ndarray:
    """(45,) absolute axis-angle precision pinch: thumb tip on the index tip (tip vertices ~8 mm apart)."""
    return pose_from_flexion(side, PINCH_FLEXION)
