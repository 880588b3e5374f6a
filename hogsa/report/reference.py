"""What a pose estimator scores without looking at the image: every test crop predicted as the training
crops' mean, the reference line under Table 1 that says whether a baseline learned from the pixels.

The mean is taken in each crop camera's frame (metres): both hands' joints and vertices over the
training crops where that hand is annotated, and per object its vertices and articulation over the
crops of that object. Scored like a baseline's predictions (``hogsa.baselines.evaluate``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hogsa.baselines import evaluate
from hogsa.baselines.inputs import ORIGINAL, load_crops, load_fields, train_crops_path
from hogsa.data.dataset import DatasetIndex
from hogsa.hand import HandModel

HAND_KEYS = ("joints_r", "verts_r", "joints_l", "verts_l")


def mean_prediction(train: dict[str, list], train_objects: np.ndarray, test_objects: np.ndarray) -> dict[str, list]:
    """``pred`` rows (``evaluate.predict``'s keys) for crops of ``test_objects`` [N] from the training
    targets ``train`` (``evaluate.targets``) of crops of ``train_objects`` [M]."""
    pred: dict[str, list] = {}
    for key in HAND_KEYS:
        valid = np.asarray(train[f"valid_{key[-1]}"], dtype=bool)
        mean = np.mean([row for row, ok in zip(train[key], valid) if ok], axis=0)
        pred[key] = [mean] * len(test_objects)
    means = {}
    for name in np.unique(test_objects):
        rows = np.flatnonzero(train_objects == name)
        if len(rows) == 0:
            raise ValueError(f"object {str(name)!r} of the test crops has no training crop to take a mean from")
        means[name] = (np.mean([train["obj_verts"][r] for r in rows], axis=0),
                       float(np.mean([train["obj_angle"][r] for r in rows])))
    pred["obj_verts"] = [means[name][0] for name in test_objects]
    pred["obj_angle"] = [means[name][1] for name in test_objects]
    return pred


def mean_prediction_scores(inputs_dir: str | Path, split: str, hands: Mapping[str, HandModel],
                           index: DatasetIndex) -> dict[str, float]:
    """ARCTIC's metrics (``evaluate.score``) on ``split`` of the original training crops' mean prediction,
    from the baseline_inputs stage's folder; objects from ``index``."""
    train_crops = load_crops(train_crops_path(inputs_dir, ORIGINAL))
    crops = load_crops(Path(inputs_dir) / f"{split}.npz")
    objects = index.objects(set(train_crops.object_name.tolist()) | set(crops.object_name.tolist()))
    train = evaluate.targets(train_crops, hands, objects)
    target = evaluate.targets(crops, hands, objects, load_fields(Path(inputs_dir) / f"{split}_fields.npz"))
    pred = mean_prediction(train, train_crops.object_name, crops.object_name)
    return evaluate.score(evaluate.per_view(crops, pred, target, objects).values())
