"""The baselines stage: Tables 1, 2 and 4 of the paper from the training matrix's runs, their curves and
a look at their test predictions.

Each table is ``{train_set: {metric: {"mean": m, "std": s, "seeds": [per-seed values]}}}`` over the
seeds of ``baselines.seeds`` (std: the sample standard deviation, 0 for one seed), read from the runs'
``scores.json`` (``hogsa.baselines.run``), which ``hogsa.baselines.evaluate.score_folder`` computed from
the saved predictions:

- Table 1: ArcticNet-SF, every pose metric (``TABLE1_METRICS``), every train set;
- Table 2: InterField-SF, the field errors and field accelerations (``TABLE2_METRICS``);
- Table 4: ArcticNet-SF on ``full``, ``no_srm`` and ``no_pom`` (the paper's ablation of HOGSA's parts).

The val split's tables (what the settings were chosen on) are written beside the figures.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from hogsa.baselines.run import EXAMPLES_FILE, SCORES_FILE, run_dir
from hogsa.baselines.train import BaselinesConfig
from hogsa.config import section
from hogsa.io import write_json
from hogsa.report.outputs import StageClock, save_and_close
from hogsa.report.paths import BaselinesPaths

TABLE1_METRICS = ("mpjpe", "mrrpe_rl", "mrrpe_ro", "aae", "success_rate", "cdev", "mdev", "acc_hand", "acc_object")
TABLE2_METRICS = ("field_error_ho", "field_error_oh", "acc_field_ho", "acc_field_oh")
TABLE4_SETS = ("full", "no_srm", "no_pom")
HIGHER_IS_BETTER = {"success_rate"}
HAND_BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
              (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20))


def read_scores(runs_dir: str | Path, task: str, train_set: str, seed: int) -> dict:
    path = run_dir(runs_dir, task, train_set, seed) / SCORES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no scores of run ({task}, {train_set}, seed {seed}); "
                                "the train_baseline stage writes them")
    return json.loads(path.read_text())


def spread(values: list[float]) -> dict:
    """{"mean", "std" (sample; 0 for one value), "seeds"} of per-seed values (NaN-free means)."""
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "seeds": [float(v) for v in array]}


def table(runs_dir: str | Path, task: str, train_sets: list[str], seeds: list[int], metrics: tuple[str, ...],
          split: str = "test") -> dict:
    """{train_set: {metric: spread over seeds}} of ``task``'s runs on ``split``."""
    rows = {}
    for train_set in train_sets:
        scores = [read_scores(runs_dir, task, train_set, seed)[split] for seed in seeds]
        rows[train_set] = {metric: spread([s[metric] for s in scores]) for metric in metrics}
    return rows


