"""Bimanual grasp optimisation (POM, paper §3.3, eq. 7): both hands fitted to a fixed object.

Per hand i ∈ {right, left} the loss is λ_C·L_C + λ_H·L_H + λ_P·L_P, plus λ_HH·L_HH between the hands:

- L_C, consistency: ‖C_hand - Ĉ‖² summed over the object points, C_hand the contact map of the
  current hand (``hogsa.pom.contact.contact_map``) and Ĉ ContactNet's map for the initial pose,
  normalised by its maximum and held fixed (the paper: "based on the point cloud of the initial
  pose ... input into ContactNet to predict a contact map");
- L_H, hand-centric: each object point within ``hand_centric_radius`` of the hand is pulled to the
  nearest of the hand's prior contact vertices (``contact_prior``): the mean distance in cm over
  those points (a sum of squares, as the other terms, outweighs λ_P·L_P and drives the fingers
  through thin parts such as a 12 mm lid);
- L_P, penetration in both directions: object points inside the hand (nearest hand vertex and its
  normal, within a ``hand_shell`` of the hand) and hand vertices inside the object (an occupancy
  grid of the object's parts says which; the depth is the distance to the nearest of dense surface
  samples), squared depths in cm², summed (GraspTTA). A nearest-sample normal test is not used for
  the hand vertices: near edges and an opened lid it marks vertices centimetres outside as inside;
- L_HH, hand-hand: vertices of either hand inside the other (nearest vertex and its normal, within
  the shell), squared depths in cm², summed, so the hands never intersect.

The losses use a farthest-point subset of each hand's vertices (``hand_vertices``, ~7 mm apart for
778 on the open hand, MANO's count) together with all its prior vertices: the nearest-neighbour
searches are dense [B,N,V'] matrices, and the full 2,348-vertex open hand would triple their cost.
Between subset vertices 7 mm apart, and between dense samples and occupancy voxels a few mm apart,
millimetres of penetration go unseen; so the ``iterations`` steps are followed by
``resolve_iterations`` steps of the penetration terms alone (L_P, L_HH) over every vertex of both
hands and every dense object sample, at ``resolve_lr_factor`` times the learning rates (small
steps: what is left is millimetres deep, and a hand pushed out by more than 5 mm loses its contact).
They push what is left inside out without the attraction terms pulling it back in. The hand-hand
term is computed only for samples whose hands' bounding boxes come within the shell (for the
others it is 0 exactly).

Optimised per hand: root rotation, translation, shape and finger pose (paper appendix 1.2). The
optimiser is Adam, whose learning rates are step sizes in radians and metres whatever the scale of
these summed losses (GraspTTA uses SGD with momentum 0.8, whose step scales with them). The paper's
rates (pose 5e-4, translation 3e-5) belong to its own optimiser and loss scale: as Adam steps they
move a hand at most 6 mm in 200 steps, less than the initial perturbation displaces it, so the
defaults in params.yaml are larger (and say why). Each sample has its own parameters and Adam's
update is per element, so a batch of samples is optimised exactly as each would be alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.data.schema import SIDES
from hogsa.hand import HandModel, HandPose
from hogsa.pom.contact import (
    CM_PER_M,
    ObjectOccupancy,
    SurfaceSamples,
    contact_map,
    inside_depth,
    kd_trees,
    nearest,
    penetration_loss,
    shell_neighbours,
    squared_distances,
    tree_index,
    vertex_normals,
)
from hogsa.pom.contactnet import ContactNet, farthest_points, to_object_frame
from hogsa.pom.grasps import Grasps

MANO_DISTAL_JOINTS = (3, 6, 9, 12, 15)  # index, middle, pinky, ring, thumb distal segments


@dataclass(frozen=True)
class OptimizeConfig:
    """params.yaml ``pom.optimize`` (paper §3.3 and appendix 1.2; REFERENCES §1, §8)."""

    iterations: int  # the paper's 200
    resolve_iterations: int  # further steps with the penetration terms alone (module doc)
    resolve_lr_factor: float  # their learning rates, as a fraction of the ones above
    lambda_contact: float  # λ_C = 1
    lambda_hand_centric: float  # λ_H = 1
    lambda_penetration: float  # λ_P = 17
    lambda_hand_hand: float  # weight of the hand-hand penetration term
    lr_pose: float  # root rotation and finger pose, rad per step (paper: 5e-4)
    lr_transl: float  # m per step (paper: 3e-5)
    lr_shape: float  # betas per step
    hand_centric_radius: float  # m: object points this close to a hand are pulled to its prior (GraspTTA: 2 cm)
    hand_shell: float  # m: a point farther than this from its nearest hand vertex is outside the hand
    hand_vertices: int  # farthest-point subset of hand vertices the losses use (plus every prior vertex)
    batch_size: int  # samples optimised together


class OptimizationResult(NamedTuple):
    """What ``optimize_grasps`` returns."""

    grasps: Grasps  # the optimised samples (same order as the input)
    terms: dict[str, np.ndarray]  # per term ("contact", "hand_centric", "penetration", "hand_hand"): [iterations]


def contact_prior(hand: HandModel) -> Tensor:
    """[P] int64 hand-centric prior vertices (finger pads and palm) of ``hand``.

    The open hand defines them by construction (``hand.palm_ids``, ``hand.fingerpad_ids``: the
    palmar surfaces of the palm and the distal phalanges). For MANO, which has no such ids, the
    prior is every vertex skinned mostly (weight > 0.5) to a distal joint (3, 6, 9, 12, 15): the
    five distal finger segments. Subdivided (MANO-HD) hands keep the original vertex ids, which the
    prior uses.
    """
    if hand.is_open_hand:
        return torch.unique(torch.cat([hand.palm_ids, hand.fingerpad_ids]))
    weights = hand.weights[:, list(MANO_DISTAL_JOINTS)].sum(dim=1)
    return torch.nonzero(weights > 0.5)[:, 0]


class LossVertexIds(NamedTuple):
    """Per side, the hand vertices the losses use: a farthest-point subset with every prior vertex."""

    subset: dict[str, Tensor]  # side → [V'] int64 vertex ids
    prior: dict[str, Tensor]  # side → [P] int64 positions of the prior vertices (``contact_prior``) in ``subset``


def loss_vertex_ids(hands: dict[str, HandModel], count: int) -> LossVertexIds:
    """``count`` farthest points of each hand's template joined with its prior vertices."""
    subsets, priors = {}, {}
    for side in SIDES:
        prior = contact_prior(hands[side])
        spread = torch.as_tensor(farthest_points(hands[side].v_template.double().numpy(), count))
        subsets[side] = torch.unique(torch.cat([spread, prior]))
        priors[side] = torch.nonzero(torch.isin(subsets[side], prior))[:, 0]
    return LossVertexIds(subsets, priors)


