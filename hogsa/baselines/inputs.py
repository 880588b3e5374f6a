"""The baselines' inputs, made once for every run of the training matrix.

``make_inputs`` writes under ``out_dir``:

- ``train/original.npz``: the original training crops (the augment stage's ``crops_dir``) and
  ``train/<variant>.npz`` per augment variant (its samples alone; a run trains on original + variant),
  each with ``train/<name>_fields.npz``, its crops' ground-truth interaction fields (the training
  targets of both baselines, ``hogsa.baselines.train.crop_fields``);
- ``val.npz`` and ``test.npz``: every frame of every allocentric view of the split's sequences, cropped
  as the training crops are (``hogsa.baselines.samples.sequence_crops``);
- ``val_fields.npz`` and ``test_fields.npz``: each sequence's ground-truth interaction field
  (``hogsa.metrics.arctic.GT_FIELD_KEYS``, [F, V] per key; distances do not depend on the view, so one
  computation serves every view), keys "<sequence>|<key>".

A CropSet file holds ``images``, ``K``, ``valid``, ``object_name``, ``source``, per side
``hand_<side>_<field>`` and ``hand_valid_<side>``, and ``object_<field>`` (numpy, camera frame).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.baselines.samples import CropSet, join, sequence_crops, training_crops
from hogsa.baselines.train import BaselinesConfig, crop_fields
from hogsa.data import arctic
from hogsa.data.dataset import DatasetIndex
from hogsa.data.schema import EGO_VIEW, SIDES, SequenceRecord
from hogsa.config import section
from hogsa.hand import HandConfig, HandModel, HandPose, hand_models
from hogsa.io import atomic_path
from hogsa.metrics.arctic import GT_FIELD_KEYS, interaction_field

ORIGINAL = "original"
EVAL_SPLITS = ("val", "test")
SEPARATOR = "|"


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """``arrays`` as an uncompressed npz at ``path``, written atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def crops_arrays(crops: CropSet) -> dict[str, np.ndarray]:
    arrays = {"images": crops.images, "K": crops.K, "valid": crops.valid, "object_name": crops.object_name,
              "source": crops.source}
    for side in SIDES:
        arrays |= {f"hand_{side}_{f.name}": getattr(crops.hands[side], f.name) for f in dataclasses.fields(HandPose)}
        arrays[f"hand_valid_{side}"] = crops.hand_valid[side]
    return arrays | {f"object_{f.name}": getattr(crops.object_pose, f.name) for f in dataclasses.fields(ObjectPose)}


def save_crops(path: str | Path, crops: CropSet) -> None:
    save_npz(path, crops_arrays(crops))


def load_crops(path: str | Path) -> CropSet:
    """The CropSet ``save_crops`` wrote to ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no crops file; run the baseline_inputs stage first")
    with np.load(path) as data:
        expected = crops_arrays(_empty_crops()).keys()
        missing = sorted(set(expected) - set(data.files))
        if missing:
            raise ValueError(f"{path}: a crops file lacks the fields {missing}")
        d = {key: data[key] for key in expected}
    hands = {side: HandPose(*(d[f"hand_{side}_{f.name}"] for f in dataclasses.fields(HandPose))) for side in SIDES}
    pose = ObjectPose(*(d[f"object_{f.name}"] for f in dataclasses.fields(ObjectPose)))
    return CropSet(d["images"], d["K"], hands, {side: d[f"hand_valid_{side}"] for side in SIDES}, d["valid"], pose,
                   d["object_name"], d["source"])


def _empty_crops() -> CropSet:
    hands = {side: HandPose(np.zeros((0, 3)), np.zeros((0, 45)), np.zeros((0, 10)), np.zeros((0, 3))) for side in SIDES}
    return CropSet(np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 3, 3)), hands, {s: np.zeros(0, bool) for s in SIDES},
                   np.zeros(0, bool), ObjectPose(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3))), np.zeros(0, str),
                   np.zeros(0, str))


def sequence_field(seq: SequenceRecord, models: Mapping[str, HandModel], obj: ArticulatedObject
                   ) -> dict[str, np.ndarray]:
    """``GT_FIELD_KEYS`` of every frame of ``seq`` (float32 metres / int64 vertex ids, [F, V])."""
    with torch.no_grad():
        obj_verts = obj.pose(*seq.object_pose.torch())
        dist_ro, idx_ro, dist_or, _ = interaction_field(models["right"](*seq.hands["right"].torch()).vertices, obj_verts)
        dist_lo, idx_lo, dist_ol, _ = interaction_field(models["left"](*seq.hands["left"].torch()).vertices, obj_verts)
    values = (dist_ro, idx_ro, dist_lo, idx_lo, dist_or, dist_ol)
    return {key: value.numpy() for key, value in zip(GT_FIELD_KEYS, values)}


def load_fields(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """{sequence: {GT_FIELD_KEYS key: [F, V]}} of a ``<split>_fields.npz``."""
    fields: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as data:
        for name in data.files:
            sequence, key = name.rsplit(SEPARATOR, 1)
            fields.setdefault(sequence, {})[key] = data[name]
    return fields


def train_crops_path(out_dir: str | Path, train_set: str) -> Path:
    return Path(out_dir) / "train" / f"{train_set}.npz"


def train_fields_path(out_dir: str | Path, train_set: str) -> Path:
    return Path(out_dir) / "train" / f"{train_set}_fields.npz"


def save_crop_fields(path: str | Path, fields: dict[str, list]) -> None:
    """``hogsa.baselines.train.crop_fields``'s output: per side dist_ho, idx_ho [N, Vh] and dist_oh
    [N, max Vo] zero-padded, with each crop's object vertex count."""
    arrays = {"object_vertices": np.array([len(row[2]) for row in fields["right"]], dtype=np.int64)}
    width = int(arrays["object_vertices"].max(initial=0))
    for side, rows in fields.items():
        arrays[f"dist_ho_{side}"] = np.stack([row[0].numpy() for row in rows])
        arrays[f"idx_ho_{side}"] = np.stack([row[1].numpy() for row in rows])
        arrays[f"dist_oh_{side}"] = np.stack([np.pad(row[2].numpy(), (0, width - len(row[2]))) for row in rows])
    save_npz(path, arrays)


