"""StyleUNet (after StyleAvatar, Wang et al. 2023): the SRM's generator, coarse render → refined RGB.

The image first goes to half resolution by space-to-depth (each 2×2 block of pixels becomes 4×
channels; StyleAvatar's Haar wavelet transform is an orthogonal mix of the same 4 pixels, which the
first 1×1 convolution can learn), and the output comes back by depth-to-space: no detail is lost and
the full-resolution convolutions, the costly ones on a CPU, are avoided. Then a U-Net: a
convolutional encoder halves the resolution ``depth`` more times (channels ``width``·2^i, at most
``max_channels``); a StyleGAN2-type decoder climbs back with style-modulated 3×3 convolutions, taking the
encoder's features at every resolution (skip connections) and summing modulated 1×1 "to RGB" outputs
across resolutions (StyleGAN2's skip generator). The style vector ``w`` comes from a small mapping MLP.

Choices that differ from StyleAvatar's code (deliberate):
- StyleAvatar maps a random latent z ~ N(0, I) to ``w``; here the mapping's input is the encoder's
  bottleneck, pooled over the image, so the refinement is deterministic (one render, one output) and
  the style can carry the image's global colour and lighting.
- No noise inputs (same reason), no Haar wavelet input/output (a plain 1×1 input convolution).
- The network predicts a residual over the input RGB, and its "to RGB" layers start at zero, so an
  untrained SRM is the identity: training starts from the render, not from grey.

Images are float [B, C, H, W]; the input is the render's RGB in [0, 1] and its alpha in [0, 1] (the
edge of the rendered silhouette is where renders differ most from photographs); the output is RGB,
unclamped (clamp to [0, 1] for display and metrics). H and W must be divisible by 2^(depth + 1).
Convolutions use StyleGAN2's equalised learning rate: weights are stored N(0, 1) and scaled by
1/√fan_in where used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

INPUT_CHANNELS = 4  # RGB + alpha of the render
SPACE_TO_DEPTH = 2  # pixels per side folded into channels at the input (and unfolded at the output)
_LRELU_SLOPE = 0.2
_LRELU_GAIN = math.sqrt(2.0)  # StyleGAN2 keeps activations' magnitude through leaky ReLUs


@dataclass(frozen=True)
class StyleUNetConfig:
    """params.yaml ``srm.generator``: small on a CPU; StyleAvatar's size is width 64 at 1024², max 512."""

    width: int  # channels after the space-to-depth (half resolution)
    depth: int  # halvings of the resolution after the space-to-depth (encoder), doublings (decoder)
    max_channels: int  # channel cap at the coarse levels
    style_dim: int  # length of the style vector w (StyleAvatar: 64)
    mapping_layers: int  # linear layers of the mapping MLP (StyleAvatar: 4)


def modulated_conv2d(
    x: Tensor,  # [B, C_in, H, W]
    weight: Tensor,  # [C_out, C_in, k, k] effective weight (already scaled)
    style: Tensor,  # [B, C_in] per-sample scale of each input channel
    demodulate: bool,
) -> Tensor:  # [B, C_out, H, W] ('same' padding)
    """StyleGAN2's modulated convolution: per sample, w'_oi = w_oi · s_i, then with ``demodulate``
    w''_oi = w'_oi / √(Σ_i,k w'²_oik + 1e-8) (unit expected output variance). Computed, as StyleGAN2-ADA's
    non-fused path, by scaling the input channels by s, one shared convolution and, when demodulating,
    scaling each sample's output channels by the demodulation factor (the same result, and on a CPU
    faster than one grouped convolution of per-sample weights)."""
    out = F.conv2d(x * style[:, :, None, None], weight, padding=weight.shape[-1] // 2)
    if demodulate:
        factor = torch.rsqrt(torch.einsum("oikl,bi->bo", weight.square(), style.square()) + 1e-8)  # [B, C_out]
        out = out * factor[:, :, None, None]
    return out


def scaled_lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, _LRELU_SLOPE) * _LRELU_GAIN


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate (StyleGAN2), 'same' padding, optional stride."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = 1.0 / math.sqrt(c_in * kernel * kernel)
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:  # [B, C_in, H, W] → [B, C_out, H / stride, W / stride]
        k = self.weight.shape[-1]
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=k // 2)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate; ``bias_init`` 1 makes a style start at 1."""

    def __init__(self, d_in: int, d_out: int, bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in))
        self.bias = nn.Parameter(torch.full((d_out,), float(bias_init)))
        self.scale = 1.0 / math.sqrt(d_in)

    def forward(self, x: Tensor) -> Tensor:  # [B, d_in] → [B, d_out]
        return F.linear(x, self.weight * self.scale, self.bias)


