"""Predicting the val/test crops, saving the predictions beside their targets, and scoring them.

Predictions and targets are saved per (sequence, view) as ``<folder>/<subject>/<sequence>/<view>.npz``
holding ``hogsa.metrics.arctic``'s ``pred`` keys prefixed ``pred_`` and its ``target`` keys prefixed
``target_`` (numpy, metres, the crop camera's frame), so anyone can re-evaluate them;
``score_folder`` does, with ``hogsa.metrics.arctic.aggregate`` over every file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hogsa.articulated import ArticulatedObject
from hogsa.baselines.arcticnet import SIDES
from hogsa.baselines.inputs import save_npz
from hogsa.baselines.samples import CropSet
from hogsa.baselines.train import arcticnet_outputs, image_tensor, object_templates
from hogsa.hand import HandModel
from hogsa.metrics import arctic

SUFFIX = {"right": "r", "left": "l"}


@torch.no_grad()
def predict(task: str, model: nn.Module, crops: CropSet, size: int, models: Mapping[str, HandModel],
            objects: Mapping[str, ArticulatedObject], object_points: int, batch: int = 64) -> dict[str, list]:
    """Per ``pred`` key, one numpy row per crop: ArcticNet-SF's meshes (``joints_r`` ... ``obj_angle``) or
    InterField-SF's fields (``dist_ro`` ... ``dist_ol``, the object's own vertices only)."""
    rows: dict[str, list] = {}
    templates = object_templates(objects, object_points) if task == "interfield_sf" else None
    for start in range(0, len(crops), batch):
        part = crops.take(np.arange(start, min(start + batch, len(crops))))
        images = image_tensor(part, size)
        if task == "arcticnet_sf":
            out = arcticnet_outputs(model, images, torch.as_tensor(part.K, dtype=torch.float32), part.object_name,
                                    models, objects)
            values = {**{f"joints_{SUFFIX[s]}": out["joints"][s] for s in SIDES},
                      **{f"verts_{SUFFIX[s]}": out["verts"][s] for s in SIDES},
                      "obj_verts": out["object_verts"], "obj_angle": out["obj"].angle}
        else:
            field = model(images, torch.stack([templates[str(n)] for n in part.object_name]))
            counts = [objects[str(n)].vertices.shape[0] for n in part.object_name]
            values = {"dist_ro": field.dist_ro, "dist_lo": field.dist_lo,
                      "dist_or": [d[:c] for d, c in zip(field.dist_or, counts)],
                      "dist_ol": [d[:c] for d, c in zip(field.dist_ol, counts)]}
        for key, value in values.items():
            rows.setdefault(key, []).extend(v.double().numpy() for v in value)
    return rows


@torch.no_grad()
def targets(crops: CropSet, models: Mapping[str, HandModel], objects: Mapping[str, ArticulatedObject],
            fields: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> dict[str, list]:
    """Per ``target`` pose key and mask, one numpy row per crop (the crop camera's frame) and, when
    ``fields`` ({sequence: GT_FIELD_KEYS arrays [F, V]}, ``hogsa.baselines.inputs.load_fields``) is
    given, each crop's frame of its sequence's ground-truth field."""
    rows: dict[str, list] = {"obj_verts": [None] * len(crops)}
    for name in np.unique(crops.object_name):
        chosen = np.flatnonzero(crops.object_name == name)
        verts = objects[str(name)].pose(*crops.object_pose.take(chosen).torch(torch.float64)).numpy()
        for row, value in zip(chosen, verts):
            rows["obj_verts"][row] = value
    rows["obj_angle"] = list(np.asarray(crops.object_pose.articulation, dtype=np.float64))
    rows["valid"] = list(crops.valid)
    for side in SIDES:
        out = models[side](*crops.hands[side].torch())
        rows[f"joints_{SUFFIX[side]}"] = list(out.joints.double().numpy())
        rows[f"verts_{SUFFIX[side]}"] = list(out.vertices.double().numpy())
        rows[f"valid_{SUFFIX[side]}"] = list(crops.hand_valid[side])
    if fields is not None:
        for key in arctic.GT_FIELD_KEYS:
            rows[key] = [fields[sequence][key][int(frame)]
                         for sequence, _, frame in (str(s).rsplit(":", 2) for s in crops.source)]
    return rows


def per_view(crops: CropSet, pred: dict[str, list], target: dict[str, list],
             objects: Mapping[str, ArticulatedObject]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """{(sequence, view): the arrays of its file} for ``crops`` (sources "<sequence>:<view>:<frame>"),
    frames in order: ``pred`` keys prefixed ``pred_``, ``target`` keys ``target_`` (floats as float32),
    with the object's ``target_obj_bottom`` and ``target_obj_diameter``."""
    groups: dict[tuple[str, str], list[int]] = {}
    for row, source in enumerate(crops.source):
        sequence, view, _ = str(source).rsplit(":", 2)
        groups.setdefault((sequence, view), []).append(row)
    files = {}
    for (sequence, view), rows in groups.items():
        rows = sorted(rows, key=lambda r: int(str(crops.source[r]).rsplit(":", 1)[1]))
        obj = objects[str(crops.object_name[rows[0]])]
        arrays = {f"pred_{k}": _stored(np.stack([v[r] for r in rows])) for k, v in pred.items()}
        arrays |= {f"target_{k}": _stored(np.stack([v[r] for r in rows])) for k, v in target.items()}
        arrays |= {"target_obj_bottom": ~obj.top_mask.numpy(), "target_obj_diameter": np.float64(obj.diameter)}
        files[(sequence, view)] = arrays
    return files


def _stored(array: np.ndarray) -> np.ndarray:
    """Float arrays as float32 (micrometre steps at these distances; half the disk), others as they are."""
    return array.astype(np.float32) if array.dtype == np.float64 else array


def save_predictions(folder: str | Path, crops: CropSet, pred: dict[str, list], target: dict[str, list],
                     objects: Mapping[str, ArticulatedObject]) -> list[Path]:
    """One npz per (sequence, view) of ``crops`` (``per_view``) under ``folder``; the paths written."""
    written = []
    for (sequence, view), arrays in per_view(crops, pred, target, objects).items():
        path = Path(folder) / sequence / f"{view}.npz"
        save_npz(path, arrays)
        written.append(path)
    return written


def split_arrays(arrays: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """The ``pred`` and ``target`` dicts of one (sequence, view)'s arrays."""
    pred = {k[len("pred_"):]: v for k, v in arrays.items() if k.startswith("pred_")}
    target = {k[len("target_"):]: v for k, v in arrays.items() if k.startswith("target_")}
    return pred, target


def read_prediction(path: str | Path) -> tuple[dict, dict]:
    """The ``pred`` and ``target`` dicts of one saved (sequence, view)."""
    with np.load(path) as data:
        return split_arrays({key: data[key] for key in data.files})


def score_frames(pred: dict, target: dict) -> dict[str, torch.Tensor]:
    """``hogsa.metrics.arctic.evaluate_frames`` of one (sequence, view) of either task.

    A pose prediction lacks the field keys and a field prediction the pose keys; a field prediction is
    completed from its target, and only its field metrics are kept (its pose metrics would be those of
    the ground truth), so one scorer serves both tasks."""
    field_only = "joints_r" not in pred
    complete = {**{k: target[k] for k in arctic.POSE_KEYS}, **pred}
    scores = arctic.evaluate_frames(complete, target)
    if field_only:
        scores = {k: v for k, v in scores.items() if k.startswith(("field_error", "acc_field"))}
    return scores


def score(files: Iterable[Mapping[str, np.ndarray]]) -> dict[str, float]:
    """``hogsa.metrics.arctic.aggregate`` over (sequence, view) arrays (``per_view``'s values)."""
    return arctic.aggregate([score_frames(*split_arrays(arrays)) for arrays in files])


def score_folder(folder: str | Path) -> dict[str, float]:
    """``score`` of every saved (sequence, view) under ``folder``."""
    paths = sorted(Path(folder).rglob("*.npz"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no saved predictions (<subject>/<sequence>/<view>.npz)")
    return arctic.aggregate([score_frames(*read_prediction(path)) for path in paths])
