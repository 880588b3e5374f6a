"""Score records of images against their targets: ``ImageScores`` per image, ``ScoreSummary`` per set.

``image_scores`` scores images (renders, refined renders) against targets with ``hogsa.metrics.image``:
PSNR, SSIM, LPIPS (given its network) and sharpness (when asked). ``summarize`` is the mean, the
standard deviation (population, ddof 0) and the count over a set of images; ``group_summaries`` does
so per group, and ``summarize_by_group`` averages the group means (each group counts once, however many
images it has: how the study reports a set of groups). ``ScoreSummary.as_metrics`` is the form the
stages' metrics JSON takes: the means, LPIPS as ``NOT_COMPUTED`` without its network, sharpness only
where it was scored, and the count as ``images``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from hogsa.metrics.image import LPIPS, NOT_COMPUTED, psnr, sharpness, ssim

BATCH = 16  # images per metric call: bounds memory; SSIM's last bits depend on it, so it stays fixed


@dataclass(frozen=True)
class ImageScores:
    """Scores of one image against its target (or, in a ``ScoreSummary``, their mean or spread)."""

    psnr: float  # dB
    ssim: float  # in [-1, 1]
    lpips: float | None  # LPIPS distance, 0 for identical images; None: no LPIPS network
    sharpness: float | None  # mean |Laplacian| of the image (``hogsa.metrics.image.sharpness``); None: not scored


@dataclass(frozen=True)
class ScoreSummary:
    """Scores over a set of images."""

    mean: ImageScores
    std: ImageScores  # standard deviation of the averaged values (ddof 0)
    count: int  # images

    def as_metrics(self) -> dict[str, float | str | int]:
        """The metrics-JSON form (module docstring)."""
        metrics: dict[str, float | str | int] = {
            "psnr": self.mean.psnr, "ssim": self.mean.ssim,
            "lpips": NOT_COMPUTED if self.mean.lpips is None else self.mean.lpips}
        if self.mean.sharpness is not None:
            metrics["sharpness"] = self.mean.sharpness
        return {**metrics, "images": self.count}

    def means(self) -> dict[str, float]:
        """The mean of each score that was computed, by name (for training curves)."""
        values = {field.name: getattr(self.mean, field.name) for field in fields(ImageScores)}
        return {name: value for name, value in values.items() if value is not None}


@torch.no_grad()
def image_scores(
    images: Tensor,  # [N, 3, H, W] in [0, 1]
    targets: Tensor,  # [N, 3, H, W] in [0, 1]
    lpips: LPIPS | None = None,
    with_sharpness: bool = False,
) -> list[ImageScores]:
    """Per image: PSNR, SSIM, LPIPS (given its network) and the image's sharpness (``with_sharpness``)."""
    scores = []
    for i in range(0, len(images), BATCH):
        pred, target = images[i:i + BATCH], targets[i:i + BATCH]
        columns = [psnr(pred, target).tolist(), ssim(pred, target).tolist(),
                   lpips(pred, target).tolist() if lpips is not None else [None] * len(pred),
                   sharpness(pred).tolist() if with_sharpness else [None] * len(pred)]
        scores += [ImageScores(*values) for values in zip(*columns)]
    return scores


def summarize(scores: Sequence[ImageScores]) -> ScoreSummary:
    """Mean and standard deviation of each score over ``scores`` (of the first image's scored kinds)."""
    if not scores:
        raise ValueError("summarize: no image scores to summarize")
    return ScoreSummary(_reduce(scores, np.mean), _reduce(scores, np.std), len(scores))


def group_summaries(scores: Sequence[ImageScores], groups: Sequence[str]) -> dict[str, ScoreSummary]:
    """Per group (sorted by name): the summary of its images' scores; ``groups[i]`` names image i's group."""
    if len(scores) != len(groups):
        raise ValueError(f"group_summaries: {len(scores)} image scores but {len(groups)} group names")
    return {group: summarize([s for s, g in zip(scores, groups) if g == group]) for group in sorted(set(groups))}


def summarize_by_group(scores: Sequence[ImageScores], groups: Sequence[str]) -> ScoreSummary:
    """Mean (and standard deviation) over groups of each group's mean score; the count is all images."""
    means = [summary.mean for summary in group_summaries(scores, groups).values()]
    return ScoreSummary(_reduce(means, np.mean), _reduce(means, np.std), len(scores))


def _reduce(scores: Sequence[ImageScores], statistic: Callable[[list[float]], float]) -> ImageScores:
    """``statistic`` (np.mean, np.std) of each score over ``scores``; None where the first has none."""
    names = [field.name for field in fields(ImageScores)]
    return ImageScores(*(None if getattr(scores[0], name) is None else float(statistic([getattr(s, name) for s in scores]))
                         for name in names))
