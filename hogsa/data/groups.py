"""The data of one (subject, object) group: its crops, split into training and held-out samples.

A group is "sXX/<object>": every train-split sequence of that subject with that object. Its images are
split into training and held-out samples: a view in ``held_out_views`` is held out at every frame,
and frame f of every view is held out when ``f % held_out_every == held_out_every // 2`` (the middle
of each block, so held-out frames are interpolated, not extrapolated). Each sample is a square crop
around the union of the parts' masks (plus a margin), resized to ``crop``² with its camera's K
adjusted, and with the background set to black using the mask (``hogsa.data.crops``): the model renders
only hands and object, so a black background (also behind the renders) is what it can match. A
sample carries its frame's annotated poses as one-row float32 tensor records (``frame_poses``), the
form the HOGS models (``hogsa.hogs``) are posed with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from torch import Tensor
from tqdm.auto import tqdm

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.data.crops import crop_frame
from hogsa.data.dataset import DatasetIndex
from hogsa.data.schema import Camera, SequenceRecord
from hogsa.hand import HandModel, HandPose


class GroupSettings(Protocol):
    """What the group's crops and split are made with (the fields of ``hogsa.hogs.train.HOGSConfig``)."""

    crop: int  # crops are crop × crop pixels
    crop_margin: float  # added on each side of the parts' bounding box, as a fraction of its longer side
    held_out_views: list[int]  # views held out at every frame (novel views)
    held_out_every: int  # every n-th frame is held out in every view (novel poses)


@dataclass(frozen=True, eq=False)
class Sample:
    """One cropped view of one frame, with the poses that produced it (``frame_poses``)."""

    image: Tensor  # [3, S, S] float32 in [0, 1], black outside the parts' mask
    mask: Tensor  # [S, S] uint8 part labels (0 background, 1 right, 2 left, 3 object)
    camera: Camera  # the crop's camera (S × S)
    right: HandPose  # one row, float32 tensors
    left: HandPose  # one row, float32 tensors
    obj: ObjectPose  # one row, float32 tensors
    sequence: str
    view: int
    frame: int


@dataclass(frozen=True, eq=False)
class GroupData:
    """Everything a group's model is trained and evaluated on."""

    name: str  # "sXX/<object>"
    hands: dict[str, HandModel]
    obj: ArticulatedObject
    sequences: list[SequenceRecord]
    train: list[Sample]
    held_out: list[Sample]


def resolve_groups(groups: list[str], index: DatasetIndex) -> list[str]:
    """``groups`` as "sXX/<object>" names; ["all"] expands to every (subject, object) of the train split."""
    present = index.groups("train")
    if groups == ["all"]:
        return present
    unknown = [g for g in groups if g not in present]
    if unknown:
        raise ValueError(f"params.yaml: hogs.groups names {unknown}, which the train split lacks; it has {present}")
    return list(groups)


def load_group(cfg: GroupSettings, index: DatasetIndex, hands: dict[str, HandModel], group: str) -> GroupData:
    """The group's train-split sequences, cut into training and held-out crops (module docstring), and
    its object."""
    sequences = index.group_sequences(group, "train")
    if not sequences:
        raise ValueError(f"group {group!r}: no train-split sequence of this subject and object")
    train, held_out = [], []
    for seq in sequences:
        for frame in tqdm(range(seq.frames), desc=f"crops {seq.name}", leave=False):
            if not (seq.hand_valid["right"][frame] and seq.hand_valid["left"][frame]):
                continue  # a model of both hands is trained on frames where both are annotated
            poses = frame_poses(seq, frame)
            for view in seq.views:
                crop = crop_frame(seq, view, frame, cfg.crop, cfg.crop_margin, hands, index.object(seq.object_name))
                if crop is not None:
                    sample = Sample(crop.image, crop.labels, crop.camera, *poses, seq.name, view, frame)
                    (held_out if is_held_out(view, frame, cfg) else train).append(sample)
    obj = index.object(sequences[0].object_name)
    return GroupData(group, hands, obj, sequences, train, held_out)


def frame_poses(seq: SequenceRecord, frame: int) -> tuple[HandPose, HandPose, ObjectPose]:
    """The annotated poses of ``frame`` of ``seq`` (right hand, left hand, object) as one-row float32
    tensors: what a HOGS model is posed with."""
    return (seq.hands["right"].take(frame).torch(), seq.hands["left"].take(frame).torch(),
            seq.object_pose.take(frame).torch())


def is_held_out(view: int, frame: int, cfg: GroupSettings) -> bool:
    return view in cfg.held_out_views or frame % cfg.held_out_every == cfg.held_out_every // 2
