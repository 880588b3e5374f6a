"""Bimanual grasps on an object for the embedded dataset: hand placement, finger closure, contact.

World frame: metres, +z up, the object standing on the plane z = 0. A grasp places each hand's palm
against a surface site (palm facing into the surface, fingers along a chosen tangent), then curls each
finger until it touches the surface and backs the hand off until nothing penetrates by more than a
tolerance. Distances to the object are signed (negative inside), see ``hogsa.data.contact``. A grasp
is a ``HandPose`` of one row: MANO parameters in the world frame, the subject's betas included.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import trimesh

from hogsa.data.contact import SurfaceDistance
from hogsa.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from hogsa.hand import HandModel, HandPose, hand_vertices, rest_wrists
from hogsa.open_hand.poses import fist_pose, pinch_pose
from hogsa.open_hand.skeleton import FINGER_JOINTS

CONTACT_GAP = 0.001  # m: fingers stop this far from the surface
PALM_GAP = 0.002  # m: the palm centre's clearance from the surface
MAX_PENETRATION = 0.001  # m: the hand is backed off until no vertex is deeper than this
RELAXED_CURL = 0.5  # curl of a finger that touches nothing


def one_hand_pose(global_orient: np.ndarray, hand_pose: np.ndarray, betas: np.ndarray, transl: np.ndarray
                  ) -> HandPose:
    """A HandPose of one row from [3] axis-angle, [45] absolute pose, [10] betas and [3] metres."""
    return HandPose(*(np.asarray(field)[None] for field in (global_orient, hand_pose, betas, transl)))


def palm_frame(side: str, normal: np.ndarray, finger_direction: np.ndarray) -> np.ndarray:
    """[3,3] wrist rotation putting the palm against a surface of outward ``normal``, fingers along
    ``finger_direction`` (made tangent). Open-hand frame: palm faces -y, right fingers -x, left +x."""
    normal = normal / np.linalg.norm(normal)
    tangent = finger_direction - (finger_direction @ normal) * normal
    tangent /= np.linalg.norm(tangent)
    x_axis = -tangent if side == "right" else tangent  # where the hand's x axis must point
    y_axis = normal  # the back of the hand (+y) faces away from the surface
    return np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)], axis=1)


def place_palm(hand: HandModel, betas: np.ndarray, rotation: np.ndarray, site: np.ndarray, normal: np.ndarray,
               clearance: float) -> np.ndarray:
    """[3] MANO transl that puts the mean of the palm vertices (``hand.palm_ids``) of the hand shaped
    by ``betas`` [10] at ``site + clearance·normal``."""
    rest = hand_vertices(hand, one_hand_pose(np.zeros(3), np.zeros(45), betas, np.zeros(3)))[0]
    wrist = rest_wrists(hand, betas[None])[0]
    palm = rest[hand.palm_ids.numpy()].mean(axis=0)
    # MANO: v_world = R (v - J0) + J0 + transl
    return site + clearance * normal - rotation @ (palm - wrist) - wrist


def finger_vertex_ids(hand: HandModel, finger: str) -> np.ndarray:
    """Vertices bound mostly (> 50 %) to the bones of ``finger``."""
    return np.nonzero(hand.weights[:, list(FINGER_JOINTS[finger])].sum(dim=1).numpy() > 0.5)[0]


def curled_pose(side: str, curls: dict[str, float]) -> np.ndarray:
    """[45] pose curling each finger by a fraction of the fist (thumb: of the pinch)."""
    fist, pinch = fist_pose(side), pinch_pose(side)
    pose = np.zeros(45)
    for finger, amount in curls.items():
        source = pinch if finger == "thumb" else fist
        slots = np.concatenate([np.arange(3 * (j - 1), 3 * j) for j in FINGER_JOINTS[finger]])
        pose[slots] = amount * source[slots]
    return pose


def close_fingers(hand: HandModel, grasp: HandPose, distance: SurfaceDistance, steps: int = 7) -> HandPose:
    """Curl each finger until it is ``CONTACT_GAP`` from the surface (bisection on its curl).

    The curl runs from -1 (extended away from the palm, e.g. a thumb lifted off a flat face) to 1 (a
    full fist; the thumb: a pinch); a finger that reaches nothing rests half curled (``RELAXED_CURL``).
    """
    curls: dict[str, float] = {}
    for finger in FINGER_JOINTS:
        ids = finger_vertex_ids(hand, finger)

        def gap(amount: float) -> float:
            pose = curled_pose(hand.side, {**curls, finger: amount})
            verts = hand_vertices(hand, dataclasses.replace(grasp, hand_pose=pose[None]))[0]
            return float(distance(verts[ids]).min())

        lo, hi = (0.0, 1.0) if gap(0.0) > CONTACT_GAP else (-1.0, 0.0)
        if gap(hi) > CONTACT_GAP:
            curls[finger] = RELAXED_CURL if hi == 1.0 else hi
            continue
        for _ in range(steps):  # invariant: gap(lo) > CONTACT_GAP >= gap(hi), when both ends exist
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if gap(mid) > CONTACT_GAP else (lo, mid)
        curls[finger] = lo
    return dataclasses.replace(grasp, hand_pose=curled_pose(hand.side, curls)[None])


def grasp_at(hand: HandModel, betas: np.ndarray, distance: SurfaceDistance, site: np.ndarray, normal: np.ndarray,
             finger_direction: np.ndarray, rounds: int = 8) -> HandPose:
    """A grasp (one row) by the hand shaped by ``betas`` [10] of the palm at ``site`` (outward
    ``normal``), fingers closed, penetration resolved."""
    rotation = palm_frame(hand.side, normal, finger_direction)
    orient = matrix_to_axis_angle(torch.as_tensor(rotation)).numpy()
    clearance = PALM_GAP
    grasp = None
    for _ in range(rounds):
        transl = place_palm(hand, betas, rotation, site, normal, clearance)
        grasp = close_fingers(hand, one_hand_pose(orient, np.zeros(45), betas, transl), distance)
        depth = -distance(hand_vertices(hand, grasp)[0]).min()
        if depth <= MAX_PENETRATION:
            return grasp
        clearance += depth
    return grasp


def surface_site(mesh_vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, direction: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """First surface point hit by the ray ``origin + s·direction`` and its outward unit normal."""
    mesh = trimesh.Trimesh(mesh_vertices, faces, process=False)
    locations, _, tri = mesh.ray.intersects_location(origin[None], direction[None], multiple_hits=True)
    if len(locations) == 0:
        raise ValueError("grasp site ray misses the object")
    nearest = np.argmin(np.linalg.norm(locations - origin, axis=1))
    normal = mesh.face_normals[tri[nearest]]
    if normal @ direction > 0:
        normal = -normal
    return locations[nearest], normal


def compose(rotation: np.ndarray, translation: np.ndarray, grasp: HandPose, wrist: np.ndarray) -> HandPose:
    """``grasp`` (one row) carried by the rigid motion x ↦ R x + t (``wrist`` [3]: the shaped rest
    wrist joint J0).

    MANO rotates about J0: v = R_g (v0 - J0) + J0 + T, so the carried hand has R' = R R_g and
    T' = R (J0 + T) + t - J0.
    """
    R_g = axis_angle_to_matrix(torch.as_tensor(grasp.global_orient))[0].numpy()
    orient = matrix_to_axis_angle(torch.as_tensor(rotation @ R_g)[None]).numpy()
    transl = rotation @ (wrist + grasp.transl[0]) + translation - wrist
    return dataclasses.replace(grasp, global_orient=orient, transl=transl[None])
