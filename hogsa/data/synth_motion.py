"""The motion of one embedded sequence: the object standing on the table, both hands' grasps and the
per-frame poses of the object and the hands (clean, before annotation jitter).

Both hands approach the object, grasp it (fingertips on the surface), lift and turn it (``grab``) or
hold it and open its articulated part (``use``; a rigid object is tilted as if poured), put it back
and let go. World frame: metres, +z up, a table top at z = 0. Every random choice draws from the
generator passed in, in a fixed order (placement, grasps, motion), so a seed gives one motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from hogsa.articulated import ArticulatedObject, ObjectPose, upright_rotation
from hogsa.data.contact import ObjectDistance, SurfaceDistance
from hogsa.data.grasp import compose, grasp_at, surface_site
from hogsa.data.rig import WORLD_UP
from hogsa.geometry import axis_angle_to_matrix, hinge_rotation, matrix_to_axis_angle
from hogsa.hand import HandModel, HandPose, hand_vertices, rest_wrists

APPROACH_DISTANCE = 0.10  # m: hands start this far back from their grasp sites
MOTION_PENETRATION = 0.002  # m: deepest penetration a sequence's grasp frames may show
CONTACT_TOLERANCE = 0.003  # m: a grasping hand's closest vertex is at most this far from the object


@dataclass(frozen=True)
class Plan:
    """The motion of one sequence: per-frame object pose and hand grasps (float64, F rows each)."""

    object_pose: ObjectPose  # articulation [F] rad, rot [F,3] axis-angle, transl [F,3] m
    hands: dict[str, HandPose]  # per side, the subject's betas on every row
    grasping: np.ndarray  # [F] bool: both hands hold the object


class Placement(NamedTuple):
    """An object standing on the table: canonical x ↦ rotation x + translation."""

    rotation: np.ndarray  # [3,3]
    translation: np.ndarray  # [3] m
    vertices: np.ndarray  # [V,3] world vertices, m
    low: np.ndarray  # [3] lower corner of their bounding box, m
    high: np.ndarray  # [3] upper corner, m

    @property
    def centre(self) -> np.ndarray:  # [3] centre of the bounding box, m
        return (self.low + self.high) / 2


def stand(obj: ArticulatedObject, yaw: float) -> Placement:
    """``obj`` standing on z = 0, centred on the z axis, turned by ``yaw`` (rad) about it."""
    to_z_up = upright_rotation(obj)
    turn = axis_angle_to_matrix(torch.tensor([0.0, 0.0, yaw], dtype=torch.float64)).numpy()
    rotation = turn @ to_z_up
    canonical = obj.vertices.double().numpy()
    verts = canonical @ rotation.T
    low, high = verts.min(axis=0), verts.max(axis=0)
    translation = -np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]])
    world = canonical @ rotation.T + translation
    return Placement(rotation, translation, world, world.min(axis=0), world.max(axis=0))


def timeline(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame reach (0 away … 1 grasping) and manipulation (0 at rest … 1 at the peak)."""
    u = np.linspace(0.0, 1.0, frames)
    reach = np.clip(np.minimum(u / 0.25, (1.0 - u) / 0.2), 0, 1)
    reach = reach * reach * (3 - 2 * reach)
    manip = np.where((u > 0.3) & (u < 0.75), np.sin(np.pi * (u - 0.3) / 0.45) ** 2, 0.0)
    return reach, manip


def plan_sequence(obj: ArticulatedObject, action: str, betas: np.ndarray, hands: dict[str, HandModel],
                  frames: int, rng: np.random.Generator, attempts: int = 6) -> Plan:
    """Grasp sites, finger closure and the motion of one sequence of the subject of shape ``betas`` [10].

    Grasps are drawn until, over all grasp frames, both hands touch the object (within
    ``CONTACT_TOLERANCE``) and nothing penetrates deeper than ``MOTION_PENETRATION`` (a moving lid
    can run into a finger); if no draw qualifies the one with the least penetration is kept.
    """
    distance = ObjectDistance(obj)
    best, best_depth = None, np.inf
    for _ in range(attempts):
        plan = _draw_plan(obj, action, betas, hands, frames, rng)
        pose = plan.object_pose
        closest = np.array([
            [distance(hand_vertices(hands[side], plan.hands[side].take(f))[0], pose.articulation[f], pose.rot[f],
                      pose.transl[f]).min() for side in hands]
            for f in np.nonzero(plan.grasping)[0]
        ])
        depth = max(-closest.min(), 0.0)
        if depth <= MOTION_PENETRATION and closest.max() <= CONTACT_TOLERANCE:
            return plan
        if depth < best_depth:
            best, best_depth = plan, depth
    return best


def _draw_plan(obj: ArticulatedObject, action: str, betas: np.ndarray, hands: dict[str, HandModel],
               frames: int, rng: np.random.Generator) -> Plan:
    """One random draw of the placement, the grasp sites and finger closure, and the motion."""
    placement = stand(obj, rng.uniform(0, 2 * np.pi))
    faces = obj.faces.numpy()
    distance = SurfaceDistance(placement.vertices, faces, seed=int(rng.integers(2**31)))
    centre = placement.centre
    grasps = {}
    for side, (direction, height, wrap) in _grasp_aims(obj, action, placement, rng).items():
        origin = np.array([centre[0], centre[1], height]) + direction * 1.0
        site, normal = surface_site(placement.vertices, faces, origin, -direction)
        fingers = np.cross(WORLD_UP, normal) if wrap else WORLD_UP  # round the object, or over its top
        twist = rng.uniform(-0.35, 0.35)
        fingers = axis_angle_to_matrix(torch.as_tensor(normal * twist)).numpy() @ fingers
        grasps[side] = grasp_at(hands[side], betas, distance, site, normal, fingers)
    return _motion(obj, action, betas, hands, grasps, placement, frames, rng)


