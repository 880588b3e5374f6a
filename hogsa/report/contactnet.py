"""The contactnet stage: train GraspTTA's ContactNet on the training split's bimanual grasp frames, each
hand separately, and measure its contact-map error on the test split.

The error is the mean absolute difference of the predicted contact map from the one the test hand
leaves, over all object points and over the points in contact; beside it, the error of a map of zeros
(most object points are out of contact, so the all-points error alone flatters a net that predicts little).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor

from hogsa.config import section
from hogsa.data.dataset import DatasetIndex
from hogsa.hand import HandConfig, HandModel, hand_models
from hogsa.io import write_json
from hogsa.pom.contactnet import (
    ContactExamples,
    ContactNet,
    ContactNetConfig,
    contact_errors,
    contact_examples,
    farthest_points,
    object_surfaces,
    predict,
    save_contactnet,
    train_contactnet,
)
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
    test_grasps: int
    train: ContactExamples  # one example per hand of each grasp frame
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
    """Training and test examples: the grasp frames of each split, one example per hand."""
    cfg, hands = inputs.cfg, inputs.hands
    train, objects = read_grasps(inputs.index, "train", hands, cfg.contact_distance)
    test, test_objects = read_grasps(inputs.index, "test", hands, cfg.contact_distance)
    surfaces = object_surfaces({**objects, **test_objects}, cfg.object_points, inputs.seed)
    hand_subset = torch.as_tensor(farthest_points(hands["right"].v_template.double().numpy(), cfg.hand_points))
    return ContactPairs(len(train), len(test), contact_examples(train, hands, surfaces),
                        contact_examples(test, hands, surfaces), hand_subset)


def train_and_save(inputs: ContactNetInputs, pairs: ContactPairs,
                   model_file: str | Path) -> tuple[ContactNet, list[float]]:
    """The net trained on ``pairs.train`` and saved to ``model_file``, and its per-epoch mean training loss."""
    net, curve = train_contactnet(pairs.train, pairs.hand_subset, inputs.cfg, inputs.seed)
    save_contactnet(net, pairs.hand_subset, inputs.cfg, model_file)
    return net, curve


def loss_figure(curve: list[float], dpi: int) -> Figure:
    """The training loss per epoch."""
    fig, ax = plt.subplots(figsize=(4.5, 3), dpi=dpi)
    ax.plot(range(1, len(curve) + 1), curve)
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy")
    ax.set_title("ContactNet training loss", fontsize=9)
    fig.tight_layout()
    return fig


def save_loss_figure(curve: list[float], cfg: ContactNetConfig, report_dir: str | Path) -> Figure:
    """training_loss.png."""
    return save_and_close(loss_figure(curve, cfg.report.dpi), Path(report_dir) / "training_loss.png")


def contactnet_summary(net: ContactNet, pairs: ContactPairs, curve: list[float]) -> dict:
    """reports/metrics/contactnet.json: held-out contact-map errors of the net and of a map of zeros."""
    test = pairs.test
    errors = contact_errors(predict(net, test.object_points, test.hand_points[:, pairs.hand_subset]), test.target)
    zero = contact_errors(torch.zeros_like(test.target), test.target)
    return {
        "contact_map_mae": errors.mae,
        "contact_map_mae_contact_points": errors.mae_contact_points,
        "zero_map_mae": zero.mae,
        "zero_map_mae_contact_points": zero.mae_contact_points,
        "train_pairs": len(pairs.train.target),
        "test_pairs": len(test.target),
        "final_train_loss": curve[-1],
    }


def run(params: dict, paths: ContactNetPaths) -> dict:
    """The contactnet stage as its notebook runs it: the net, metrics, figure and timings; returns the metrics."""
    clock = StageClock()
    inputs = read_inputs(params, paths)
    pairs = contact_pairs(inputs)
    net, curve = train_and_save(inputs, pairs, paths.model_file)
    save_loss_figure(curve, inputs.cfg, paths.report_dir)
    summary = contactnet_summary(net, pairs, curve)
    write_json(paths.metrics, summary)
    clock.write(paths.timings)
    return summary
