"""Image metrics used by the HOGS stage: closed-form PSNR, SSIM bounds and LPIPS's plumbing."""

import math

import pytest
import torch
from safetensors.torch import save_file

from hogsa.metrics import LPIPS, psnr, ssim


def _images(batch: int = 2, height: int = 24, width: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1


def test_psnr_of_a_known_mse():
    target = _images()
    pred = target + 0.1  # MSE 0.01 → 20 dB
    assert torch.allclose(psnr(pred, target), torch.tensor([20.0, 20.0]), atol=1e-4)
    pred = target.clone()
    pred[1] += 0.01 * torch.tensor([1.0, -1.0, 1.0])[:, None, None]  # MSE 1e-4 → 40 dB; image 0 exact
    # exact: image 0 is a copy, so its MSE is exactly 0 and its PSNR exactly inf
    assert psnr(pred, target)[0] == math.inf and psnr(pred, target)[1] == pytest.approx(40.0, abs=1e-3)


def test_psnr_with_a_mask_counts_only_masked_pixels():
    target = _images(batch=1)
    pred = target.clone()
    pred[..., :12, :] += 0.1  # error on the top half only
    top = torch.zeros(1, 24, 32, dtype=torch.uint8)
    top[:, :12] = 3
    assert float(psnr(pred, target, top)) == pytest.approx(20.0, abs=1e-4)
    assert float(psnr(pred, target, top[:, None])) == pytest.approx(20.0, abs=1e-4)
    assert float(psnr(pred, target)) == pytest.approx(10 * math.log10(1 / 0.005), abs=1e-4)


def test_ssim_is_one_for_identical_images_and_lower_otherwise():
    target = _images()
    assert torch.allclose(ssim(target, target), torch.ones(2), atol=1e-6)
    black = torch.zeros(1, 3, 16, 16)
    assert float(ssim(black, black)) == pytest.approx(1.0, abs=1e-6)  # no eps bias on flat images
    noisy = (target + 0.1 * torch.randn(target.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    scores = ssim(noisy, target)
    assert (scores < 0.95).all() and (scores > 0).all()
    assert torch.allclose(ssim(noisy, target), ssim(target, noisy))


def test_ssim_is_differentiable():
    target = _images(batch=1)
    pred = (target + 0.05).requires_grad_()
    (1 - ssim(pred, target)).sum().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="B, 3, H, W"):
        psnr(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match="B, 3, H, W"):
        ssim(torch.zeros(3, 4, 4), torch.zeros(3, 4, 4))


def test_lpips_loads_its_weights_file_and_measures_distance(tmp_path):
    generator = torch.Generator().manual_seed(0)
    shapes = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3), 10: (256, 256, 3, 3)}
    tensors = {}
    for i, shape in shapes.items():
        tensors[f"features.{i}.weight"] = 0.05 * torch.randn(shape, generator=generator)
        tensors[f"features.{i}.bias"] = torch.zeros(shape[0])
    for k, channels in enumerate((64, 192, 384, 256, 256)):
        tensors[f"lin{k}.model.1.weight"] = torch.rand(1, channels, 1, 1, generator=generator)
    save_file(tensors, tmp_path / "alex.safetensors")
    model = LPIPS.from_file(tmp_path / "alex.safetensors")
    assert torch.equal(model.features[8].weight, tensors["features.8.weight"])  # loaded from the file: exact
    images = _images(height=64, width=64)
    assert torch.allclose(model(images, images), torch.zeros(2))
    assert (model(images, images.flip(-1)) > 0).all()

    del tensors["lin4.model.1.weight"]
    save_file(tensors, tmp_path / "partial.safetensors")
    with pytest.raises(ValueError, match="lin4.model.1.weight"):
        LPIPS.from_file(tmp_path / "partial.safetensors")
    with pytest.raises(FileNotFoundError):
        LPIPS.from_file(tmp_path / "absent.safetensors")
