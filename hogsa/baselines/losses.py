"""ArcticNet-SF's training loss, term for term and weight for weight as ARCTIC's (REFERENCES §6).

Every term is a mean squared error over the crops where its subject is valid (0 when there are none;
the joint terms average zeros in for invalid hands, as ARCTIC's):
per hand the 2D joints (normalised to [-1, 1] over the crop, ×5), the root-relative 3D joints (×5), the
16 rotation matrices (×10), the betas (×0.001) and the weak-perspective camera, regressed and initial
(×1); the contact deviation (×1: predicted hand vertex to predicted object vertex over the ground
truth's contacts, ``hogsa.metrics.arctic.cdev``'s definition, mean over crops with contact); for the
object its 16 keypoints in 2D (×1) and root-relative 3D (×5), the articulation (×1), the rotation
(×1), its camera (×1) and the cameras of the left hand and of the object relative to the right hand's
(×1).

``root_weight`` adds one term that ARCTIC's loss lacks: per hand the squared error of the root (wrist)
rotation alone (0, the default, is ARCTIC's loss). ARCTIC's pose term averages the wrist with the 15
finger rotations, so the hand's global orientation, which sets most of its root-relative joint error,
weighs 1/16 of it; with an ImageNet backbone and 20 epochs that is learned anyway, in a few hundred
steps from scratch it is not (the mean orientation's error stays).

Object keypoints are the corners of the canonical bounding boxes of its top part then of its bottom
part (a rigid object's whole box twice); the 3D root is the first bottom corner.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from hogsa.articulated import ArticulatedObject
from hogsa.baselines.arcticnet import SIDES, HandParams, ObjectParams
from hogsa.geometry import axis_angle_to_matrix, hinge_rotation

WEIGHTS = {
    "kp2d": 5.0, "kp3d": 5.0, "pose": 10.0, "betas": 0.001, "cam": 1.0, "cdev": 1.0,
    "object_kp2d": 1.0, "object_kp3d": 5.0, "radian": 1.0, "rot": 1.0, "object_cam": 1.0, "transl": 1.0,
}


class ObjectKeypoints(NamedTuple):
    points: Tensor  # [16, 3] canonical corners, top part's then bottom part's
    top: Tensor  # [16] bool, the corner moves with the top part


@functools.cache  # objects are immutable: their boxes are computed once per process
def object_keypoints(obj: ArticulatedObject) -> ObjectKeypoints:
    """The 8 corners of the top part's canonical box, then the bottom part's (the whole box twice for a
    rigid object)."""
    top = obj.top_mask if obj.top_mask.any() else torch.ones_like(obj.top_mask)
    corners = []
    for part in (obj.vertices[top], obj.vertices[~obj.top_mask]):
        low, high = part.min(dim=0).values, part.max(dim=0).values
        grid = torch.stack(torch.meshgrid(*[torch.stack((low[k], high[k])) for k in range(3)], indexing="ij"), dim=-1)
        corners.append(grid.reshape(8, 3))
    return ObjectKeypoints(torch.cat(corners), torch.cat((torch.full((8,), bool(obj.top_mask.any())),
                                                          torch.zeros(8, dtype=torch.bool))))


def pose_keypoints(keypoints: ObjectKeypoints, rot: Tensor, angle: Tensor, transl: Tensor) -> Tensor:
    """[16, 3] canonical keypoints → [B, 16, 3] under the B poses (as ``ArticulatedObject.pose``)."""
    points = keypoints.points.to(rot)
    opened = torch.einsum("bij,kj->bki", hinge_rotation(angle), points)
    local = torch.where(keypoints.top.to(rot.device)[None, :, None], opened, points[None])
    return torch.einsum("bij,bkj->bki", axis_angle_to_matrix(rot), local) + transl[:, None]


def project_normalised(K: Tensor, points: Tensor, crop_size: int) -> Tensor:
    """[B, 3, 3], [B, N, 3] camera frame → [B, N, 2] pixels mapped to [-1, 1] over the crop."""
    uvw = torch.einsum("bij,bnj->bni", K, points)
    return 2.0 * uvw[..., :2] / uvw[..., 2:].clamp(min=1e-6) / crop_size - 1.0


def masked_mse(pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Mean squared error over the rows where ``valid`` [B] holds; 0 when none does (ARCTIC's
    ``vector_loss``)."""
    if not valid.any():
        return pred.new_zeros(())
    return ((pred[valid] - target[valid]) ** 2).mean()


