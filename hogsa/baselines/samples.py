"""The baselines' inputs: image crops with their annotations in the crop camera's frame.

``CropSet`` holds N crops as tensors (images uint8 [N, S, S, 3], K [N, 3, 3] of the S × S crop,
per side a camera-frame ``HandPose`` and validity, the object's camera-frame ``ObjectPose``, its name,
frame validity) and, for evaluation crops, where each came from (sequence, view, frame).

- ``training_crops(root, names, hands_mean, size)``: one-frame ARCTIC sequences (the augmented
  samples, the original crops: ``hogsa.augment``), seen by view 0, the crop camera.
- ``sequence_crops(seq, views, hands, obj, size, margin)``: every frame of the allocentric views of a
  val/test sequence, cropped by the augmentation's procedure (``hogsa.data.crops``: the parts' mask's
  box plus ``margin``, background kept), so train and test crops are framed alike.

Camera frame: a hand's global rotation R_c·R(go) and translation R_c(J0 + t) + T_c − J0 (MANO turns
about its shaped rest wrist J0); an object's rotation R_c·R(rot) and translation R_c·t + T_c.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.data.arctic import read_sequence
from hogsa.data.crops import CropBox, box_from_mask, box_from_points, crop_camera, crop_image
from hogsa.data.part_masks import part_mask
from hogsa.data.schema import EGO_VIEW, SIDES, Camera, SequenceRecord
from hogsa.hand import HandModel, HandPose, hand_vertices, rest_wrists


@dataclass(frozen=True, eq=False)
class CropSet:
    """N crops and their camera-frame annotations (numpy)."""

    images: np.ndarray  # [N, S, S, 3] uint8
    K: np.ndarray  # [N, 3, 3] float64, the crop's intrinsics (pixels)
    hands: dict[str, HandPose]  # per side N rows, camera frame
    hand_valid: dict[str, np.ndarray]  # per side [N] bool
    valid: np.ndarray  # [N] bool, the frame is annotated
    object_pose: ObjectPose  # N rows, camera frame
    object_name: np.ndarray  # [N] str
    source: np.ndarray  # [N] str: the sample, or "<sequence>:<view>:<frame>"

    def __len__(self) -> int:
        return len(self.images)

    def take(self, rows: np.ndarray) -> CropSet:
        return CropSet(self.images[rows], self.K[rows], {s: p.take(rows) for s, p in self.hands.items()},
                       {s: v[rows] for s, v in self.hand_valid.items()}, self.valid[rows], self.object_pose.take(rows),
                       self.object_name[rows], self.source[rows])


def join(sets: list[CropSet]) -> CropSet:
    """One CropSet of the rows of ``sets``, in order."""
    return CropSet(np.concatenate([s.images for s in sets]), np.concatenate([s.K for s in sets]),
                   {side: HandPose.concatenate([s.hands[side] for s in sets]) for side in SIDES},
                   {side: np.concatenate([s.hand_valid[side] for s in sets]) for side in SIDES},
                   np.concatenate([s.valid for s in sets]), ObjectPose.concatenate([s.object_pose for s in sets]),
                   np.concatenate([s.object_name for s in sets]), np.concatenate([s.source for s in sets]))


def hands_to_camera(hands: Mapping[str, HandPose], models: Mapping[str, HandModel], world2cam: np.ndarray
                    ) -> dict[str, HandPose]:
    """Per side the B world poses seen from ``world2cam`` ([4, 4] or [B, 4, 4])."""
    rotation, translation = world2cam[..., :3, :3], world2cam[..., :3, 3]
    moved = {}
    for side, pose in hands.items():
        j0 = rest_wrists(models[side], pose.betas)
        wrist = np.einsum("...ij,...j->...i", rotation, j0 + pose.transl) + translation
        orient = Rotation.from_matrix(np.broadcast_to(rotation, (len(pose), 3, 3))) * Rotation.from_rotvec(pose.global_orient)
        moved[side] = HandPose(orient.as_rotvec(), pose.hand_pose, pose.betas, wrist - j0)
    return moved


def object_to_camera(pose: ObjectPose, world2cam: np.ndarray) -> ObjectPose:
    """The B world object poses seen from ``world2cam`` ([4, 4] or [B, 4, 4])."""
    rotation, translation = world2cam[..., :3, :3], world2cam[..., :3, 3]
    rot = Rotation.from_matrix(np.broadcast_to(rotation, (len(pose), 3, 3))) * Rotation.from_rotvec(pose.rot)
    return ObjectPose(pose.articulation, rot.as_rotvec(), np.einsum("...ij,...j->...i", rotation, pose.transl) + translation)


def training_crops(root: str | Path, names: list[str], models: Mapping[str, HandModel], size: int) -> CropSet:
    """The one-frame sequences ``names`` under ``root`` (view 0 = the crop camera), resized to ``size``²."""
    hands_mean = {side: models[side].hands_mean.numpy().astype(np.float64) for side in SIDES}
    rows = []
    for name in names:
        seq = read_sequence(root, name, hands_mean)
        camera = seq.camera(EGO_VIEW, 0)
        image = torch.tensor(seq.image(EGO_VIEW, 0)).permute(2, 0, 1).float() / 255.0
        box = CropBox(0, 0, camera.width)
        if camera.width != camera.height:
            raise ValueError(f"{root}/{name}: view 0 is {camera.width}x{camera.height}; a crop is square")
        rows.append(_crop_row(seq, 0, image, box, camera, size, models, name))
    return join(rows)


def sequence_crops(seq: SequenceRecord, views: list[int], models: Mapping[str, HandModel], obj: ArticulatedObject,
                   size: int, margin: float) -> CropSet:
    """Every frame of ``views`` of ``seq``, cropped around its parts' mask (or, where no part is in the
    mask, the annotated meshes' projection), in (view, frame) order."""
    rows = []
    for view in views:
        for frame in range(seq.frames):
            camera = seq.camera(view, frame)
            box = box_from_mask(part_mask(seq, view, frame, models, obj), margin)
            if box is None:
                points = np.concatenate([hand_vertices(models[s], seq.hands[s].take(np.array([frame])))[0] for s in SIDES])
                box = box_from_points(points, camera, margin) or CropBox(0, 0, max(camera.width, camera.height))
            image = torch.tensor(seq.image(view, frame)).permute(2, 0, 1).float() / 255.0
            rows.append(_crop_row(seq, frame, image, box, camera, size, models, f"{seq.name}:{view}:{frame}"))
    return join(rows)


def _crop_row(seq: SequenceRecord, frame: int, image: torch.Tensor, box: CropBox, camera: Camera, size: int,
              models: Mapping[str, HandModel], source: str) -> CropSet:
    """One crop of ``image`` ([3, H, W] in [0, 1]) and frame ``frame``'s annotations in its camera."""
    pixels = crop_image(image, box, size)
    cam = crop_camera(camera, box, size)
    rows = np.array([frame])
    hands = hands_to_camera({s: seq.hands[s].take(rows) for s in SIDES}, models, cam.world2cam)
    valid = {s: seq.hand_valid[s][rows] for s in SIDES}
    return CropSet((pixels.permute(1, 2, 0).numpy()[None] * 255.0 + 0.5).astype(np.uint8), cam.K[None], hands, valid,
                   np.ones(1, bool), object_to_camera(seq.object_pose.take(rows), cam.world2cam),
                   np.array([seq.object_name]), np.array([source]))
