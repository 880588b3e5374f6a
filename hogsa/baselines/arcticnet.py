"""ArcticNet-SF (ARCTIC, CVPR 2023): one image crop → both hands' MANO parameters and the object's pose.

A backbone feature [B, C] feeds three HMR heads: per hand 16 rotations (6D), 10 betas and a
weak-perspective camera; for the object an axis-angle rotation, the articulation angle (radians) and a
camera. Hands are skinned by ``HandModel`` (the open hand or real MANO) and objects posed by
``ArticulatedObject``, both at zero translation, then moved by their camera translation (``hmr``), so
every output is in the crop camera's frame, in metres.

Hand rotations are relative to the hand model's mean pose (ARCTIC's MANO convention: zero pose is the
mean hand), so an untrained head starts from the mean hand; ``encode_hand`` and ``encode_object`` turn a
ground-truth pose into the same parameters (the targets of the parameter losses).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.baselines.backbone import ResNet
from hogsa.baselines.hmr import (HIDDEN, HMRHead, translation_to_weak_perspective,
                                 weak_perspective_to_translation)
from hogsa.geometry import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rotation_6d, rotation_6d_to_matrix
from hogsa.hand import HandModel, HandOutput, HandPose

SIDES = ("right", "left")


class HandParams(NamedTuple):
    """One hand's regressed (or encoded ground-truth) parameters for B crops."""

    rotmats: Tensor  # [B, 16, 3, 3] wrist then 15 finger joints, relative to the mean pose
    betas: Tensor  # [B, 10]
    cam: Tensor  # [B, 3] weak perspective [s, tx, ty]
    cam_init: Tensor | None = None  # [B, 3] the head's initial camera (None for ground truth)


class ObjectParams(NamedTuple):
    """The object's regressed (or encoded ground-truth) parameters for B crops."""

    rot: Tensor  # [B, 3] axis-angle
    angle: Tensor  # [B] articulation, radians
    cam: Tensor  # [B, 3] weak perspective [s, tx, ty]
    cam_init: Tensor | None = None


def encode_hand(pose: HandPose, hand: HandModel, focal: Tensor, crop_size: int) -> HandParams:
    """A camera-frame ground-truth ``pose`` (torch, [B]) → the parameters whose ``decode_hand`` is it."""
    relative = torch.cat((pose.global_orient, pose.hand_pose - hand.hands_mean.to(pose.hand_pose)), dim=1)
    rotmats = axis_angle_to_matrix(relative.reshape(-1, 3)).reshape(-1, 16, 3, 3)
    return HandParams(rotmats, pose.betas, translation_to_weak_perspective(pose.transl, focal, crop_size))


def decode_hand(params: HandParams, hand: HandModel, focal: Tensor, crop_size: int) -> HandOutput:
    """Camera-frame vertices [B, V, 3] and joints [B, 21, 3] (metres) of a hand's parameters."""
    batch = params.rotmats.shape[0]
    axis_angle = matrix_to_axis_angle(params.rotmats.reshape(-1, 3, 3)).reshape(batch, 48)
    transl = weak_perspective_to_translation(params.cam, focal, crop_size)
    return hand(axis_angle[:, :3], axis_angle[:, 3:] + hand.hands_mean.to(axis_angle), params.betas, transl)


def encode_object(pose: ObjectPose, focal: Tensor, crop_size: int) -> ObjectParams:
    """A camera-frame ground-truth object ``pose`` (torch, [B]) → its parameters."""
    return ObjectParams(pose.rot, pose.articulation, translation_to_weak_perspective(pose.transl, focal, crop_size))


def decode_object(params: ObjectParams, obj: ArticulatedObject, focal: Tensor, crop_size: int,
                  vertices: Tensor | None = None) -> Tensor:
    """Camera-frame vertices [B, V, 3] (metres) of ``obj`` (or of its canonical ``vertices`` [V, 3], e.g.
    keypoints with the object's parts) under the parameters."""
    transl = weak_perspective_to_translation(params.cam, focal, crop_size)
    return obj.pose(params.angle, params.rot, transl, vertices)


class ArcticNetSF(nn.Module):
    """``forward(images [B,3,H,W] in [0,1])`` → ({side: HandParams}, ObjectParams)."""

    def __init__(self, backbone: ResNet, iterations: int = 3, hidden: int = HIDDEN):
        super().__init__()
        self.backbone = backbone
        features = backbone.out_features
        identity = matrix_to_rotation_6d(torch.eye(3)).repeat(16)
        self.hand_heads = nn.ModuleDict({side: HMRHead(features, {"pose_6d": identity, "betas": torch.zeros(10)},
                                                       iterations, hidden) for side in SIDES})
        self.object_head = HMRHead(features, {"rot": torch.zeros(3), "angle": torch.zeros(1)}, iterations, hidden)

    @torch.no_grad()
    def start_cameras(self, hands: dict[str, Tensor], obj: Tensor) -> None:
        """Start each head's camera regressor at a mean [s, tx, ty] ([3] per side and the object's), as HMR
        starts its other parameters at their means: the scale is 2f/(S·z) ≈ 6 ± 1.5 on these crops, which
        Adam's steps would take thousands of iterations to reach from 0."""
        for side, cam in hands.items():
            self.hand_heads[side].cam_init[-1].bias.copy_(cam)
        self.object_head.cam_init[-1].bias.copy_(obj)

    def forward(self, images: Tensor) -> tuple[dict[str, HandParams], ObjectParams]:
        features = self.backbone(images)
        hands = {}
        for side, head in self.hand_heads.items():
            values, cam_init = head(features)
            rotmats = rotation_6d_to_matrix(values["pose_6d"].reshape(-1, 16, 6))
            hands[side] = HandParams(rotmats, values["betas"], values["cam"], cam_init)
        values, cam_init = self.object_head(features)
        return hands, ObjectParams(values["rot"], values["angle"][:, 0], values["cam"], cam_init)
