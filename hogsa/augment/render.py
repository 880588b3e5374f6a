"""Augmented images: a batch of (pose, crop camera) rendered, refined, composited over backgrounds.

Gaussian renders (HOGS or 3DGS) are made at the crop size the models and the SRM were trained at
(``hogs.crop``) in one rasterizer call for the batch. Each Gaussian carries its colour (as the hogs
stage renders it) and its part's one-hot code, so one pass gives the colour over black (premultiplied
by the coverage), the alpha and each part's coverage. The SRM refines (colour, alpha) in one call.
Colour, alpha and part coverage are then resized to the written size (bilinear) and the image is
composited as premultiplied colour over the background, ``rgb + (1 − α)·background``: the render's
edge pixels already hold α·colour, so no dark fringe comes from multiplying by α twice. A pixel's
label (``MASK_LABELS``) is the part of largest coverage where α > 0.5, else background.

The oracle ray-traces the same poses at twice the written size with the embedded dataset's renderer
(``hogsa.data.synth.SequenceRenderer``: the subject's skin, the object's texture, the dataset's light
and shadows; no table) over black, and averages 2×2 blocks: colour over black, alpha and part
coverage from the hit rays, composited and labelled as above.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hogsa.data.meshrender import View, render_view, Scene
from hogsa.data.schema import Camera, SIDES
from hogsa.data.synth import SequenceRenderer
from hogsa.hogs.model import GaussianScene, merge_parts, shaded_colors
from hogsa.pom.grasps import Grasps
from hogsa.render import rasterize
from hogsa.render.sh import sh_colors
from hogsa.srm.styleunet import StyleUNet

PART_COUNT = 3  # right, left, object: labels 1, 2, 3
ORACLE_SUPERSAMPLE = 2


class Layers(NamedTuple):
    """B renders: colour over black (premultiplied), alpha and per-part coverage, all [0, 1]."""

    rgb: Tensor  # [B, 3, S, S]
    alpha: Tensor  # [B, 1, S, S]
    parts: Tensor  # [B, 3, S, S] coverage of right, left, object

    def resized(self, size: int) -> Layers:
        """The layers at ``size``² (bilinear; colour and coverage stay premultiplied)."""
        if self.rgb.shape[-1] == size:
            return self
        resize = lambda x: F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                         antialias=x.shape[-1] > size)
        return Layers(resize(self.rgb), resize(self.alpha), resize(self.parts))

    def refined(self, generator: StyleUNet) -> Layers:
        """The SRM's refinement of the colour (clamped to [0, 1]); alpha and coverage kept."""
        with torch.no_grad():
            return Layers(generator(self.rgb, self.alpha).clamp(0, 1), self.alpha, self.parts)


def grasp_rows(grasps: Grasps, device: torch.device | str = "cpu") -> tuple:
    """(right, left, object) pose records of every row as float32 tensors: what a model is posed with."""
    return (*(grasps.hands[s].torch(device=device) for s in SIDES), grasps.object_pose.torch(device=device))


@torch.no_grad()
def gaussian_layers(model: GaussianScene, grasps: Grasps, cameras: list[Camera]) -> Layers:
    """``model``'s render of row b of ``grasps`` from ``cameras[b]`` (all of one size), in one call."""
    device = next(model.parameters()).device
    frames = model.posed_frames(*grasp_rows(grasps, device))
    counts = [g.means.shape[-2] for g in frames.values()]
    merged = merge_parts(frames)
    dtype = merged.means.dtype
    viewmats = torch.stack([torch.as_tensor(c.world2cam, dtype=dtype, device=device) for c in cameras])[:, None]
    Ks = torch.stack([torch.as_tensor(c.K, dtype=dtype, device=device) for c in cameras])[:, None]
    centres = torch.linalg.inv(viewmats[:, 0])[:, None, :3, 3]  # [B, 1, 3]
    if model.lighting is None:
        colors = sh_colors(model.sh_degree, merged.means - centres, merged.sh)
    else:
        colors = shaded_colors(merged, centres, model.sh_degree, model.lighting)
    part_of = torch.repeat_interleave(torch.arange(PART_COUNT, device=device), torch.tensor(counts, device=device))
    codes = F.one_hot(part_of, PART_COUNT).to(dtype).expand(len(cameras), -1, -1)
    features = torch.cat([colors, codes], dim=-1)
    size = cameras[0].width
    out, alphas, _ = rasterize(merged.means, merged.quats, merged.scales, merged.opacities, features, viewmats, Ks,
                               size, size, backgrounds=torch.zeros(len(cameras), 1, 3 + PART_COUNT, dtype=dtype,
                                                                   device=device))
    out = out[:, 0].permute(0, 3, 1, 2)  # [B, 6, S, S]
    return Layers(out[:, :3].clamp(0, 1), alphas[:, 0].permute(0, 3, 1, 2).clamp(0, 1), out[:, 3:].clamp(0, 1))


def oracle_layers(renderer: SequenceRenderer, grasps: Grasps, cameras: list[Camera], seeds: list[int]) -> Layers:
    """The embedded dataset's ray-traced render of row b of ``grasps`` from ``cameras[b]`` (module doc),
    its soft shadows' rays drawn with ``seeds[b]``; ``cameras`` at ``ORACLE_SUPERSAMPLE`` × the size wanted."""
    rgb, alpha, parts = [], [], []
    for b, camera in enumerate(cameras):
        layers = renderer.layers(grasps.take(np.array([b])), 0)[1:]  # no table
        out = render_view(Scene(layers), View(camera.K, camera.world2cam, camera.width, camera.height, 1),
                          renderer.light, background=(0.0, 0.0, 0.0), seed=seeds[b])
        rgb.append(torch.from_numpy(out.rgb).permute(2, 0, 1))
        hits = torch.from_numpy(out.mask.astype(np.int64))
        coverage = F.one_hot(hits, PART_COUNT + 1).permute(2, 0, 1).float()
        parts.append(coverage[1:])
        alpha.append(coverage[1:].sum(0, keepdim=True))
    pool = lambda x: F.avg_pool2d(torch.stack(x), ORACLE_SUPERSAMPLE)
    return Layers(pool(rgb), pool(alpha), pool(parts))


def labels(layers: Layers) -> Tensor:  # [B, S, S] uint8
    """Per pixel the part of largest coverage (1 right, 2 left, 3 object) where alpha > 0.5, else 0."""
    part = layers.parts.argmax(dim=1) + 1
    return torch.where(layers.alpha[:, 0] > 0.5, part, 0).to(torch.uint8)


def composite(layers: Layers, backgrounds: Tensor) -> Tensor:  # [B, 3, S, S] float in [0, 1]
    """Premultiplied colour over ``backgrounds`` [B, 3, S, S]: rgb + (1 − α)·background."""
    return (layers.rgb + (1.0 - layers.alpha) * backgrounds).clamp(0, 1)


def to_uint8(images: Tensor) -> np.ndarray:  # [B, 3, S, S] in [0, 1] → [B, S, S, 3] uint8
    return (images.permute(0, 2, 3, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
