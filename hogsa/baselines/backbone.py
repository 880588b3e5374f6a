"""Image backbones of the baselines: ResNets in plain ``torch.nn`` (no torchvision).

``resnet(name, width)`` builds ``"small"`` (a CPU-sized ResNet of basic blocks, [1, 1, 1, 1] per stage,
``width`` channels in the first stage) or ``"resnet50"`` (He et al.'s bottleneck ResNet-50, the
baselines' paper-scale backbone, 2048 features; its state-dict names are torchvision's, so an
ImageNet checkpoint converted to safetensors loads with ``load_backbone_weights``). ``forward(images
[B,3,H,W] in [0,1])`` → features [B, out_features] after global average pooling; images are
normalised with ImageNet's mean and deviation inside.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class ResNet(nn.Module):
    """A ResNet trunk (stem, four stages, global average pooling) without the classifier."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, int, int, int], width: int):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = width
        for k, blocks in enumerate(layers):
            stage_width = width * 2**k
            stage = []
            for b in range(blocks):
                stage.append(block(channels, stage_width, 2 if (b == 0 and k > 0) else 1))
                channels = stage_width * block.expansion
            setattr(self, f"layer{k + 1}", nn.Sequential(*stage))
        self.out_features = channels

    def forward(self, images: Tensor) -> Tensor:  # [B,3,H,W] in [0,1] -> [B, out_features]
        x = (images - self.mean) / self.std
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


def resnet(name: str, width: int = 64) -> ResNet:
    """``"small"``: basic blocks [1,1,1,1], ``width`` first-stage channels (8·width features);
    ``"resnet50"``: bottleneck blocks [3,4,6,3] at width 64 (2048 features)."""
    if name == "small":
        return ResNet(BasicBlock, (1, 1, 1, 1), width)
    if name == "resnet50":
        return ResNet(Bottleneck, (3, 4, 6, 3), 64)
    raise ValueError(f"backbone must be 'small' or 'resnet50', got {name!r}")


def load_backbone_weights(backbone: ResNet, path: str | Path) -> None:
    """Load a safetensors state dict (torchvision's names; the classifier ``fc.*`` is ignored) into
    ``backbone``; raises naming the file and the missing or mis-shaped tensors."""
    state = {k: v for k, v in load_file(str(path)).items() if not k.startswith("fc.")}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        raise ValueError(f"{path}: not a matching backbone: missing {missing[:5]}, unexpected {unexpected[:5]}, "
                         f"shape differs {shapes[:5]}")
    backbone.load_state_dict(state)