def curves(runs_dir: str | Path, task: str, train_set: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, training loss) of one run, from its dvclive curve."""
    path = run_dir(runs_dir, task, train_set, seed) / "live" / "plots" / "metrics" / "train" / "loss.tsv"
    with path.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return np.array([int(r["step"]) for r in rows]), np.array([float(r["loss"]) for r in rows])


def curves_figure(runs_dir: str | Path, cfg: BaselinesConfig, dpi: float) -> Figure:
    """Training loss (moving average over 20 steps) per task and train set, every seed."""
    fig, axes = plt.subplots(1, len(cfg.tasks), figsize=(5.5 * len(cfg.tasks), 3.6), dpi=dpi, squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, task in zip(axes[0], cfg.tasks):
        for k, train_set in enumerate(cfg.train_sets):
            for j, seed in enumerate(cfg.seeds):
                steps, loss = curves(runs_dir, task, train_set, seed)
                width = min(20, len(loss))
                smooth = np.convolve(loss, np.ones(width) / width, mode="valid")
                ax.plot(steps[width - 1:], smooth, color=colours(k), lw=1.0, alpha=0.8,
                        label=train_set if j == 0 else None)
        ax.set(title=task, xlabel="step", ylabel="training loss", yscale="log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def pixels(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """[N, 2] image coordinates (matplotlib's: pixel centres at integers) of camera-frame points [N, 3] (m)
    under intrinsics ``K`` [3, 3] (pixel centres at integer + 0.5)."""
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:] - 0.5


def predictions_figure(runs_dir: str | Path, task: str, train_sets: list[str], seed: int, dpi: float) -> Figure:
    """The same test crops under each train set's run: annotated (green) and predicted (red, right hand;
    orange, left) joints projected into the crop."""
    examples = {name: np.load(run_dir(runs_dir, task, name, seed) / EXAMPLES_FILE) for name in train_sets}
    count = len(examples[train_sets[0]]["images"])
    fig, axes = plt.subplots(len(train_sets), count, figsize=(1.6 * count, 1.7 * len(train_sets)), dpi=dpi,
                             squeeze=False)
    for i, name in enumerate(train_sets):
        data = examples[name]
        for j in range(count):
            ax = axes[i, j]
            ax.imshow(data["images"][j])
            for side, colour in (("r", "red"), ("l", "orange")):
                for key, c in ((f"target_joints_{side}", "lime"), (f"pred_joints_{side}", colour)):
                    uv = pixels(data[key][j], data["K"][j])
                    for a, b in HAND_BONES:
                        ax.plot(uv[[a, b], 0], uv[[a, b], 1], color=c, lw=0.7)
            ax.set_xticks([])
            ax.set_yticks([])
            size = data["images"].shape[1]
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle(f"{task}, seed {seed}: annotated (green) and predicted joints (red right, orange left)", fontsize=8)
    fig.tight_layout()
    return fig


def has_split(runs_dir: str | Path, cfg: BaselinesConfig, split: str) -> bool:
    return split in read_scores(runs_dir, cfg.tasks[0], cfg.train_sets[0], cfg.seeds[0])


def run(params: dict, paths: BaselinesPaths) -> dict:
    """The baselines stage as its notebook runs it; returns the three test tables."""
    clock = StageClock()
    cfg = section(params, "baselines", BaselinesConfig)
    report = Path(paths.report_dir)
    report.mkdir(parents=True, exist_ok=True)
    tables = {}
    if "arcticnet_sf" in cfg.tasks:
        tables["table1"] = table(paths.runs_dir, "arcticnet_sf", cfg.train_sets, cfg.seeds, TABLE1_METRICS)
        ablation = [name for name in TABLE4_SETS if name in cfg.train_sets]
        tables["table4"] = {name: tables["table1"][name] for name in ablation}
    if "interfield_sf" in cfg.tasks:
        tables["table2"] = table(paths.runs_dir, "interfield_sf", cfg.train_sets, cfg.seeds, TABLE2_METRICS)
    for name, value in tables.items():
        write_json(getattr(paths, name), value)
    if has_split(paths.runs_dir, cfg, "val"):
        val = {}
        if "arcticnet_sf" in cfg.tasks:
            val["table1"] = table(paths.runs_dir, "arcticnet_sf", cfg.train_sets, cfg.seeds, TABLE1_METRICS, "val")
        if "interfield_sf" in cfg.tasks:
            val["table2"] = table(paths.runs_dir, "interfield_sf", cfg.train_sets, cfg.seeds, TABLE2_METRICS, "val")
        write_json(report / "val_tables.json", val)
    dpi = 100
    save_and_close(curves_figure(paths.runs_dir, cfg, dpi), report / "curves.png")
    if "arcticnet_sf" in cfg.tasks:
        save_and_close(predictions_figure(paths.runs_dir, "arcticnet_sf", cfg.train_sets, cfg.seeds[0], dpi),
                       report / "predictions.png")
    clock.write(paths.timings)
    return tables


def gains(table1: dict, against: str = "original") -> dict:
    """Per train set, per metric: the mean's improvement over ``against`` (positive = better)."""
    base = table1[against]
    out = {}
    for name, row in table1.items():
        out[name] = {m: (v["mean"] - base[m]["mean"]) * (1 if m in HIGHER_IS_BETTER else -1)
                     for m, v in row.items() if not math.isnan(v["mean"])}
    return out