def joints_mse(pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """[B, J, D] x2, [B] → the squared error zeroed on invalid rows, averaged over all rows (ARCTIC's
    ``joints_loss``, whose per-joint validity is the hand's)."""
    return ((pred - target) ** 2 * valid[:, None, None]).mean()


class Targets(NamedTuple):
    """Ground truth of B crops, in the crop camera's frame."""

    hands: dict[str, HandParams]  # encoded (``encode_hand``)
    joints: dict[str, Tensor]  # [B, 21, 3] metres
    hand_valid: dict[str, Tensor]  # [B] bool, the hand and its frame are valid
    obj: ObjectParams  # encoded (``encode_object``)
    object_keypoints: Tensor  # [B, 16, 3] metres
    valid: Tensor  # [B] bool
    contacts: dict[str, list[tuple[Tensor, Tensor]]]  # per side, per crop: hand and object vertex ids in contact


def arcticnet_loss(hands: dict[str, HandParams], obj: ObjectParams, pred_joints: dict[str, Tensor],
                   pred_verts: dict[str, Tensor], pred_object_verts: list[Tensor], pred_keypoints: Tensor,
                   target: Targets, K: Tensor, crop_size: int, root_weight: float = 0.0) -> dict[str, Tensor]:
    """The weighted terms (name → scalar) of B crops; their sum is the loss.

    ``pred_joints`` / ``pred_verts``: per side [B, 21, 3] / [B, Vh, 3] camera frame; ``pred_object_verts``:
    per crop [Vo, 3] (objects differ in vertex count); ``pred_keypoints``: [B, 16, 3]."""
    terms = {}
    right = target.hand_valid["right"]
    for side in SIDES:
        valid, gt = target.hand_valid[side], target.hands[side]
        joints, gt_joints = pred_joints[side], target.joints[side]
        terms[f"kp2d_{side}"] = WEIGHTS["kp2d"] * joints_mse(project_normalised(K, joints, crop_size),
                                                            project_normalised(K, gt_joints, crop_size), valid)
        terms[f"kp3d_{side}"] = WEIGHTS["kp3d"] * joints_mse(joints - joints[:, :1], gt_joints - gt_joints[:, :1], valid)
        terms[f"pose_{side}"] = WEIGHTS["pose"] * masked_mse(hands[side].rotmats, gt.rotmats, valid)
        if root_weight:
            terms[f"root_{side}"] = root_weight * masked_mse(hands[side].rotmats[:, 0], gt.rotmats[:, 0], valid)
        terms[f"betas_{side}"] = WEIGHTS["betas"] * masked_mse(hands[side].betas, gt.betas, valid)
        terms[f"cam_{side}"] = WEIGHTS["cam"] * (masked_mse(hands[side].cam, gt.cam, valid)
                                                 + masked_mse(hands[side].cam_init, gt.cam, valid))
        deviations = [(pred_object_verts[b][j] - pred_verts[side][b, i]).norm(dim=-1).mean()
                      for b, (i, j) in enumerate(target.contacts[side]) if valid[b] and len(i)]
        terms[f"cdev_{side}"] = WEIGHTS["cdev"] * (torch.stack(deviations).mean() if deviations
                                                   else K.new_zeros(()))
    gt_keypoints = target.object_keypoints
    terms["object_kp2d"] = WEIGHTS["object_kp2d"] * masked_mse(project_normalised(K, pred_keypoints, crop_size),
                                                               project_normalised(K, gt_keypoints, crop_size),
                                                               target.valid)
    terms["object_kp3d"] = WEIGHTS["object_kp3d"] * masked_mse(pred_keypoints - pred_keypoints[:, 8:9],
                                                               gt_keypoints - gt_keypoints[:, 8:9], target.valid)
    terms["radian"] = WEIGHTS["radian"] * masked_mse(obj.angle, target.obj.angle, target.valid)
    terms["rot"] = WEIGHTS["rot"] * masked_mse(obj.rot, target.obj.rot, target.valid)
    terms["object_cam"] = WEIGHTS["object_cam"] * (masked_mse(obj.cam, target.obj.cam, target.valid)
                                                   + masked_mse(obj.cam_init, target.obj.cam, target.valid))
    gt_hands = target.hands
    terms["transl_left"] = WEIGHTS["transl"] * masked_mse(hands["left"].cam - hands["right"].cam,
                                                          gt_hands["left"].cam - gt_hands["right"].cam,
                                                          right & target.hand_valid["left"])
    terms["transl_object"] = WEIGHTS["transl"] * masked_mse(obj.cam - hands["right"].cam,
                                                            target.obj.cam - gt_hands["right"].cam, right & target.valid)
    return terms
