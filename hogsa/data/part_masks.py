"""Part masks from the annotated geometry, for datasets that ship none (H2O).

A frame's mask in one view is the ``hogsa.data.meshrender`` ray-traced render of the annotated meshes,
the same renderer the embedded dataset's masks come from: each pixel takes the label
(``schema.MASK_LABELS``: 0 background, 1 right hand, 2 left hand, 3 object) of the surface its centre
ray meets first, so the nearest surface wins. A hand not annotated at the frame (``hand_valid``
False) is left out. The embedded dataset renders its images and masks from the clean poses and
annotates jittered ones, so there the two masks differ by the annotation noise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from hogsa.articulated import ArticulatedObject
from hogsa.data.meshrender import Light, MeshLayer, render
from hogsa.data.schema import MASK_LABELS, SIDES, SequenceRecord
from hogsa.hand import HandModel, hand_vertices

FLAT_LIGHT = Light(ambient=1.0, diffuse=0.0, direction=np.array([0.0, 0.0, 1.0]))  # masks need no shading


def annotated_layers(seq: SequenceRecord, frame: int, hands: Mapping[str, HandModel], obj: ArticulatedObject
                     ) -> list[MeshLayer]:
    """The annotated hands (valid ones) and object of ``frame`` as render layers labelled by part."""
    layers = []
    for side in SIDES:
        if seq.hand_valid[side][frame]:
            vertices = hand_vertices(hands[side], seq.hands[side].take(frame))[0]  # [V, 3] world, metres
            layers.append(MeshLayer(vertices, hands[side].faces.numpy(), MASK_LABELS[side],
                                    vertex_colors=np.zeros_like(vertices)))
    with torch.no_grad():
        vertices = obj.pose(*seq.object_pose.take(frame).torch())[0].double().numpy()
    layers.append(MeshLayer(vertices, obj.faces.numpy(), MASK_LABELS["object"], vertex_colors=np.zeros_like(vertices)))
    return layers


def render_part_mask(seq: SequenceRecord, view: int, frame: int, hands: Mapping[str, HandModel],
                     obj: ArticulatedObject) -> np.ndarray:
    """uint8 [H, W] part mask of ``view`` at ``frame`` rendered from the annotations (module docstring);
    ``obj`` is ``seq``'s object, ``hands`` {"right", "left"}: HandModel."""
    camera = seq.camera(view, frame)
    return render(annotated_layers(seq, frame, hands, obj), camera.K, camera.world2cam, camera.width,
                  camera.height, FLAT_LIGHT).mask


def part_mask(seq: SequenceRecord, view: int, frame: int, hands: Mapping[str, HandModel],
              obj: ArticulatedObject) -> np.ndarray:
    """uint8 [H, W] part mask of ``view`` at ``frame``: the dataset's, else ``render_part_mask``'s."""
    mask = seq.mask(view, frame)
    return render_part_mask(seq, view, frame, hands, obj) if mask is None else mask