def load_crop_fields(path: str | Path) -> dict[str, list]:
    """The fields ``save_crop_fields`` wrote, as ``crop_fields`` returns them."""
    with np.load(path) as data:
        counts = data["object_vertices"]
        return {side: [(torch.as_tensor(d), torch.as_tensor(i), torch.as_tensor(o[:c]))
                       for d, i, o, c in zip(data[f"dist_ho_{side}"], data[f"idx_ho_{side}"], data[f"dist_oh_{side}"],
                                             counts)]
                for side in SIDES}


def load_train_set(inputs_dir: str | Path, train_set: str) -> tuple[CropSet, dict[str, list]]:
    """The crops a run of ``train_set`` trains on (the original ones, and the variant's after them) and
    their ground-truth fields (``crop_fields``)."""
    names = [ORIGINAL] if train_set == ORIGINAL else [ORIGINAL, train_set]
    crops = join([load_crops(train_crops_path(inputs_dir, name)) for name in names])
    parts = [load_crop_fields(train_fields_path(inputs_dir, name)) for name in names]
    return crops, {side: [row for part in parts for row in part[side]] for side in SIDES}


def make_study_inputs(params: dict, index_file: str | Path, crops_dir: str | Path, augment_dir: str | Path,
                      out_dir: str | Path) -> dict:
    """``make_inputs`` with params.yaml's ``hand`` and ``baselines`` sections (the baseline_inputs stage)."""
    cfg = section(params, "baselines", BaselinesConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    return make_inputs(DatasetIndex.load(index_file, hands), crops_dir, augment_dir, out_dir, cfg.train_sets, hands,
                       cfg.image_size, cfg.eval_margin)


def make_inputs(index: DatasetIndex, crops_dir: str | Path, augment_dir: str | Path, out_dir: str | Path,
                train_sets: list[str], models: Mapping[str, HandModel], image_size: int, margin: float) -> dict:
    """Write the inputs (module docstring) and return their counts: crops per train set and split."""
    counts = {}
    for train_set in train_sets:
        root = Path(crops_dir) if train_set == ORIGINAL else Path(augment_dir) / train_set
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no crops of train set {train_set!r} (baselines.train_sets); "
                                    "the augment stage writes one folder per augment.variants entry")
        crops = training_crops(root, arctic.list_sequences(root, "train"), models, image_size)
        save_crops(train_crops_path(out_dir, train_set), crops)
        objects = index.objects(set(crops.object_name.tolist()))
        save_crop_fields(train_fields_path(out_dir, train_set), crop_fields(crops, models, objects))
        counts[train_set] = len(crops)
    for split in EVAL_SPLITS:
        rows, fields = [], {}
        for name in tqdm(index.sequences(split), desc=f"{split} crops"):
            seq = index.read(name)
            obj = index.object(seq.object_name)
            views = [view for view in seq.views if view != EGO_VIEW]
            rows.append(sequence_crops(seq, views, models, obj, image_size, margin))
            fields |= {f"{name}{SEPARATOR}{key}": value for key, value in sequence_field(seq, models, obj).items()}
        if rows:
            save_crops(Path(out_dir) / f"{split}.npz", join(rows))
            save_npz(Path(out_dir) / f"{split}_fields.npz", fields)
        counts[split] = sum(len(r) for r in rows)
    return counts
