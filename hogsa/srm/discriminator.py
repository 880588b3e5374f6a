"""StyleGAN2-type discriminator of the SRM: RGB image → one realness logit per image.

Space-to-depth by 2 (as the generator, ``hogsa.srm.styleunet``: every pixel still seen, no
full-resolution convolution), a 1×1 "from RGB" convolution, ``depth`` residual blocks that halve the resolution (3×3 convolution,
3×3 convolution, [1, 3, 3, 1] blur and stride-2 subsampling; a blurred 1×1 skip; sum / √2), the
minibatch standard-deviation feature (groups of up to 4 images), a 3×3 convolution and two linear
layers. Equalised learning rate throughout (``hogsa.srm.styleunet.EqualConv2d``). It sees the image
alone, as StyleAvatar's discriminator does for refinement (no concatenated condition).
Images are [B, 3, H, W] in [0, 1] (mapped to [-1, 1] inside); H and W divisible by 2^(depth + 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hogsa.srm.styleunet import SPACE_TO_DEPTH, EqualConv2d, EqualLinear, scaled_lrelu

_BLUR = (1.0, 3.0, 3.0, 1.0)
_MBSTD_GROUP = 4


@dataclass(frozen=True)
class DiscriminatorConfig:
    """params.yaml ``srm.discriminator``."""

    width: int  # channels after the space-to-depth (half resolution)
    depth: int  # residual blocks, each halving the resolution
    max_channels: int


def blur_downsample(x: Tensor) -> Tensor:  # [B, C, H, W] → [B, C, H/2, W/2]
    """StyleGAN2's antialiased ×½: the separable [1, 3, 3, 1] filter (normalised), stride 2."""
    taps = torch.tensor(_BLUR, dtype=x.dtype, device=x.device)
    kernel = torch.outer(taps, taps) / taps.sum() ** 2
    channels = x.shape[1]
    return F.conv2d(x, kernel.expand(channels, 1, 4, 4), stride=2, padding=1, groups=channels)


def minibatch_stddev(x: Tensor) -> Tensor:  # [B, C, H, W] → [B, C + 1, H, W]
    """Append the standard deviation over groups of images, averaged over features and pixels."""
    batch, channels, height, width = x.shape
    group = min(_MBSTD_GROUP, batch)
    if batch % group:
        group = 1
    y = x.reshape(group, batch // group, channels, height, width)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [B / group]
    return torch.cat([x, std.repeat(group)[:, None, None, None].expand(batch, 1, height, width)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = EqualConv2d(c_in, c_in, 3)
        self.conv2 = EqualConv2d(c_in, c_out, 3)
        self.skip = EqualConv2d(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:  # [B, C_in, H, W] → [B, C_out, H/2, W/2]
        out = blur_downsample(scaled_lrelu(self.conv2(scaled_lrelu(self.conv1(x)))))
        return (out + self.skip(blur_downsample(x))) / math.sqrt(2.0)


class Discriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig, image_size: int) -> None:
        super().__init__()
        levels = SPACE_TO_DEPTH * 2**cfg.depth
        if image_size % levels or cfg.depth < 1:
            raise ValueError(f"srm.discriminator: depth {cfg.depth} must be ≥ 1 and 2^(depth + 1) must divide the "
                             f"crop {image_size}")
        channels = [min(cfg.width * 2**level, cfg.max_channels) for level in range(cfg.depth + 1)]
        self.from_rgb = EqualConv2d(3 * SPACE_TO_DEPTH**2, channels[0], 1)
        self.blocks = nn.Sequential(*(ResBlock(channels[i], channels[i + 1]) for i in range(cfg.depth)))
        self.final_conv = EqualConv2d(channels[-1] + 1, channels[-1], 3)
        final = image_size // levels
        self.final_linear = EqualLinear(channels[-1] * final * final, channels[-1])
        self.logit = EqualLinear(channels[-1], 1)

    def forward(self, image: Tensor) -> Tensor:  # [B, 3, H, W] in [0, 1] → [B] logits
        x = self.blocks(scaled_lrelu(self.from_rgb(F.pixel_unshuffle(image * 2.0 - 1.0, SPACE_TO_DEPTH))))
        x = scaled_lrelu(self.final_conv(minibatch_stddev(x)))
        return self.logit(scaled_lrelu(self.final_linear(x.flatten(1))))[:, 0]
