"""One run of the baselines' training matrix: a task trained on a train set with a seed, scored on val,
its test predictions saved and scored once.

A run's folder ``<runs_dir>/<task>/<train_set>/seed<k>/`` holds ``model.safetensors`` (the checkpoint
``hogsa.baselines.train`` resumes from), ``live/`` (dvclive's curves), ``predictions/`` (the test
split per (sequence, view), ``hogsa.baselines.evaluate``), ``examples.npz`` (a few test crops and their
predicted and annotated joints, for the report's figure), ``scores.json`` ({"val": ..., "test": ...},
``hogsa.metrics.arctic``'s output keys; "val" is absent when the split is empty). The run's seconds go
to a timings file apart from it (an output holds results alone).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from hogsa.baselines import evaluate
from hogsa.baselines.inputs import EVAL_SPLITS, load_crops, load_fields, load_train_set, save_npz
from hogsa.baselines.train import TASKS, BaselinesConfig, contact_pairs, field_targets, train_baseline
from hogsa.config import section
from hogsa.data.dataset import DatasetIndex
from hogsa.hand import HandConfig, hand_models
from hogsa.io import write_json

SCORES_FILE = "scores.json"
EXAMPLES_FILE = "examples.npz"
PREDICTIONS_DIR = "predictions"
EXAMPLES = 8  # test crops kept for the report's figure


def run_dir(runs_dir: str | Path, task: str, train_set: str, seed: int) -> Path:
    return Path(runs_dir) / task / train_set / f"seed{seed}"


def check_run(cfg: BaselinesConfig, task: str, train_set: str) -> None:
    """Raise ValueError unless ``task`` and ``train_set`` are among params.yaml's ``baselines`` lists."""
    if task not in TASKS or task not in cfg.tasks:
        raise ValueError(f"task must be one of baselines.tasks {cfg.tasks} (known: {TASKS}), got {task!r}")
    if train_set not in cfg.train_sets:
        raise ValueError(f"train set must be one of baselines.train_sets {cfg.train_sets}, got {train_set!r}")


def example_rows(sources: np.ndarray, count: int) -> np.ndarray:
    """``count`` crops spread over the test split: evenly spaced rows, so several sequences and views."""
    return np.unique(np.linspace(0, len(sources) - 1, count).round().astype(int))


def run_baseline(params: dict, index_file: str | Path, inputs_dir: str | Path, runs_dir: str | Path, task: str,
                 train_set: str, seed: int, timings: str | Path) -> dict:
    """Train (or resume), score val, save and score test; returns the scores written to ``scores.json``
    and writes the seconds of training (with its inputs) and evaluation to ``timings``."""
    cfg = section(params, "baselines", BaselinesConfig)
    check_run(cfg, task, train_set)
    out = run_dir(runs_dir, task, train_set, seed)
    hands = hand_models(section(params, "hand", HandConfig))
    index = DatasetIndex.load(index_file, hands)
    tic = time.perf_counter()
    crops, fields = load_train_set(inputs_dir, train_set)
    evals = {split: load_crops(Path(inputs_dir) / f"{split}.npz") for split in EVAL_SPLITS
             if (Path(inputs_dir) / f"{split}.npz").is_file()}
    names = set(crops.object_name.tolist()).union(*(set(c.object_name.tolist()) for c in evals.values()))
    objects = index.objects(names)
    count = max(obj.vertices.shape[0] for obj in objects.values())
    supervision = (contact_pairs(crops, hands, objects, fields) if task == "arcticnet_sf"
                   else field_targets(crops, hands, objects, count, fields))
    model = train_baseline(task, cfg, crops, supervision, out, seed, hands, objects, count,
                           name=f"{train_set} seed{seed}")
    train_seconds = time.perf_counter() - tic

    tic = time.perf_counter()
    scores = {"train_crops": len(crops)}
    for split, eval_crops in evals.items():
        pred = evaluate.predict(task, model, eval_crops, cfg.image_size, hands, objects, cfg.object_points)
        target = evaluate.targets(eval_crops, hands, objects, load_fields(Path(inputs_dir) / f"{split}_fields.npz"))
        if split == "test":
            shutil.rmtree(out / PREDICTIONS_DIR, ignore_errors=True)
            evaluate.save_predictions(out / PREDICTIONS_DIR, eval_crops, pred, target, objects)
            scores["test"] = evaluate.score_folder(out / PREDICTIONS_DIR)
            save_examples(out / EXAMPLES_FILE, eval_crops, pred, target)
        else:
            scores[split] = evaluate.score(evaluate.per_view(eval_crops, pred, target, objects).values())
    write_json(out / SCORES_FILE, scores)
    write_json(timings, {"train_seconds": round(train_seconds, 1),
                                    "eval_seconds": round(time.perf_counter() - tic, 1)})
    return scores


def save_examples(path: Path, crops, pred: dict[str, list], target: dict[str, list]) -> None:
    """A few test crops with their K, source and predicted / annotated joints (ArcticNet-SF's)."""
    rows = example_rows(crops.source, EXAMPLES)
    arrays = {"images": crops.images[rows], "K": crops.K[rows], "source": crops.source[rows]}
    for key, values in pred.items():
        if key.startswith("joints"):
            arrays[f"pred_{key}"] = np.stack([values[r] for r in rows])
            arrays[f"target_{key}"] = np.stack([target[key][r] for r in rows])
    save_npz(path, arrays)