class ObjectSolid(NamedTuple):
    """What finds hand vertices inside the fixed object of a batch, and how deep."""

    occupancy: ObjectOccupancy  # the inside test
    pose: ObjectPose  # the batch's object poses, tensors
    points: Tensor  # [B,M,3] dense surface samples: a vertex's depth is the distance to the nearest
    trees: list  # B scipy cKDTree of ``points``


def trainable_copy(pose: HandPose) -> HandPose:
    """``pose`` as float32 leaf tensors that require grad (copies): the parameters the optimiser moves."""
    return HandPose(*(torch.tensor(field, dtype=torch.float32, requires_grad=True) for field in pose))


def optimize_grasps(init: Grasps, hands: dict[str, HandModel], obj: ArticulatedObject, surface: SurfaceSamples,
                    dense: SurfaceSamples, occupancy: ObjectOccupancy, net: ContactNet, hand_subset: Tensor,
                    cfg: OptimizeConfig) -> OptimizationResult:
    """Optimise every sample of ``init`` (all of object ``obj``) in batches of ``cfg.batch_size``.

    ``surface``: the object samples of the contact maps (ContactNet's); ``occupancy`` finds the hand
    vertices inside the object and ``dense`` (samples a few mm apart) gives their depth;
    ``net`` and ``hand_subset`` as ``load_contactnet`` returns them."""
    if set(init.object_name) - {obj.name}:
        raise ValueError(f"optimize_grasps: grasps of {sorted(set(init.object_name))}, expected only {obj.name!r}")
    vertex_ids = loss_vertex_ids(hands, cfg.hand_vertices)
    parts, terms = [], []
    for start in tqdm(range(0, len(init), cfg.batch_size), desc=f"pom {obj.name}", leave=False):
        batch = init.take(np.arange(start, min(start + cfg.batch_size, len(init))))
        grasps, term = _optimize_batch(batch, hands, surface, dense, occupancy, net, hand_subset, vertex_ids, cfg)
        parts.append(grasps)
        terms.append({k: v * len(batch) for k, v in term.items()})
    total = len(init)
    return OptimizationResult(Grasps.concatenate(parts), {k: np.sum([t[k] for t in terms], axis=0) / total for k in terms[0]})


