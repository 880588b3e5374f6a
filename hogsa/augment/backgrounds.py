"""Backgrounds of augmented images (paper §3.1: the renders are composited on COCO2017 train images).

A ``BackgroundBank`` is a list of source images and ``sample(key, size)``, a ``size``² background drawn
for one sample from a generator of its key alone (``hogsa.seeding``), so that a sample's background
does not depend on which process or machine made it, nor on the samples made before it:

1. a source image, uniformly;
2. a square window of side U[``min_fraction``, 1] × the image's shorter side at a uniform position,
   resized to ``size``² (antialiased when it shrinks);
3. a horizontal flip with probability ½;
4. colour jitter (torchvision's ColorJitter factors, applied with kornia in its order): brightness,
   contrast and saturation factors U[1 − j, 1 + j], a hue shift U[−h, h] (fractions of a turn).

Sources: every image of a folder (``augment.backgrounds``, e.g. COCO2017 train; sorted by path,
JPEG or PNG), or, when none is given, the built-in set: the 21 photographs and textures that ship
inside scikit-image (``BUILTIN_IMAGES``, offline; grey ones tinted by a colour of their own) and
``PROCEDURAL_TEXTURES`` seeded procedural textures (value-noise clouds, stripes, checkers, plaid,
gradients), 53 distinct images. Built-in sources are 512² at most; a folder's are read when drawn.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import kornia.enhance as enhance
import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image

from hogsa.seeding import generator

BUILTIN_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                  "cell", "colorwheel", "logo", "stereo_motorcycle", "camera", "brick", "grass", "gravel", "moon",
                  "coins", "horse", "clock", "page", "text")
PROCEDURAL_TEXTURES = 32
PROCEDURAL_KINDS = ("clouds", "stripes", "checkers", "plaid")
TEXTURE_SIZE = 512
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class JitterConfig:
    """params.yaml ``augment.background_jitter`` (torchvision ColorJitter's arguments)."""

    brightness: float
    contrast: float
    saturation: float
    hue: float  # fraction of a turn, at most 0.5
    min_fraction: float  # smallest window side, fraction of the image's shorter side


def builtin_image(name: str) -> np.ndarray:
    """[H, W, 3] uint8 of scikit-image's sample ``name`` (RGB; grey ones tinted, alpha dropped)."""
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        tint = generator(0, "background-tint", name).uniform(0.55, 1.0, 3)
        image = (image[..., None] * tint).astype(np.uint8)
    return np.ascontiguousarray(image[..., :3])


def procedural_texture(index: int, size: int = TEXTURE_SIZE) -> np.ndarray:
    """[size, size, 3] uint8 texture ``index``: its kind cycles through ``PROCEDURAL_KINDS``, its
    colours, scales and angles come from a generator of the index."""
    rng = generator(0, "background-texture", index)
    kind = PROCEDURAL_KINDS[index % len(PROCEDURAL_KINDS)]
    rows, cols = np.mgrid[0:size, 0:size] / size
    a, b = rng.uniform(0.05, 0.95, (2, 3))
    angle = rng.uniform(0, np.pi)
    along = cols * np.cos(angle) + rows * np.sin(angle)
    across = -cols * np.sin(angle) + rows * np.cos(angle)
    if kind == "clouds":  # fractal value noise: octaves of bilinearly upsampled random grids
        t = np.zeros((size, size))
        for octave in range(5):
            cells = 4 * 2 ** octave
            grid = torch.tensor(rng.random((1, 1, cells + 1, cells + 1)))
            up = F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=True)[0, 0].numpy()
            t += up / 2 ** octave
        t = (t - t.min()) / (t.max() - t.min())
    elif kind == "stripes":
        t = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(4, 24) * along)
    elif kind == "checkers":
        n = rng.uniform(3, 16)
        t = ((np.floor(along * n) + np.floor(across * n)) % 2).astype(float)
    else:  # plaid: two stripe sets and a gradient
        t = (0.35 * (np.sin(2 * np.pi * rng.uniform(3, 12) * along) > 0)
             + 0.35 * (np.sin(2 * np.pi * rng.uniform(3, 12) * across) > 0) + 0.3 * along / along.max())
    image = a + (b - a) * t[..., None]
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


class BackgroundBank:
    """Source images and per-sample backgrounds drawn from them (module doc)."""

    def __init__(self, folder: str | Path | None, jitter: JitterConfig) -> None:
        self.jitter = jitter
        if folder is None:
            self.names = [f"skimage:{n}" for n in BUILTIN_IMAGES] + [f"texture:{k}" for k in range(PROCEDURAL_TEXTURES)]
            self.folder = None
        else:
            self.folder = Path(folder)
            if not self.folder.is_dir():
                raise FileNotFoundError(f"params.yaml: augment.backgrounds = {str(folder)!r} is not a folder of images")
            files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ValueError(f"{self.folder}: augment.backgrounds holds no {'/'.join(IMAGE_SUFFIXES)} image")
            self.names = [str(p.relative_to(self.folder)) for p in files]

    def __len__(self) -> int:
        return len(self.names)

    def source(self, index: int) -> np.ndarray:
        """[H, W, 3] uint8 source image ``index``."""
        return _source(self.folder, self.names[index])

    def sample(self, size: int, seed: int, *key: str | int) -> tuple[torch.Tensor, str]:
        """([3, size, size] float32 in [0, 1], the source's name): the background of sample ``key``."""
        rng = generator(seed, "background", *key)
        index = int(rng.integers(len(self.names)))
        image = self.source(index)
        height, width = image.shape[:2]
        side = max(1, int(round(rng.uniform(self.jitter.min_fraction, 1.0) * min(height, width))))
        y0, x0 = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
        window = torch.tensor(image[y0:y0 + side, x0:x0 + side]).permute(2, 0, 1)[None].float() / 255.0
        out = F.interpolate(window, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)
        if rng.random() < 0.5:
            out = out.flip(-1)
        j = self.jitter
        brightness, contrast, saturation = (rng.uniform(1 - v, 1 + v) for v in (j.brightness, j.contrast, j.saturation))
        hue = rng.uniform(-j.hue, j.hue)
        out = enhance.adjust_brightness(out.clamp(0, 1), brightness - 1.0)
        out = enhance.adjust_contrast(out, contrast)
        out = enhance.adjust_saturation(out, saturation)
        out = enhance.adjust_hue(out, hue * 2 * np.pi)
        return out[0].clamp(0, 1).contiguous(), self.names[index]


@functools.lru_cache(maxsize=64)
def _source(folder: Path | None, name: str) -> np.ndarray:
    if folder is not None:
        with Image.open(folder / name) as image:
            return np.asarray(image.convert("RGB"))
    kind, _, which = name.partition(":")
    image = builtin_image(which) if kind == "skimage" else procedural_texture(int(which))
    if max(image.shape[:2]) > TEXTURE_SIZE:  # built-in sources are kept small: 512² at most
        scale = TEXTURE_SIZE / max(image.shape[:2])
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        size = (int(round(image.shape[0] * scale)), int(round(image.shape[1] * scale)))
        image = F.interpolate(tensor, size=size, mode="bilinear", antialias=True)[0].permute(1, 2, 0)
        image = image.clamp(0, 255).round().to(torch.uint8).numpy()
    return image
