"""Image quality metrics: PSNR, SSIM, (given its weights) LPIPS, and sharpness.

Images are float tensors [B, 3, H, W] with values in [0, 1]; every metric returns one value per image,
[B], so callers choose how to average.

- PSNR = 10·log10(1 / MSE), the MSE over all pixels and channels of an image or, with a mask, over the
  masked pixels only.
- SSIM is kornia's (Gaussian window of 11 taps, σ = 1.5, c1 = 0.01², c2 = 0.03², reflect padding) with
  no extra denominator term (``eps=0``, as the 3DGS reference), so identical images score exactly 1; the
  map is averaged over pixels and channels.
- LPIPS (Zhang et al. 2018, AlexNet variant, version 0.1) needs weights that hogsa cannot download:
  ``LPIPS.from_file(path)`` reads them from a safetensors file; without one, callers report
  ``NOT_COMPUTED`` rather than a substitute. The file holds torchvision's AlexNet ``features.{0,3,6,8,10}
  .{weight,bias}`` and the LPIPS linear heads ``lin{0..4}.model.1.weight`` (the keys of the ``lpips``
  package's ``weights/v0.1/alex.pth``), e.g. written with ``safetensors.torch.save_file`` from both
  state dicts merged.
- Sharpness is the mean absolute 4-neighbour Laplacian over pixels and channels (of one image, no
  target): a blurred image scores lower, so a refinement that only smooths shows as a drop.
"""

from __future__ import annotations

from pathlib import Path

import torch
from kornia.metrics import ssim as kornia_ssim
from safetensors.torch import load_file
from torch import Tensor, nn

NOT_COMPUTED = "not computed"  # what a report says for LPIPS when no weights path is configured
SSIM_WINDOW = 11


def psnr(
    pred: Tensor,  # [B, 3, H, W] in [0, 1]
    target: Tensor,  # [B, 3, H, W] in [0, 1]
    mask: Tensor | None = None,  # [B, 1, H, W] or [B, H, W], nonzero = pixels that count
) -> Tensor:  # [B] dB
    """Peak signal-to-noise ratio per image, for a peak value of 1."""
    _check_images(pred, target)
    squared = (pred - target).square()
    if mask is None:
        mse = squared.mean(dim=(1, 2, 3))
    else:
        weight = (mask.reshape(pred.shape[0], 1, *pred.shape[2:]) != 0).to(pred.dtype).expand_as(pred)
        mse = (squared * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp_min(1.0)
    return -10.0 * torch.log10(mse)


def ssim(
    pred: Tensor,  # [B, 3, H, W] in [0, 1]
    target: Tensor,  # [B, 3, H, W] in [0, 1]
) -> Tensor:  # [B] in [-1, 1]
    """Mean structural similarity per image (differentiable, usable as a loss: 1 − ssim)."""
    _check_images(pred, target)
    return kornia_ssim(pred, target, SSIM_WINDOW, max_val=1.0, eps=0.0).mean(dim=(1, 2, 3))


def sharpness(images: Tensor) -> Tensor:  # [B, 3, H, W] in [0, 1] → [B]
    """Mean absolute 4-neighbour Laplacian over pixels and channels (a blurred image scores lower)."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=images.dtype)
    laplacian = torch.nn.functional.conv2d(images.flatten(0, 1)[:, None], kernel[None, None])
    return laplacian.abs().reshape(images.shape[0], -1).mean(dim=1)


class LPIPS(nn.Module):
    """LPIPS v0.1 with the AlexNet trunk: Σ_layers mean_pixels ‖w_l ⊙ (f̂_l(x) − f̂_l(y))‖², f̂ the
    channel-normalised activations after the five ReLUs of AlexNet's ``features``."""

    _CONV_IDS = (0, 3, 6, 8, 10)  # the conv layers of torchvision's alexnet().features
    _SHIFT = (-0.030, -0.088, -0.188)  # LPIPS's ScalingLayer, for inputs in [-1, 1]
    _SCALE = (0.458, 0.448, 0.450)

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        )
        self.heads = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1)) for c in (64, 192, 384, 256, 256)])
        self.register_buffer("shift", torch.tensor(self._SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(self._SCALE)[None, :, None, None])
        self.requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | Path) -> LPIPS:
        """Weights from a safetensors file with the keys of the module docstring; raises naming what is missing."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: LPIPS weights file not found (see hogsa.metrics.image for its keys)")
        tensors = load_file(path)
        model = cls()
        expected = [f"features.{i}.{kind}" for i in cls._CONV_IDS for kind in ("weight", "bias")]
        expected += [f"lin{k}.model.1.weight" for k in range(5)]
        missing = [key for key in expected if key not in tensors]
        if missing:
            raise ValueError(f"{path}: LPIPS weights lack the keys {missing}")
        with torch.no_grad():
            for i in cls._CONV_IDS:
                model.features[i].weight.copy_(tensors[f"features.{i}.weight"])
                model.features[i].bias.copy_(tensors[f"features.{i}.bias"])
            for k, head in enumerate(model.heads):
                head.copy_(tensors[f"lin{k}.model.1.weight"])
        return model

    def forward(
        self,
        pred: Tensor,  # [B, 3, H, W] in [0, 1]
        target: Tensor,  # [B, 3, H, W] in [0, 1]
    ) -> Tensor:  # [B], 0 for identical images
        _check_images(pred, target)
        distance = pred.new_zeros(pred.shape[0])
        for f_pred, f_target, head in zip(self._activations(pred), self._activations(target), self.heads):
            diff = (_unit_channels(f_pred) - _unit_channels(f_target)).square()
            distance = distance + (diff * head).sum(dim=1).mean(dim=(1, 2))
        return distance

    def _activations(self, image: Tensor) -> list[Tensor]:  # [B, 3, H, W] in [0, 1] → five [B, C_l, H_l, W_l]
        x = ((2.0 * image - 1.0) - self.shift) / self.scale
        outputs = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                outputs.append(x)
        return outputs


def _unit_channels(x: Tensor, eps: float = 1e-10) -> Tensor:  # [B, C, H, W]
    """x / (‖x‖ over channels + eps), LPIPS's normalize_tensor."""
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


def _check_images(pred: Tensor, target: Tensor) -> None:
    if pred.ndim != 4 or pred.shape[1] != 3 or pred.shape != target.shape:
        raise ValueError(f"images must both be [B, 3, H, W]; got {tuple(pred.shape)} and {tuple(target.shape)}")
