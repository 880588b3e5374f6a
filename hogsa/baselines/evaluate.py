"""Predicting the val/test crops, saving the predictions beside their targets, and scoring them.

Predictions and targets are saved per (sequence, view) as ``<folder>/<subject>/<sequence>/<view>.npz``
holding ``hogsa.metrics.arctic``'s ``pred`` keys prefixed ``pred_`` and its ``target`` keys prefixed
``target_`` (numpy, metres, the crop camera's frame), so anyone can re-evaluate them;
``score_folder`` does, with ``hogsa.metrics.arctic.aggregate`` over every file.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hogsa.articulated import ArticulatedObject
from hogsa.baselines.arcticnet import SIDES
from hogsa.baselines.samples import CropSet
from hogsa.baselines.train import arcticnet_outputs, image_tensor, object_templates
from hogsa.hand import HandModel
from hogsa.io import atomic_path
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
def targets(crops: CropSet, models: Mapping[str, HandModel], objects: Mapping[str, ArticulatedObject]) -> dict[str, list]:
    """Per ``target`` pose key and mask, one numpy row per crop (the crop camera's frame)."""
    rows: dict[str, list] = {}
    for row in range(len(crops)):
        take = np.array([row])
        obj = objects[str(crops.object_name[row])]
        values = {"obj_verts": obj.pose(*crops.object_pose.take(take).torch(torch.float64))[0].numpy(),
                  "obj_angle": crops.object_pose.articulation[row], "valid": crops.valid[row]}
        for side in SIDES:
            out = models[side](*crops.hands[side].take(take).torch())
            values[f"joints_{SUFFIX[side]}"] = out.joints[0].double().numpy()
            values[f"verts_{SUFFIX[side]}"] = out.vertices[0].double().numpy()
            values[f"valid_{SUFFIX[side]}"] = crops.hand_valid[side][row]
        for key, value in values.items():
            rows.setdefault(key, []).append(np.asarray(value))
    return rows


def save_predictions(folder: str | Path, crops: CropSet, pred: dict[str, list], target: dict[str, list],
                     objects: Mapping[str, ArticulatedObject]) -> list[Path]:
    """One npz per (sequence, view) of ``crops`` (sources "<sequence>:<view>:<frame>"), frames in order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for row, source in enumerate(crops.source):
        sequence, view, frame = str(source).rsplit(":", 2)
        groups.setdefault((sequence, view), []).append(row)
    written = []
    for (sequence, view), rows in groups.items():
        rows = sorted(rows, key=lambda r: int(str(crops.source[r]).rsplit(":", 1)[1]))
        obj = objects[str(crops.object_name[rows[0]])]
        arrays = {f"pred_{k}": np.stack([v[r] for r in rows]) for k, v in pred.items()}
        arrays |= {f"target_{k}": np.stack([v[r] for r in rows]) for k, v in target.items()}
        arrays |= {"target_obj_bottom": ~obj.top_mask.numpy(), "target_obj_diameter": np.float64(obj.diameter)}
        path = Path(folder) / sequence / f"{view}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getvalue())
        written.append(path)
    return written


def read_prediction(path: str | Path) -> tuple[dict, dict]:
    """The ``pred`` and ``target`` dicts of one saved (sequence, view)."""
    with np.load(path) as data:
        pred = {k[len("pred_"):]: data[k] for k in data.files if k.startswith("pred_")}
        target = {k[len("target_"):]: data[k] for k in data.files if k.startswith("target_")}
    return pred, target


def score_folder(folder: str | Path) -> dict[str, float]:
    """``hogsa.metrics.arctic.aggregate`` over every saved (sequence, view) under ``folder``.

    A pose prediction lacks the field keys and a field prediction the pose keys; each is completed from
    its target (the pose metrics of a field prediction are then those of the ground truth, and are
    dropped), so one scorer serves both tasks."""
    frames = []
    for path in sorted(Path(folder).rglob("*.npz")):
        pred, target = read_prediction(path)
        field_only = "joints_r" not in pred
        complete = {**{k: target[k] for k in arctic.POSE_KEYS}, **pred}
        scores = arctic.evaluate_frames(complete, target)
        if field_only:
            scores = {k: v for k, v in scores.items() if k.startswith(("field_error", "acc_field"))}
        frames.append(scores)
    return arctic.aggregate(frames)
