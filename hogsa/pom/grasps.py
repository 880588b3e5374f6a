"""Bimanual grasp sets: both hands' MANO parameters and the object's pose per sample.

A ``Grasps`` holds S samples as float64 numpy records (``HandPose`` per side, ``ObjectPose``; metres,
radians; MANO pose absolute axis-angle as in ``hogsa.data.schema``) plus, per sample, its object and
its group (the dataset's sequence group "subject/object", which names the HOGS model that renders it
later). ``from_sequences`` takes the frames of a dataset in which both hands touch the object;
``save`` / ``load`` write and read them as one .npz (no pickle), with per-sample record columns
beside them (``load_records``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.data.contact import ObjectDistance
from hogsa.data.schema import SIDES, SequenceRecord
from hogsa.hand import HandModel, HandPose, hand_vertices
from hogsa.io import atomic_path

HAND_FIELDS = tuple(field.name for field in dataclasses.fields(HandPose))
OBJECT_FIELDS = tuple(field.name for field in dataclasses.fields(ObjectPose))
LABELS = ("object_name", "group", "source")
# .npz keys: "<side>_<HandPose field>", "object_<ObjectPose field>" and the labels
NPZ_KEYS = tuple(f"{s}_{f}" for s in SIDES for f in HAND_FIELDS) + tuple(f"object_{f}" for f in OBJECT_FIELDS) + LABELS
HAND_JOINTS = 21  # per hand, MANO/ARCTIC order
RECORD_PREFIX = "record_"  # per-sample columns saved beside the grasps (``save``, ``load_records``)


@dataclass(frozen=True, eq=False)
class Grasps:
    """S bimanual grasps: per side a HandPose and the object's ObjectPose (numpy float64, S rows each)."""

    hands: dict[str, HandPose]  # side → global_orient [S,3], hand_pose [S,45], betas [S,10], transl [S,3]
    object_pose: ObjectPose  # articulation [S] rad, rot [S,3] axis-angle, transl [S,3] m
    object_name: np.ndarray  # [S] str
    group: np.ndarray  # [S] str: "subject/object"
    source: np.ndarray  # [S] str: "sequence:frame" the sample comes from

    def __post_init__(self) -> None:
        if not isinstance(self.object_pose, ObjectPose):
            raise ValueError(f"Grasps: field 'object_pose' must be an ObjectPose, got {type(self.object_pose).__name__}")
        count = len(self.object_pose)
        for name in LABELS:
            if np.shape(getattr(self, name)) != (count,):
                raise ValueError(f"Grasps: field {name!r} has shape {np.shape(getattr(self, name))}, expected ({count},)")
        if sorted(self.hands) != sorted(SIDES):
            raise ValueError(f"Grasps: field 'hands' has keys {sorted(self.hands)}, expected {sorted(SIDES)}")
        for side, pose in self.hands.items():
            rows = len(pose) if isinstance(pose, HandPose) else None
            if rows != count:
                raise ValueError(f"Grasps: field 'hands.{side}' must be a HandPose of {count} rows (as 'object_pose'), "
                                 f"got {type(pose).__name__}" + ("" if rows is None else f" of {rows} rows"))

    def __len__(self) -> int:
        return len(self.object_pose)

    def take(self, index: np.ndarray) -> Grasps:
        """The samples at ``index`` (int array or bool mask)."""
        return Grasps({s: h.take(index) for s, h in self.hands.items()}, self.object_pose.take(index),
                      self.object_name[index], self.group[index], self.source[index])

    @staticmethod
    def concatenate(parts: list[Grasps]) -> Grasps:
        """One set of every sample of ``parts``, in order."""
        hands = {s: HandPose.concatenate([p.hands[s] for p in parts]) for s in SIDES}
        labels = (np.concatenate([getattr(p, name) for p in parts]) for name in LABELS)
        return Grasps(hands, ObjectPose.concatenate([p.object_pose for p in parts]), *labels)

    def save(self, path: str | Path, records: Mapping[str, np.ndarray] | None = None) -> None:
        """Write as .npz (atomically) under ``NPZ_KEYS``, strings as unicode arrays; ``records``, per-sample
        columns [S] (e.g. the plausibility record), under ``RECORD_PREFIX + name``."""
        arrays = {f"{s}_{f}": getattr(self.hands[s], f) for s in SIDES for f in HAND_FIELDS}
        arrays.update({f"object_{f}": getattr(self.object_pose, f) for f in OBJECT_FIELDS})
        arrays.update({name: getattr(self, name).astype(str) for name in LABELS})
        for name, column in (records or {}).items():
            if np.shape(column) != (len(self),):
                raise ValueError(f"Grasps.save: record column {name!r} has shape {np.shape(column)}, expected ({len(self)},)")
            arrays[RECORD_PREFIX + name] = np.asarray(column)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Grasps:
        """The grasp set ``save`` wrote at ``path`` (float64); ValueError naming the file when a key is
        missing or a field has the wrong shape."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: grasp set not found")
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in NPZ_KEYS if k not in data]
            if missing:
                raise ValueError(f"{path}: fields {missing} are missing")
            hands = {s: _stored_record(data, path, s, HandPose) for s in SIDES}
            object_pose = _stored_record(data, path, "object", ObjectPose)
            try:
                return cls(hands, object_pose, *(data[name] for name in LABELS))
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from err


def load_records(path: str | Path) -> dict[str, np.ndarray]:
    """The per-sample columns ``Grasps.save`` wrote beside the grasps at ``path`` (none: {})."""
    with np.load(path, allow_pickle=False) as data:
        return {k.removeprefix(RECORD_PREFIX): data[k] for k in data.files if k.startswith(RECORD_PREFIX)}


def _stored_record(data: Mapping[str, np.ndarray], path: Path, prefix: str,
                   record: type[HandPose] | type[ObjectPose]) -> HandPose | ObjectPose:
    """The ``record`` (float64) of the .npz keys ``<prefix>_<field>``; ValueError naming the file and keys."""
    fields = HAND_FIELDS if record is HandPose else OBJECT_FIELDS
    try:
        return record(*(data[f"{prefix}_{field}"].astype(np.float64) for field in fields))
    except ValueError as err:
        raise ValueError(f"{path}: keys '{prefix}_*': {err}") from err


@torch.no_grad()
def grasp_joints(grasps: Grasps, hands: dict[str, HandModel]) -> np.ndarray:
    """[S,42,3] float64 world joints (m) of both hands, right then left (21 each, MANO/ARCTIC order)."""
    if not len(grasps):
        return np.zeros((0, 2 * HAND_JOINTS, 3))
    return torch.cat([hands[side](*grasps.hands[side].torch()).joints.double() for side in SIDES], dim=1).numpy()


def repeated(text: str, count: int) -> np.ndarray:
    """[count] str array of ``text``."""
    return np.array([text] * count)


def from_sequences(sequences: list[SequenceRecord], hands: dict[str, HandModel], objects: dict[str, ArticulatedObject],
                   contact_distance: float) -> Grasps:
    """The frames of ``sequences`` where both hands are valid and each has a vertex within
    ``contact_distance`` (m) of the object or inside it: the dataset's bimanual grasps."""
    parts = []
    distances = {name: ObjectDistance(obj) for name, obj in objects.items()}
    for seq in sequences:
        touching = seq.hand_valid["right"] & seq.hand_valid["left"]
        pose = seq.object_pose
        for side in SIDES:
            gaps = distances[seq.object_name].closest(hand_vertices(hands[side], seq.hands[side]), pose)
            touching &= gaps <= contact_distance
        frames = np.flatnonzero(touching)
        parts.append(Grasps({s: seq.hands[s].take(frames) for s in SIDES}, pose.take(frames),
                            repeated(seq.object_name, len(frames)),
                            repeated(f"{seq.subject}/{seq.object_name}", len(frames)),
                            np.array([f"{seq.name}:{f}" for f in frames])))
    if not parts:
        raise ValueError("from_sequences: no sequences given")
    return Grasps.concatenate(parts)
