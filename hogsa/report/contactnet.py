"""The contactnet stage: train GraspTTA's ContactNet on the training split's bimanual grasp frames, each
hand separately, follow it on the validation split, and score it on the test split.

A test pair gives the net its hand jittered as in training (``hogsa.pom.contactnet.scoring_inputs``)
and asks for the contact map of the grasp itself. Scores (``contact_scores``): the mean absolute error
over all object points and over the points in contact, and the precision, recall and F1 of contact
(> 0.5). Beside the net, two maps that need no learning: all zeros (most object points are out of
contact, so the all-points error alone flatters a net that predicts little), and the contact map the
jittered hand itself leaves (what the optimiser's own contact term sees without the net).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor

from hogsa.config import section
from hogsa.data.dataset import DatasetIndex
from hogsa.hand import HandConfig, HandModel, hand_models
from hogsa.io import atomic_path, write_json
from hogsa.pom.contactnet import (
    ContactExamples,
    ContactNet,
    ContactNetConfig,
    ContactScores,
    EpochRecord,
    contact_examples,
    contact_scores,
    farthest_points,
    object_surfaces,
    predict,
    save_contactnet,
    scoring_inputs,
    train_contactnet,
)
from hogsa.pom.contact import object_contact_map
from hogsa.pom.generate import read_grasps
from hogsa.report.outputs import StageClock, save_and_close
from hogsa.report.paths import ContactNetPaths


class ContactNetInputs(NamedTuple):
    """What the contactnet stage reads."""

    cfg: ContactNetConfig
    seed: int
    hands: dict[str, HandModel]
    index: DatasetIndex


class ContactPairs(NamedTuple):
    """The training and test examples of ContactNet."""

    train_grasps: int  # grasp frames of the training split
    val_grasps: int
    test_grasps: int
    train: ContactExamples  # one example per hand of each grasp frame
    val: ContactExamples  # none when the validation split is empty or holds no grasp
    test: ContactExamples
    hand_subset: Tensor  # [H] int64: the hand vertices fed to the net (farthest points of the right template)


def read_inputs(params: dict, paths: ContactNetPaths) -> ContactNetInputs:
    """The stage's settings, hands and dataset index; makes the report folder."""
    cfg = section(params, "contactnet", ContactNetConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    index = DatasetIndex.load(paths.index_file, hands)
    Path(paths.report_dir).mkdir(parents=True, exist_ok=True)
    return ContactNetInputs(cfg, params["seed"], hands, index)


def contact_pairs(inputs: ContactNetInputs) -> ContactPairs:
    """Training, validation and test examples: the grasp frames of each split, one example per hand."""
    cfg, hands = inputs.cfg, inputs.hands
    grasps, objects = {}, {}
    for split in ("train", "val", "test"):
        if split in inputs.index.splits and inputs.index.sequences(split):
            grasps[split], held = read_grasps(inputs.index, split, hands, cfg.contact_distance)
            objects.update(held)
    surfaces = object_surfaces(objects, cfg.object_points, inputs.seed)
    examples = {split: contact_examples(g, hands, surfaces) for split, g in grasps.items() if len(g)}
    if "val" not in examples:
        examples["val"] = examples["train"].take(torch.zeros(0, dtype=torch.long))
    hand_subset = torch.as_tensor(farthest_points(hands["right"].v_template.double().numpy(), cfg.hand_points))
    for split in ("train", "test"):
        if split not in examples:
            raise ValueError(f"{inputs.index.root}: the {split} split holds no bimanual grasp frame (both hands within "
                             f"contactnet.contact_distance = {cfg.contact_distance} m of the object); ContactNet needs some")
    return ContactPairs(len(grasps["train"]), len(grasps.get("val", ())), len(grasps["test"]), examples["train"],
                        examples["val"], examples["test"], hand_subset)


def train_and_save(inputs: ContactNetInputs, pairs: ContactPairs, model_file: str | Path
                   ) -> tuple[ContactNet, list[EpochRecord]]:
    """The net trained on ``pairs.train`` (followed on ``pairs.val``) and saved to ``model_file``, and its epochs."""
    net, epochs = train_contactnet(pairs.train, pairs.hand_subset, inputs.cfg, inputs.seed, pairs.val)
    save_contactnet(net, pairs.hand_subset, inputs.cfg, model_file)
    return net, epochs


def write_curve(epochs: list[EpochRecord], path: str | Path) -> None:
    """One CSV row per epoch: the training loss and, with a validation split, its scores (a dvc plot)."""
    names = list(ContactScores._fields) if epochs[0].val is not None else []
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["epoch", "train_loss"] + [f"val_{name}" for name in names])
        for k, epoch in enumerate(epochs, start=1):
            writer.writerow([k, f"{epoch.train_loss:.6g}"] + [f"{getattr(epoch.val, n):.6g}" for n in names])


