"""Score records: per-image scores, summaries (mean, spread, count), per-group means, metrics-JSON form."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hogsa.metrics.image import psnr, sharpness
from hogsa.metrics.scores import (
    BATCH,
    ImageScores,
    ScoreSummary,
    group_summaries,
    image_scores,
    summarize,
    summarize_by_group,
)


def _scores(*psnrs: float, lpips: bool = False) -> list[ImageScores]:
    return [ImageScores(psnr=p, ssim=p / 100, lpips=p / 1000 if lpips else None, sharpness=None) for p in psnrs]


def test_image_scores_follow_the_images_across_batches():
    n = BATCH + 3  # two metric calls
    targets = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    offsets = torch.linspace(0.01, 0.2, n)
    images = targets + offsets[:, None, None, None]  # MSE = offset²: PSNR −20·log10(offset)
    scores = image_scores(images, targets)
    assert len(scores) == n
    assert [s.psnr for s in scores] == pytest.approx((-20 * torch.log10(offsets)).tolist(), abs=1e-3)
    assert all(s.lpips is None and s.sharpness is None and s.ssim < 1 for s in scores)
    sharp = image_scores(images, targets, with_sharpness=True)
    assert [s.sharpness for s in sharp] == pytest.approx(sharpness(images).tolist())
    assert [s.psnr for s in sharp] == psnr(images, targets).tolist()  # exact: the same metric calls


def test_a_summary_has_mean_spread_and_count_and_writes_the_metrics_keys():
    summary = summarize(_scores(20.0, 30.0, 40.0))
    assert summary.mean.psnr == pytest.approx(30.0) and summary.std.psnr == pytest.approx(math.sqrt(200 / 3))
    assert summary.count == 3 and summary.mean.lpips is None and summary.std.sharpness is None
    assert summary.as_metrics() == {"psnr": summary.mean.psnr, "ssim": summary.mean.ssim, "lpips": "not computed",
                                    "images": 3}
    assert summary.means() == {"psnr": summary.mean.psnr, "ssim": summary.mean.ssim}
    with_lpips = summarize(_scores(20.0, 40.0, lpips=True))
    assert with_lpips.as_metrics()["lpips"] == pytest.approx(0.03)
    assert set(with_lpips.means()) == {"psnr", "ssim", "lpips"}
    sharp = ScoreSummary(ImageScores(25.0, 0.9, None, 0.05), ImageScores(1.0, 0.01, None, 0.01), 4)
    assert sharp.as_metrics() == {"psnr": 25.0, "ssim": 0.9, "lpips": "not computed", "sharpness": 0.05, "images": 4}
    with pytest.raises(ValueError, match="no image scores"):
        summarize([])


def test_groups_are_summarized_apart_and_then_count_once_each():
    scores, groups = _scores(10.0, 20.0, 40.0), ("b", "b", "a")
    per_group = group_summaries(scores, groups)
    assert list(per_group) == ["a", "b"] and per_group["b"].count == 2 and per_group["b"].mean.psnr == 15.0
    overall = summarize_by_group(scores, groups)  # the mean of the group means (27.5), not of the images (23.3)
    assert overall.mean.psnr == pytest.approx(27.5) and overall.std.psnr == pytest.approx(12.5)
    assert overall.count == 3
    with pytest.raises(ValueError, match="3 image scores but 2 group names"):
        group_summaries(scores, ("a", "b"))


def test_sharpness_drops_with_blur_and_is_zero_on_a_flat_image():
    target = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    blurred = F.avg_pool2d(F.pad(target, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    assert (sharpness(blurred) < 0.5 * sharpness(target)).all()
    assert torch.allclose(sharpness(torch.full((1, 3, 8, 8), 0.4)), torch.zeros(1))
    ramp = torch.arange(6.0).expand(1, 3, 6, 6) / 10  # linear: its Laplacian is 0
    assert float(sharpness(ramp)) == pytest.approx(0.0, abs=1e-7)
    assert np.isclose(float(sharpness(torch.eye(3).expand(1, 3, 3, 3))), 4.0)  # one window: |−4 · 1 + 4 · 0|