def _optimize_batch(batch: Grasps, hands: dict[str, HandModel], surface: SurfaceSamples, dense: SurfaceSamples,
                    occupancy: ObjectOccupancy, net: ContactNet, hand_subset: Tensor, vertex_ids: LossVertexIds,
                    cfg: OptimizeConfig) -> tuple[Grasps, dict[str, np.ndarray]]:
    """One batch: ContactNet's targets at the initial pose, then ``cfg.iterations`` Adam steps."""
    with torch.no_grad():
        pose = batch.object_pose.torch()
        points, _ = surface.pose(*pose)  # [B,N,3]
        dense_points, _ = dense.pose(*pose)
        solid = ObjectSolid(occupancy, pose, dense_points, kd_trees(dense_points))
    params = {side: trainable_copy(batch.hands[side]) for side in SIDES}
    targets = {}
    with torch.no_grad():
        object_frame_points = to_object_frame(points, pose.rot, pose.transl)
        for side in SIDES:
            verts = hands[side](*params[side]).vertices
            hand_points = to_object_frame(verts[:, hand_subset], pose.rot, pose.transl)
            predicted = net(object_frame_points, hand_points)
            targets[side] = predicted / predicted.max(dim=1, keepdim=True).values.clamp(min=1e-6)
    optimizer = torch.optim.Adam([
        {"params": [p for s in SIDES for p in (params[s].global_orient, params[s].hand_pose)], "lr": cfg.lr_pose},
        {"params": [params[s].transl for s in SIDES], "lr": cfg.lr_transl},
        {"params": [params[s].betas for s in SIDES], "lr": cfg.lr_shape},
    ])
    steps = cfg.iterations + cfg.resolve_iterations
    term_curves = {k: np.full(steps, np.nan) for k in ("contact", "hand_centric", "penetration", "hand_hand")}
    for step in range(steps):
        if step < cfg.iterations:
            losses = grasp_losses(params, hands, points, solid, targets, vertex_ids, cfg)
            total = (cfg.lambda_contact * losses["contact"] + cfg.lambda_hand_centric * losses["hand_centric"]
                     + cfg.lambda_penetration * losses["penetration"] + cfg.lambda_hand_hand * losses["hand_hand"])
        else:
            if step == cfg.iterations:
                for group in optimizer.param_groups:
                    group["lr"] *= cfg.resolve_lr_factor
            losses = resolve_losses(params, hands, solid, vertex_ids, cfg)
            total = cfg.lambda_penetration * losses["penetration"] + cfg.lambda_hand_hand * losses["hand_hand"]
        optimizer.zero_grad()
        total.sum().backward()
        optimizer.step()
        for key, value in losses.items():
            term_curves[key][step] = float(value.detach().mean())
    out = {side: params[side].numpy() for side in SIDES}
    return Grasps(out, batch.object_pose, batch.object_name, batch.group, batch.source), term_curves


def _depth_in_object(verts: Tensor, solid: ObjectSolid) -> Tensor:  # [B,V,3] -> [B,V] m
    inside = solid.occupancy.contains(verts, *solid.pose)
    depth, _ = nearest(verts, solid.points, tree_index(verts, solid.trees))
    return torch.where(inside, depth, torch.zeros_like(depth))


