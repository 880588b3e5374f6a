"""The initial poses of the grasp optimisation: dataset grasps perturbed as the paper does (§3.3).

Per sample, in this order (every draw from the generator passed in):

1. articulated objects: the articulation changes by δ ~ U[0.01π, 0.2π] (``articulation_range``, in
   units of π), with a random sign, kept inside [0, ``max_articulation``]; a hand holding the
   articulated top part (most of its contact vertices on it) turns with the part about the hinge.
   A sample in which a hand touches the top part without holding it (fingers laid over a lid while
   the palm holds the base) keeps its articulation: the moving part would cut through those fingers,
   a state no local optimisation undoes;
2. each hand is rotated by Rz(γ)·Ry(β)·Rx(α), every angle of magnitude U[0, ``max_rotation_deg``]
   and random sign, about the object's centre (the paper says "applied to the original pose"; about
   the object's centre the hand slides round the object to a new site instead of swinging its
   fingertips through it, as a rotation about the wrist would);
3. each hand is pushed away from the object by ``push_fraction`` (5 %) of its wrist-to-object-centre
   distance, along that direction;
4. an offset of length U[0, ``max_offset``] (6 cm) in a uniform random direction is added to both
   hands and the object together: it places the grasp elsewhere in space. hogsa applies one offset
   to the whole grasp rather than one per part, because independent offsets of up to 6 cm would move
   the hands farther from the object than 200 steps at the paper's translation learning rate can
   bring back (3e-5 m per step).

MANO rotates about the shaped rest wrist j0, so a rigid motion x ↦ M(x - p) + p of a hand sets
global_orient' = M·global_orient and transl' = M(w - p) + p - j0 with w = j0 + transl the wrist.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.data.schema import SIDES
from hogsa.geometry import hinge_rotation
from hogsa.hand import HandModel, HandPose, hand_vertices, rest_wrists
from hogsa.pom.grasps import Grasps


@dataclass(frozen=True)
class PerturbConfig:
    """params.yaml ``pom.perturb`` (paper §3.3)."""

    max_rotation_deg: float  # per axis (the paper: 20°; params.yaml chooses it on the val split)
    push_fraction: float  # of the wrist-to-object distance, the paper's 5 %
    max_offset: float  # m, the paper's 6 cm
    articulation_range: list[float]  # [low, high] in units of π, the paper's [0.01, 0.2]
    max_articulation: float  # rad: perturbed articulations stay in [0, max_articulation]
    holder_distance: float  # m: hand vertices this close to the object are its contact vertices


def move_hand(pose: HandPose, j0: np.ndarray, motion: np.ndarray, pivot: np.ndarray) -> HandPose:
    """One side's S poses after the rigid motions x ↦ motion·(x - pivot) + pivot ([S,3,3], [S,3]);
    ``j0`` [S,3] the shaped rest wrists."""
    wrist = j0 + pose.transl
    rot = Rotation.from_matrix(motion) * Rotation.from_rotvec(pose.global_orient)
    wrist = np.einsum("sij,sj->si", motion, wrist - pivot) + pivot
    return dataclasses.replace(pose, global_orient=rot.as_rotvec(), transl=wrist - j0)


def top_contact(hand_verts: np.ndarray, object_verts: np.ndarray, top_mask: np.ndarray,
                distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, whether the hand touches the top part and whether it holds it: [S] bool each.

    The object vertices within ``distance`` of the hand are its contact; the hand holds the top part
    when most of them are on it. hand_verts [S,V,3], object_verts [S,O,3] world; top_mask [O] bool."""
    near = torch.cdist(torch.as_tensor(object_verts), torch.as_tensor(hand_verts)).min(dim=-1).values.numpy() <= distance
    on_top = (near & top_mask[None]).sum(axis=1)
    return on_top > 0, on_top > 0.5 * np.maximum(near.sum(axis=1), 1)


def random_signs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """-1.0 or 1.0 with equal odds, of ``shape`` (one uniform draw each)."""
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def perturb(grasps: Grasps, hands: dict[str, HandModel], obj: ArticulatedObject, cfg: PerturbConfig,
            rng: np.random.Generator) -> Grasps:
    """Perturbed copies of ``grasps`` (all of object ``obj``), one per sample (see the module doc)."""
    if set(grasps.object_name) - {obj.name}:
        raise ValueError(f"perturb: grasps of objects {sorted(set(grasps.object_name))}, expected only {obj.name!r}")
    count = len(grasps)
    object_pose = grasps.object_pose
    with torch.no_grad():
        object_verts = obj.pose(*object_pose.torch(torch.float64)).numpy()
    j0 = {side: rest_wrists(hands[side], grasps.hands[side].betas) for side in SIDES}
    poses = dict(grasps.hands)
    eye = np.broadcast_to(np.eye(3), (count, 3, 3))

    articulation = object_pose.articulation.copy()
    if obj.articulated:
        contact = {side: top_contact(hand_vertices(hands[side], poses[side]), object_verts, obj.top_mask.numpy(),
                                     cfg.holder_distance) for side in SIDES}
        movable = np.all([holds | ~touches for touches, holds in contact.values()], axis=0)
        low, high = np.asarray(cfg.articulation_range) * np.pi
        delta = rng.uniform(low, high, count) * random_signs(rng, (count,))
        delta = np.where((articulation + delta < 0) | (articulation + delta > cfg.max_articulation), -delta, delta)
        articulation = np.where(movable, np.clip(articulation + delta, 0.0, cfg.max_articulation), articulation)
        delta = articulation - object_pose.articulation
        obj_rotation = Rotation.from_rotvec(object_pose.rot).as_matrix()
        hinge = hinge_rotation(torch.from_numpy(delta)).numpy()  # [S,3,3]: the top part turns by δ
        swing = obj_rotation @ hinge @ np.swapaxes(obj_rotation, 1, 2)
        for side in SIDES:
            holder = contact[side][1]
            poses[side] = move_hand(poses[side], j0[side], np.where(holder[:, None, None], swing, eye),
                                    object_pose.transl)

    centre = object_verts.mean(axis=1)
    for side in SIDES:
        angles = rng.uniform(0.0, np.radians(cfg.max_rotation_deg), (count, 3)) * random_signs(rng, (count, 3))
        turn = Rotation.from_euler("ZYX", angles[:, ::-1]).as_matrix()  # Rz(γ)·Ry(β)·Rx(α)
        poses[side] = move_hand(poses[side], j0[side], turn, centre)
        away = j0[side] + poses[side].transl - centre
        poses[side] = dataclasses.replace(poses[side], transl=poses[side].transl + cfg.push_fraction * away)

    direction = rng.normal(size=(count, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    offset = direction * rng.uniform(0.0, cfg.max_offset, (count, 1))
    for side in SIDES:
        poses[side] = dataclasses.replace(poses[side], transl=poses[side].transl + offset)
    moved = ObjectPose(articulation, object_pose.rot.copy(), object_pose.transl + offset)
    return Grasps(poses, moved, grasps.object_name.copy(), grasps.group.copy(), grasps.source.copy())
