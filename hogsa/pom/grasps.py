"""Bimanual grasp sets: both hands' MANO parameters and the object's pose per sample.

A ``Grasps`` holds S samples as float64 numpy arrays (metres, radians; MANO pose absolute axis-angle
as in ``hogsa.data.schema``) plus, per sample, its object and its group (the dataset's sequence group
"subject/object", which names the HOGS model that renders it later). ``from_sequences`` takes the
frames of a dataset in which both hands touch the object; ``save`` / ``load`` write and read them as
one .npz (no pickle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hogsa.articulated import ArticulatedObject
from hogsa.data.contact import ObjectDistance
from hogsa.data.schema import SIDES, Sequence
from hogsa.hand import HandModel
from hogsa.io import atomic_path

_HAND_FIELDS = ("rot", "pose", "betas", "trans")
_WIDTHS = {"rot": 3, "pose": 45, "betas": 10, "trans": 3}


@dataclass(frozen=True, eq=False)
class Grasps:
    """S bimanual grasps (arrays float64; ``hands[side][field]`` for field in rot, pose, betas, trans)."""

    hands: dict[str, dict[str, np.ndarray]]  # side → rot [S,3], pose [S,45], betas [S,10], trans [S,3]
    articulation: np.ndarray  # [S] rad
    obj_rot: np.ndarray  # [S,3] axis-angle
    obj_trans: np.ndarray  # [S,3] m
    object_name: np.ndarray  # [S] str
    group: np.ndarray  # [S] str: "subject/object"
    source: np.ndarray  # [S] str: "sequence:frame" the sample comes from

    def __post_init__(self) -> None:
        count = len(self.articulation)
        shapes = {"articulation": (count,), "obj_rot": (count, 3), "obj_trans": (count, 3),
                  "object_name": (count,), "group": (count,), "source": (count,)}
        for name, shape in shapes.items():
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"Grasps: field {name!r} has shape {np.shape(getattr(self, name))}, expected {shape}")
        for side in SIDES:
            for field in _HAND_FIELDS:
                value = self.hands[side][field]
                if value.shape != (count, _WIDTHS[field]):
                    raise ValueError(f"Grasps: field 'hands[{side!r}][{field!r}]' has shape {value.shape}, "
                                     f"expected ({count}, {_WIDTHS[field]})")

    def __len__(self) -> int:
        return len(self.articulation)

    def take(self, index: np.ndarray) -> Grasps:
        """The samples at ``index`` (int array or bool mask)."""
        return Grasps({s: {f: v[index] for f, v in h.items()} for s, h in self.hands.items()},
                      self.articulation[index], self.obj_rot[index], self.obj_trans[index],
                      self.object_name[index], self.group[index], self.source[index])

    @staticmethod
    def concatenate(parts: list[Grasps]) -> Grasps:
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        hands = {s: {f: np.concatenate([p.hands[s][f] for p in parts]) for f in _HAND_FIELDS} for s in SIDES}
        return Grasps(hands, cat("articulation"), cat("obj_rot"), cat("obj_trans"), cat("object_name"),
                      cat("group"), cat("source"))

    def save(self, path: str | Path) -> None:
        """Write as .npz (atomically): hand fields as ``<side>_<field>``, strings as unicode arrays."""
        arrays = {f"{s}_{f}": self.hands[s][f] for s in SIDES for f in _HAND_FIELDS}
        arrays.update(articulation=self.articulation, obj_rot=self.obj_rot, obj_trans=self.obj_trans,
                      object_name=self.object_name.astype(str), group=self.group.astype(str),
                      source=self.source.astype(str))
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Grasps:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: grasp set not found")
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in [f"{s}_{f}" for s in SIDES for f in _HAND_FIELDS] +
                       ["articulation", "obj_rot", "obj_trans", "object_name", "group", "source"] if k not in data]
            if missing:
                raise ValueError(f"{path}: fields {missing} are missing")
            hands = {s: {f: data[f"{s}_{f}"].astype(np.float64) for f in _HAND_FIELDS} for s in SIDES}
            return cls(hands, data["articulation"].astype(np.float64), data["obj_rot"].astype(np.float64),
                       data["obj_trans"].astype(np.float64), data["object_name"], data["group"], data["source"])


def hand_vertices(hand: HandModel, params: dict[str, np.ndarray]) -> np.ndarray:
    """[S,V,3] world vertices of one side's parameters (rot, pose, betas, trans arrays of S rows)."""
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        return hand(f(params["rot"]), f(params["pose"]), f(params["betas"]), f(params["trans"])).vertices.double().numpy()


def from_sequences(sequences: list[Sequence], hands: dict[str, HandModel], objects: dict[str, ArticulatedObject],
                   contact_distance: float) -> Grasps:
    """The frames of ``sequences`` where both hands are valid and each has a vertex within
    ``contact_distance`` (m) of the object or inside it: the dataset's bimanual grasps."""
    parts = []
    distances = {name: ObjectDistance(obj) for name, obj in objects.items()}
    for seq in sequences:
        valid = seq.hands["right"].valid & seq.hands["left"].valid
        params = {side: {"rot": seq.hands[side].rot, "pose": seq.hands[side].pose, "trans": seq.hands[side].trans,
                         "betas": np.tile(seq.hands[side].betas, (seq.frames, 1))} for side in SIDES}
        touching = valid.copy()
        for side in SIDES:
            verts = hand_vertices(hands[side], params[side])
            gaps = np.array([distances[seq.object_name](verts[f], seq.obj_articulation[f], seq.obj_rot[f],
                                                        seq.obj_trans[f]).min() for f in range(seq.frames)])
            touching &= gaps <= contact_distance
        frames = np.flatnonzero(touching)
        names = lambda text: np.array([text] * len(frames))  # noqa: E731
        parts.append(Grasps({s: {f: v[frames] for f, v in params[s].items()} for s in SIDES},
                            seq.obj_articulation[frames], seq.obj_rot[frames], seq.obj_trans[frames],
                            names(seq.object_name), names(f"{seq.subject}/{seq.object_name}"),
                            np.array([f"{seq.name}:{f}" for f in frames])))
    if not parts:
        raise ValueError("from_sequences: no sequences given")
    return Grasps.concatenate(parts)
