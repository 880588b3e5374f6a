"""SRM losses (paper eq. 8, StyleAvatar's training): L = λ_1·L1 + λ_VGG·L_VGG + λ_GAN·L_GAN.

- L1: mean absolute error over pixels and channels.
- L_VGG: Σ over VGG19's relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of the L1 distance of the
  features, equal weights (StyleAvatar's ``VGGLoss``). The weights are ImageNet-trained, a licensed
  download hogsa cannot fetch: ``VGGPerceptual.from_file(path)`` reads torchvision's ``vgg19().features``
  state dict (keys ``features.{i}.weight`` / ``.bias``, i the conv layers up to 28) from a safetensors
  file. Without one the term is off and the report says so. Inputs are normalised with the ImageNet
  mean and standard deviation the weights were trained with (StyleAvatar feeds [-1, 1] images as they
  are; here the weights see what they expect).
- L_GAN: the non-saturating logistic loss, generator softplus(−D(G(x))), discriminator
  softplus(−D(real)) + softplus(D(fake)); R1 = E‖∇_x D(x)‖² on real images, applied lazily as
  (γ/2)·R1·n every n discriminator steps (StyleGAN2: γ = 10, n = 16).
Images are [B, 3, H, W] in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

PERCEPTUAL_OFF = "off (no VGG19 weights configured)"  # what a report says when L_VGG is not used

# torchvision's vgg19().features up to relu5_1: conv layer indices, and after which ReLU a feature is taken
_VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
_FEATURE_RELUS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:  # [B, 3, H, W] each → []
    return (pred - target).abs().mean()


def g_nonsaturating_loss(fake_logits: Tensor) -> Tensor:  # [B] → []
    return F.softplus(-fake_logits).mean()


def d_logistic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:  # [B], [B] → []
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def r1_penalty(discriminator: nn.Module, real: Tensor) -> Tensor:  # real [B, 3, H, W] → []
    """E_x ‖∇_x D(x)‖² over the real images (graph kept, so it can be back-propagated to D)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(real).sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(dim=1).mean()


class VGGPerceptual(nn.Module):
    """L_VGG (module docstring) over frozen VGG19 convolutions."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
                channels = item
        self.features = nn.Sequential(*layers)  # indices as torchvision's vgg19().features[:30]
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN)[None, :, None, None])
        self.register_buffer("std", torch.tensor(_IMAGENET_STD)[None, :, None, None])
        self.requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | Path) -> VGGPerceptual:
        """Weights from a safetensors file of torchvision's VGG19 ``features`` keys; raises naming what is missing."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: VGG19 weights file not found (srm.vgg_weights; see hogsa.srm.losses)")
        tensors = load_file(path)
        model = cls()
        convs = {i: layer for i, layer in enumerate(model.features) if isinstance(layer, nn.Conv2d)}
        missing = [f"features.{i}.{kind}" for i in convs for kind in ("weight", "bias")
                   if f"features.{i}.{kind}" not in tensors]
        if missing:
            raise ValueError(f"{path}: VGG19 weights lack the keys {missing}")
        with torch.no_grad():
            for i, conv in convs.items():
                for kind in ("weight", "bias"):
                    stored, own = tensors[f"features.{i}.{kind}"], getattr(conv, kind)
                    if stored.shape != own.shape:
                        raise ValueError(f"{path}: features.{i}.{kind} has shape {tuple(stored.shape)}, "
                                         f"expected {tuple(own.shape)}")
                    own.copy_(stored)
        return model

    def activations(self, image: Tensor) -> list[Tensor]:  # [B, 3, H, W] in [0, 1] → five feature maps
        x = (image - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _FEATURE_RELUS:
                outputs.append(x)
        return outputs

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:  # [B, 3, H, W] each → []
        with torch.no_grad():
            targets = self.activations(target)
        return sum((p - t).abs().mean() for p, t in zip(self.activations(pred), targets))
