"""Speed of the baselines' training and evaluation (hogsa.baselines) at params.yaml's settings.

Per task (ArcticNet-SF, InterField-SF): the median seconds of a training step (``train_step``: batch,
augmentation, forward, loss, backward, Adam; warm-up excluded) and of predicting one evaluation crop,
on the original training crops and the val crops that the ``baseline_inputs`` stage wrote (``--inputs``,
default data/baseline_inputs), and the stage's estimated minutes: every run of the training matrix at
``baselines.steps`` steps plus its val and test predictions (not the targets, scores and saved files of
a run, about 20 s more each). The last line is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from hogsa.baselines import evaluate
from hogsa.baselines.inputs import EVAL_SPLITS, load_crops, load_train_set
from hogsa.baselines.train import (BaselinesConfig, build_model, contact_pairs, field_targets, mean_cameras,
                                   object_templates, train_step)
from hogsa.config import load_params, section
from hogsa.data.dataset import DatasetIndex
from hogsa.hand import HandConfig, hand_models


def median_seconds(call, repeats: int, warmup: int = 3) -> float:
    times = []
    for k in range(warmup + repeats):
        tic = time.perf_counter()
        call(k)
        times.append(time.perf_counter() - tic)
    return statistics.median(times[warmup:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--index", default="data/index.json")
    parser.add_argument("--inputs", default="data/baseline_inputs")
    parser.add_argument("--steps", type=int, default=15, help="timed training steps per task")
    args = parser.parse_args()
    params = load_params(args.params)
    cfg = section(params, "baselines", BaselinesConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    crops, fields = load_train_set(args.inputs, "original")
    val = load_crops(Path(args.inputs) / "val.npz")
    objects = DatasetIndex.load(args.index, hands).objects(set(crops.object_name) | set(val.object_name))
    count = max(obj.vertices.shape[0] for obj in objects.values())
    eval_crops = sum(len(load_crops(Path(args.inputs) / f"{split}.npz")) for split in EVAL_SPLITS)
    runs = len(cfg.train_sets) * len(cfg.seeds)
    figures: dict = {"threads": torch.get_num_threads(), "batch_size": cfg.batch_size, "image_size": cfg.image_size,
                     "steps": cfg.steps, "runs_per_task": runs}
    stage_seconds = 0.0
    for task in cfg.tasks:
        torch.manual_seed(0)
        model = build_model(task, cfg, hands, count)
        if task == "arcticnet_sf":
            model.start_cameras(*mean_cameras(crops, hands, cfg.image_size))
            supervision = contact_pairs(crops, hands, objects, fields)
        else:
            supervision = field_targets(crops, hands, objects, count, fields)
        templates = object_templates(objects, cfg.object_points) if task == "interfield_sf" else None
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        model.train()
        step = median_seconds(lambda k: train_step(task, cfg, model, optimizer, crops, supervision, k, 0, hands,
                                                   objects, templates), args.steps)
        model.eval()
        chunk = val.take(np.arange(min(len(val), 256)))
        predict = median_seconds(lambda _: evaluate.predict(task, model, chunk, cfg.image_size, hands, objects,
                                                            cfg.object_points), 3, warmup=1) / len(chunk)
        run = cfg.steps * step + eval_crops * predict
        figures[task] = {"step_ms": round(1000 * step, 1), "predict_ms_per_crop": round(1000 * predict, 3),
                         "parameters": sum(p.numel() for p in model.parameters()), "run_seconds": round(run, 1)}
        stage_seconds += runs * run
        print(f"{task}: {figures[task]}")
    figures["stage_minutes_estimate"] = round(stage_seconds / 60, 1)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