def training_figure(epochs: list[EpochRecord], dpi: int) -> Figure:
    """The training loss per epoch and, when there is a validation split, its contact scores."""
    has_val = epochs[0].val is not None
    fig, axes = plt.subplots(1, 2 if has_val else 1, figsize=(9 if has_val else 4.5, 3), dpi=dpi, squeeze=False)
    steps = range(1, len(epochs) + 1)
    axes[0, 0].plot(steps, [e.train_loss for e in epochs])
    axes[0, 0].set_xlabel("epoch")
    axes[0, 0].set_ylabel("weighted squared error per pair")
    axes[0, 0].set_title("ContactNet training loss", fontsize=9)
    if has_val:
        for name in ("mae_contact_points", "f1", "precision", "recall"):
            axes[0, 1].plot(steps, [getattr(e.val, name) for e in epochs], label=name)
        axes[0, 1].set_xlabel("epoch")
        axes[0, 1].set_ylim(0, 1)
        axes[0, 1].legend(fontsize=7)
        axes[0, 1].set_title("validation split (hands jittered)", fontsize=9)
    fig.tight_layout()
    return fig


def save_training_figure(epochs: list[EpochRecord], cfg: ContactNetConfig, report_dir: str | Path) -> Figure:
    """training.png."""
    return save_and_close(training_figure(epochs, cfg.report.dpi), Path(report_dir) / "training.png")


def contactnet_summary(net: ContactNet, pairs: ContactPairs, epochs: list[EpochRecord], cfg: ContactNetConfig,
                       seed: int) -> dict:
    """reports/metrics/contactnet.json: test scores of the net, of a map of zeros and of the jittered
    hand's own contact map (the module doc), with the pair counts and the last epoch's loss."""
    test = pairs.test
    hands = scoring_inputs(test, cfg.jitter, seed)
    maps = {"net": predict(net, test.object_points, hands[:, pairs.hand_subset]),
            "zero_map": torch.zeros_like(test.target),
            "own_map": object_contact_map(test.object_points, hands)}
    summary = {}
    for name, predicted in maps.items():
        for key, value in contact_scores(predicted, test.target)._asdict().items():
            summary[f"{name}_{key}"] = None if math.isnan(value) else value  # undefined (no contact called): null
    return summary | {
        "train_pairs": len(pairs.train.target),
        "val_pairs": len(pairs.val.target),
        "test_pairs": len(test.target),
        "final_train_loss": epochs[-1].train_loss,
    }


def run(params: dict, paths: ContactNetPaths) -> dict:
    """The contactnet stage as its notebook runs it: the net, metrics, figure and timings; returns the metrics."""
    clock = StageClock()
    inputs = read_inputs(params, paths)
    pairs = contact_pairs(inputs)
    net, epochs = train_and_save(inputs, pairs, paths.model_file)
    write_curve(epochs, Path(paths.report_dir) / "training.csv")
    save_training_figure(epochs, inputs.cfg, paths.report_dir)
    summary = contactnet_summary(net, pairs, epochs, inputs.cfg, inputs.seed)
    write_json(paths.metrics, summary)
    clock.write(paths.timings)
    return summary