def _grasp_aims(obj: ArticulatedObject, action: str, placement: Placement, rng: np.random.Generator
                ) -> dict[str, tuple[np.ndarray, float, bool]]:
    """Per side: the level unit direction [3] from the object's centre axis towards the grasp site, the
    site's height (m) and whether the fingers wrap round the object (else they curl over its top).

    ``use`` of an articulated object: the right hand takes the articulated part at its far side and
    the left one holds the base; otherwise the hands face each other across a random heading.
    """
    low, high, centre = placement.low, placement.high, placement.centre
    use_top = action == "use" and obj.articulated
    tall = (high[2] - low[2]) > 0.8 * min(high[0] - low[0], high[1] - low[1])
    if use_top:
        top = placement.vertices[obj.top_mask.numpy()].mean(axis=0)
        away = top - placement.translation  # the hinge (canonical z axis) passes through the translated origin
        away[2] = 0
        away = away / np.linalg.norm(away) if np.linalg.norm(away) > 1e-6 else np.array([1.0, 0, 0])
        bottom = placement.vertices[~obj.top_mask.numpy()].mean(axis=0)
        side_on = np.cross(WORLD_UP, away)  # beside the hinge line, clear of the swinging part
        # the fingers wrap round a tall object, and round the base of an opening one (clear of the moving part)
        return {"right": (away, top[2], tall), "left": (side_on, bottom[2], True)}
    heading = rng.normal(size=2)
    heading = np.array([*heading / np.linalg.norm(heading), 0.0])
    level = centre[2] + (0.25 * (high[2] - low[2]) if action == "use" else 0.0)
    return {"right": (heading, level, tall), "left": (-heading, level, tall)}


def _motion(obj: ArticulatedObject, action: str, betas: np.ndarray, hands: dict[str, HandModel],
            grasps: dict[str, HandPose], placement: Placement, frames: int, rng: np.random.Generator) -> Plan:
    """The frames of the sequence: the object lifted and turned (or opened, or tilted) about the centre
    of its base, the grasps carried with it (the right one by the articulated part when it opens)."""
    use_top = action == "use" and obj.articulated
    rotation, translation, centre = placement.rotation, placement.translation, placement.centre
    reach, manip = timeline(frames)
    theta_max = rng.uniform(0.5, 1.0) if use_top else 0.0
    lift = 0.03 if action == "use" else rng.uniform(0.06, 0.10)
    yaw = rng.uniform(-0.6, 0.6) if action == "grab" else 0.0
    tilt = rng.uniform(0.6, 1.0) if action == "use" and not obj.articulated else rng.uniform(-0.2, 0.2)

    wrists = {side: rest_wrists(hands[side], betas[None])[0] for side in hands}
    retreats = {side: retreat_direction(grasps[side], hands[side], centre) for side in hands}
    articulation = theta_max * manip
    object_rot, object_transl = np.zeros((frames, 3)), np.zeros((frames, 3))
    tracks = {side: [] for side in hands}
    for f in range(frames):
        motion = axis_angle_to_matrix(torch.tensor([tilt * manip[f], 0.0, yaw * manip[f]], dtype=torch.float64)).numpy()
        pivot = np.array([centre[0], centre[1], placement.low[2]])
        move_t = pivot + np.array([0, 0, lift * manip[f]]) - motion @ pivot  # x ↦ motion x + move_t
        object_rot[f] = matrix_to_axis_angle(torch.as_tensor(motion @ rotation)).numpy()
        object_transl[f] = motion @ translation + move_t
        for side in hands:
            grasp = grasps[side]
            if side == "right" and use_top:  # carried by the articulated part about the hinge
                hinge_rot = hinge_rotation(torch.tensor(articulation[f], dtype=torch.float64)).numpy()
                swing = rotation @ hinge_rot @ rotation.T
                grasp = compose(swing, translation - swing @ translation, grasp, wrists[side])
            grasp = compose(motion, move_t, grasp, wrists[side])
            tracks[side].append(_approach(grasp, motion @ retreats[side], reach[f]))
    hand_poses = {side: HandPose.concatenate(rows) for side, rows in tracks.items()}
    return Plan(ObjectPose(articulation, object_rot, object_transl), hand_poses, reach >= 1.0 - 1e-9)


def retreat_direction(grasp: HandPose, hand: HandModel, centre: np.ndarray) -> np.ndarray:
    """Unit direction a grasping hand (``grasp``: one row) comes from: away from the object's centre,
    mostly level."""
    away = hand_vertices(hand, grasp)[0].mean(axis=0) - centre
    away[2] = 0.0
    away = away / max(np.linalg.norm(away), 1e-9) + np.array([0.0, 0.0, 0.3])
    return away / np.linalg.norm(away)


def _approach(grasp: HandPose, retreat: np.ndarray, reach: float) -> HandPose:
    """The grasp (one row) backed off along ``retreat`` with fingers opened, by 1 - ``reach``."""
    return HandPose(grasp.global_orient, grasp.hand_pose * reach, grasp.betas,
                    grasp.transl + (1.0 - reach) * APPROACH_DISTANCE * retreat)
