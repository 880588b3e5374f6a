"""The one crop procedure: a square window around the hands and the object, resized, and its camera.

A crop's box is a square window (x0, y0, side) of an image, in pixels, that may reach outside it
(zeros there). It is found from the part masks (``box_from_mask``: the labelled pixels; a dataset
without masks gets them rendered from its annotations, ``hogsa.data.part_masks``) or from geometry
(``box_from_points``: the pixels that points [N, 3] project into, e.g. the posed meshes of a
render): the tight box of those pixels, made square about its centre, with
``margin`` × its longer side added on each side. The window is resized to ``size``² (``crop_image``,
``crop_labels``), and ``crop_camera`` is the camera that renders the crop directly: K scaled by
size / side and shifted by the window's corner.

Conventions (``hogsa.data.schema``): OpenCV cameras, pixel centres at integer + 0.5, so pixel (col,
row) covers [col, col + 1) × [row, row + 1); images [C, H, W].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hogsa.articulated import ArticulatedObject
from hogsa.data.part_masks import part_mask
from hogsa.data.schema import Camera, SequenceRecord
from hogsa.geometry import project_points
from hogsa.hand import HandModel


class CropBox(NamedTuple):
    """A square window of an image, in pixels; it may reach outside the image."""

    x0: int  # first column
    y0: int  # first row
    side: int  # width = height


class Crop(NamedTuple):
    image: Tensor  # [3, S, S] in [0, 1]
    labels: Tensor  # [S, S] uint8 part labels
    camera: Camera  # the crop's camera (S × S)


def box_from_mask(mask: np.ndarray, margin: float) -> CropBox | None:  # mask [H, W] part labels
    """The box around the labelled (nonzero) pixels; None for an empty mask."""
    rows, cols = np.nonzero(mask)
    return _square_box(rows, cols, margin)


def box_from_points(
    points: Tensor | np.ndarray,  # [N, 3] world, metres
    camera: Camera,
    margin: float,
) -> CropBox | None:
    """The box around the image pixels that ``points`` in front of ``camera`` project into; None when
    none does."""
    uv, z = project_points(torch.as_tensor(points, dtype=torch.float64), torch.as_tensor(camera.K),
                           torch.as_tensor(camera.world2cam))
    cols, rows = uv[:, 0].floor().numpy(), uv[:, 1].floor().numpy()
    inside = (z.numpy() > 0) & (cols >= 0) & (cols < camera.width) & (rows >= 0) & (rows < camera.height)
    return _square_box(rows[inside].astype(np.int64), cols[inside].astype(np.int64), margin)


def _square_box(rows: np.ndarray, cols: np.ndarray, margin: float) -> CropBox | None:  # [M] int pixel indices
    """The square box of ``rows`` × ``cols`` (module docstring); None when there are none."""
    if rows.size == 0:
        return None
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    side = int(np.ceil(max(height, width) * (1.0 + 2.0 * margin)))
    y0 = round(float(rows.min() + rows.max() + 1 - side) / 2)
    x0 = round(float(cols.min() + cols.max() + 1 - side) / 2)
    return CropBox(x0, y0, side)


def crop_image(image: Tensor, box: CropBox, size: int) -> Tensor:  # [C, H, W] in [0, 1] → [C, S, S]
    """The window resized to ``size``² (antialiased bilinear), clamped to [0, 1]."""
    window = _window(image, box)[None]
    return F.interpolate(window, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def crop_labels(labels: Tensor, box: CropBox, size: int) -> Tensor:  # [H, W] uint8 → [S, S] uint8
    """The window of a label image resized to ``size``² (nearest, pixel centres aligned)."""
    window = _window(labels[None].float(), box)[None]
    return F.interpolate(window, size=(size, size), mode="nearest-exact")[0, 0].to(torch.uint8)


def crop_camera(camera: Camera, box: CropBox, size: int) -> Camera:
    """The camera whose ``size``² image is ``box`` of ``camera``'s image, resized."""
    scale = size / box.side
    K = camera.K.copy()
    K[0, 0], K[1, 1] = K[0, 0] * scale, K[1, 1] * scale
    K[0, 2], K[1, 2] = (K[0, 2] - box.x0) * scale, (K[1, 2] - box.y0) * scale
    return Camera(K=K, world2cam=camera.world2cam, width=size, height=size)


def crop_view(
    image: Tensor,  # [3, H, W] in [0, 1]
    labels: Tensor,  # [H, W] uint8 part labels
    camera: Camera,  # the image's camera
    box: CropBox,
    size: int,
) -> Crop:
    """The ``size``² crop of a labelled view, black where the labels are 0, and its camera."""
    masked = image * (labels > 0)
    return Crop(crop_image(masked, box, size), crop_labels(labels, box, size), crop_camera(camera, box, size))


def crop_frame(seq: SequenceRecord, view: int, frame: int, size: int, margin: float, hands: Mapping[str, HandModel],
               obj: ArticulatedObject) -> Crop | None:
    """The ``size``² crop of one view of one frame around its parts' mask; None when no part is in view.

    The mask is the dataset's, or, for a dataset without masks (H2O), rendered from the annotated
    ``hands`` ({"right", "left"}: HandModel) and ``obj`` (``seq``'s object) by ``hogsa.data.part_masks``.
    """
    mask = part_mask(seq, view, frame, hands, obj)
    box = box_from_mask(mask, margin)
    if box is None:
        return None
    image = torch.tensor(seq.image(view, frame)).permute(2, 0, 1).float() / 255.0  # [3, H, W]
    return crop_view(image, torch.tensor(mask), seq.camera(view, frame), box, size)


def _window(image: Tensor, box: CropBox) -> Tensor:  # [C, H, W] → [C, side, side]
    """Pixels [y0, y0 + side) × [x0, x0 + side), zero outside the image."""
    x0, y0, side = box
    _, height, width = image.shape
    padded = F.pad(image, (max(-x0, 0), max(x0 + side - width, 0), max(-y0, 0), max(y0 + side - height, 0)))
    return padded[:, max(y0, 0): max(y0, 0) + side, max(x0, 0): max(x0, 0) + side]