class ModulatedConv2d(nn.Module):
    """``modulated_conv2d`` whose style is an affine map of ``w`` (initialised to 1), plus a bias."""

    def __init__(self, c_in: int, c_out: int, kernel: int, style_dim: int, demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = 1.0 / math.sqrt(c_in * kernel * kernel)
        self.affine = EqualLinear(style_dim, c_in, bias_init=1.0)
        self.demodulate = demodulate

    def forward(self, x: Tensor, w: Tensor) -> Tensor:  # x [B, C_in, H, W], w [B, style_dim] → [B, C_out, H, W]
        out = modulated_conv2d(x, self.weight * self.scale, self.affine(w), self.demodulate)
        return out + self.bias[None, :, None, None]


class EncoderBlock(nn.Module):
    """Two 3×3 convolutions, the second with stride 2: [B, C_in, H, W] → [B, C_out, H/2, W/2]."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = EqualConv2d(c_in, c_in, 3)
        self.down = EqualConv2d(c_in, c_out, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return scaled_lrelu(self.down(scaled_lrelu(self.conv(x))))


class DecoderBlock(nn.Module):
    """×2 bilinear upsampling, concatenation of the encoder's skip features, two modulated 3×3
    convolutions, and a modulated 1×1 "to RGB" (no demodulation) that starts at zero."""

    def __init__(self, c_in: int, c_skip: int, c_out: int, style_dim: int, c_rgb: int) -> None:
        super().__init__()
        self.conv1 = ModulatedConv2d(c_in + c_skip, c_out, 3, style_dim)
        self.conv2 = ModulatedConv2d(c_out, c_out, 3, style_dim)
        self.to_rgb = ModulatedConv2d(c_out, c_rgb, 1, style_dim, demodulate=False)
        nn.init.zeros_(self.to_rgb.weight)

    def forward(self, x: Tensor, skip: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, C_in, h, w], skip [B, C_skip, 2h, 2w] → features [B, C_out, 2h, 2w], RGB [B, c_rgb, 2h, 2w]
        (RGB folded by space-to-depth)."""
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = scaled_lrelu(self.conv1(torch.cat([x, skip], dim=1), w))
        x = scaled_lrelu(self.conv2(x, w))
        return x, self.to_rgb(x, w)


class StyleUNet(nn.Module):
    """Coarse render (RGB + alpha) → refined RGB at the same resolution (module docstring)."""

    def __init__(self, cfg: StyleUNetConfig) -> None:
        super().__init__()
        if cfg.depth < 1 or cfg.width < 1 or cfg.mapping_layers < 1:
            raise ValueError(f"srm.generator: depth, width and mapping_layers must be ≥ 1, got {cfg}")
        self.cfg = cfg
        channels = [min(cfg.width * 2**level, cfg.max_channels) for level in range(cfg.depth + 1)]
        folded = SPACE_TO_DEPTH**2
        self.from_input = EqualConv2d(INPUT_CHANNELS * folded, channels[0], 1)
        self.encoder = nn.ModuleList(EncoderBlock(channels[i], channels[i + 1]) for i in range(cfg.depth))
        self.bottleneck = EqualConv2d(channels[-1], channels[-1], 3)
        mapping: list[nn.Module] = [EqualLinear(channels[-1], cfg.style_dim)]
        for _ in range(cfg.mapping_layers - 1):
            mapping += [nn.LeakyReLU(_LRELU_SLOPE), EqualLinear(cfg.style_dim, cfg.style_dim)]
        self.mapping = nn.Sequential(*mapping)
        self.decoder = nn.ModuleList(
            DecoderBlock(channels[i + 1], channels[i], channels[i], cfg.style_dim, 3 * folded)
            for i in reversed(range(cfg.depth))
        )

    def style(self, bottleneck: Tensor) -> Tensor:  # [B, C, h, w] → [B, style_dim]
        """w: the mapping MLP of the pixel-normalised, spatially pooled bottleneck features."""
        pooled = bottleneck.mean(dim=(2, 3))
        return self.mapping(pooled * torch.rsqrt(pooled.square().mean(dim=1, keepdim=True) + 1e-8))

    def forward(
        self,
        rgb: Tensor,  # [B, 3, H, W] render in [0, 1]
        alpha: Tensor,  # [B, 1, H, W] render opacity in [0, 1]
    ) -> Tensor:  # [B, 3, H, W] refined RGB (unclamped)
        size = SPACE_TO_DEPTH * 2**self.cfg.depth
        if rgb.shape[-1] % size or rgb.shape[-2] % size:
            raise ValueError(f"StyleUNet of depth {self.cfg.depth}: image sides must be multiples of {size}, "
                             f"got {tuple(rgb.shape[-2:])}")
        folded = F.pixel_unshuffle(torch.cat([rgb, alpha], dim=1) * 2.0 - 1.0, SPACE_TO_DEPTH)
        x = scaled_lrelu(self.from_input(folded))
        skips = []
        for block in self.encoder:
            skips.append(x)
            x = block(x)
        x = scaled_lrelu(self.bottleneck(x))
        w = self.style(x)
        residual = None
        for block, skip in zip(self.decoder, reversed(skips)):
            x, out = block(x, skip, w)
            if residual is not None:
                out = out + F.interpolate(residual, scale_factor=2.0, mode="bilinear", align_corners=False)
            residual = out
        return rgb + F.pixel_shuffle(residual, SPACE_TO_DEPTH)