def grasp_losses(params: dict[str, HandPose], hands: dict[str, HandModel], points: Tensor, solid: ObjectSolid,
                 targets: dict[str, Tensor], vertex_ids: LossVertexIds, cfg: OptimizeConfig) -> dict[str, Tensor]:
    """Per sample [B] terms, summed over both hands: contact (L_C), hand_centric (L_H), penetration
    (L_P) and hand_hand (L_HH), see the module doc. ``points`` [B,N,3] object surface samples (the
    contact map's), ``solid`` finds hand vertices inside the object, ``targets`` [B,N] per side;
    ``vertex_ids`` the hand vertices the losses use."""
    out = {k: points.new_zeros(points.shape[0]) for k in ("contact", "hand_centric", "penetration")}
    posed = {}
    for side in SIDES:
        verts = hands[side](*params[side]).vertices  # [B,V,3]
        with torch.no_grad():  # the inside test's direction; its gradient is left out (as GraspTTA's)
            vert_normals = vertex_normals(verts, hands[side].faces)[:, vertex_ids.subset[side]]
        verts = verts[:, vertex_ids.subset[side]]
        posed[side] = (verts, vert_normals)
        squared = squared_distances(points, verts)  # [B,N,V'], one search serves both queries below
        to_hand = squared.argmin(dim=-1)
        to_prior = squared[:, :, vertex_ids.prior[side]].argmin(dim=-1)
        gap, _ = nearest(points, verts, to_hand)  # [B,N] object point → hand
        out["contact"] = out["contact"] + (contact_map(gap) - targets[side]).square().sum(-1)
        prior_gap, _ = nearest(points, verts[:, vertex_ids.prior[side]], to_prior)
        near = gap < cfg.hand_centric_radius
        near_count = near.sum(-1).clamp(min=1)
        out["hand_centric"] = out["hand_centric"] + torch.where(near, CM_PER_M * prior_gap, 0.0).sum(-1) / near_count
        out["penetration"] = (out["penetration"]
                              + penetration_loss(inside_depth(points, verts, vert_normals, cfg.hand_shell, to_hand))
                              + penetration_loss(_depth_in_object(verts, solid)))
    out["hand_hand"] = hand_hand_loss(posed, cfg.hand_shell)
    return out


def hand_hand_loss(posed: dict[str, tuple[Tensor, Tensor]], shell: float) -> Tensor:
    """[B] L_HH of both hands' posed (vertices [B,V,3], normals [B,V,3]); computed only for the samples
    whose hands' boxes come within ``shell`` (hands farther apart cannot be inside each other: 0)."""
    (right, right_n), (left, left_n) = (posed[s] for s in SIDES)
    out = right.new_zeros(right.shape[0])
    near = torch.nonzero(boxes_within(right.detach(), left.detach(), shell))[:, 0]
    if len(near):
        r, rn, l, ln = right[near], right_n[near], left[near], left_n[near]
        out = out.index_add(0, near, penetration_loss(inside_depth(r, l, ln, shell))
                            + penetration_loss(inside_depth(l, r, rn, shell)))
    return out


def resolve_losses(params: dict[str, HandPose], hands: dict[str, HandModel], solid: ObjectSolid,
                   vertex_ids: LossVertexIds, cfg: OptimizeConfig) -> dict[str, Tensor]:
    """Per sample [B] penetration (L_P) and hand_hand (L_HH) terms of the resolve steps (module doc):
    every hand vertex against the object's occupancy and dense samples, every dense sample against
    the hand (its nearest hand vertex by a k-d tree per sample and step), the hands against each other
    over ``vertex_ids`` (their intersection is judged by 5 mm voxels)."""
    penetration = solid.points.new_zeros(solid.points.shape[0])
    posed = {}
    for side in SIDES:
        verts = hands[side](*params[side]).vertices  # [B,V,3]
        with torch.no_grad():
            normals = vertex_normals(verts, hands[side].faces)
        nearest_vertex, _ = shell_neighbours(solid.points, verts, cfg.hand_shell)  # none found: beyond the shell
        object_depth = inside_depth(solid.points, verts, normals, cfg.hand_shell, nearest_vertex)
        penetration = penetration + penetration_loss(object_depth) + penetration_loss(_depth_in_object(verts, solid))
        posed[side] = (verts[:, vertex_ids.subset[side]], normals[:, vertex_ids.subset[side]])
    return {"penetration": penetration, "hand_hand": hand_hand_loss(posed, cfg.hand_shell)}


def boxes_within(a: Tensor, b: Tensor, margin: float) -> Tensor:  # [B,N,3], [B,M,3] -> [B] bool
    """Whether the axis-aligned bounding boxes of two point sets come within ``margin`` of each other."""
    gap = torch.maximum(a.amin(1) - b.amax(1), b.amin(1) - a.amax(1))  # [B,3] per axis, > 0: apart
    return (gap <= margin).all(dim=-1)
