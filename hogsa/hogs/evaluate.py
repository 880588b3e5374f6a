"""Evaluation of a HOGS (or 3DGS) model of a group on its crops.

Each crop is rendered at its camera and poses over the crops' black background, clamped to [0, 1], and
scored against the whole crop (``hogsa.metrics.scores``: PSNR, SSIM and, given its network, LPIPS).
The held-out crops are reported all together and split into novel views (the held-out views, every
frame) and novel poses (the held-out frames seen from the training views); a trained model is compared
with the crops at its corrected poses (``corrected_group``) and, for reference, at the annotated ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from hogsa.data.groups import GroupData, GroupSettings, Sample
from hogsa.hogs.model import GaussianScene
from hogsa.hogs.poses import PoseCorrections, corrected
from hogsa.metrics.image import LPIPS
from hogsa.metrics.scores import ImageScores, ScoreSummary, image_scores, summarize

HELD_OUT_SUBSETS = ("held_out", "novel_views", "novel_poses")


@dataclass(frozen=True)
class HeldOutScores:
    """Summaries of the held-out crops, all of them and per subset (None: the subset is empty)."""

    held_out: ScoreSummary
    novel_views: ScoreSummary | None
    novel_poses: ScoreSummary | None

    def as_metrics(self) -> dict[str, dict[str, float | str | int]]:
        """The metrics-JSON form: ``ScoreSummary.as_metrics`` of each non-empty subset, by name."""
        return {name: summary.as_metrics() for name in HELD_OUT_SUBSETS if (summary := getattr(self, name)) is not None}


def evaluate(model: GaussianScene, samples: list[Sample], lpips: LPIPS | None = None) -> ScoreSummary:
    """PSNR, SSIM (and LPIPS, given its network) over ``samples``' crops, black background."""
    return summarize(render_scores(model, samples, lpips))


def evaluate_held_out(model: GaussianScene, data: GroupData, cfg: GroupSettings,
                      lpips: LPIPS | None = None) -> HeldOutScores:
    """``evaluate`` over all held-out crops and over each subset of ``held_out_subsets`` (each crop
    rendered once)."""
    if not data.held_out:
        raise ValueError(f"group {data.name}: no held-out crops to evaluate (check hogs.held_out_views / "
                         "held_out_every)")
    scores = dict(zip(map(id, data.held_out), render_scores(model, data.held_out, lpips)))
    subsets = {name: [scores[id(s)] for s in samples] for name, samples in held_out_subsets(data, cfg).items()}
    return HeldOutScores(**{name: summarize(subset) if subset else None for name, subset in subsets.items()})


@torch.no_grad()
def render_scores(model: GaussianScene, samples: list[Sample], lpips: LPIPS | None = None) -> list[ImageScores]:
    """Per crop: the scores of the render, clamped to [0, 1], against the crop's image."""
    scores = []
    for sample in samples:
        pred = model.render(sample.camera, sample.right, sample.left, sample.obj).rgb[None].clamp(0, 1)
        scores += image_scores(pred, sample.image[None], lpips)
    return scores


def held_out_subsets(data: GroupData, cfg: GroupSettings) -> dict[str, list[Sample]]:
    """The held-out samples by ``HELD_OUT_SUBSETS``: all of them, novel views (held-out views, every
    frame) and novel poses (held-out frames seen from the training views)."""
    return {
        "held_out": data.held_out,
        "novel_views": [s for s in data.held_out if s.view in cfg.held_out_views],
        "novel_poses": [s for s in data.held_out if s.view not in cfg.held_out_views],
    }


def corrected_group(data: GroupData, poses: PoseCorrections) -> GroupData:
    """``data`` with every sample's poses corrected (what the trained model is compared with)."""
    return dataclasses.replace(data, train=[corrected(s, poses) for s in data.train],
                               held_out=[corrected(s, poses) for s in data.held_out])
