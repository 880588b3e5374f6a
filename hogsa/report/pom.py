"""POM report figures: mesh renders of grasps before and after optimisation, the t-SNE of grasp
descriptors (paper Fig. 7) and the optimisation's loss curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from hogsa.articulated import ArticulatedObject
from hogsa.data.meshrender import Light, MeshLayer, render
from hogsa.data.rig import intrinsics, look_at
from hogsa.data.schema import SIDES
from hogsa.articulated import ArticulatedObject
from hogsa.hand import HandModel, hand_vertices
from hogsa.pom.grasps import Grasps

HAND_RGB = {"right": (0.86, 0.62, 0.50), "left": (0.62, 0.72, 0.90)}
GROUP_COLORS = {"train": "#1f77b4", "generated": "#ff7f0e", "test": "#7f7f7f"}


def grasp_layers(grasps: Grasps, index: int, hands: dict[str, HandModel], obj: ArticulatedObject) -> list[MeshLayer]:
    """Mesh layers of sample ``index``: both hands (flat skin colours, right warm, left cool) and the
    textured object."""
    layers = []
    for part, side in enumerate(SIDES, start=1):
        verts = hand_vertices(hands[side], grasps.hands[side].take(index))[0]
        colors = np.tile(HAND_RGB[side], (len(verts), 1))
        layers.append(MeshLayer(verts, hands[side].faces.numpy(), part, vertex_colors=colors))
    with torch.no_grad():
        obj_verts = obj.pose(*grasps.object_pose.take(index).torch(torch.float64))[0].numpy()
    layers.append(MeshLayer(obj_verts, obj.faces.numpy(), 3, face_uvs=obj.face_uvs.numpy(), texture=obj.texture.numpy()))
    return layers


def view_of(layers: list[MeshLayer], azimuth_deg: float, elevation_deg: float, size: int,
            fov_deg: float = 40.0) -> np.ndarray:
    """[size,size,3] float render of the layers by a camera looking at their centre from a
    direction (world z up), far enough back to frame every vertex."""
    points = np.concatenate([layer.vertices for layer in layers])
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    radius = np.linalg.norm(points - centre, axis=1).max()
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    direction = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    distance = 1.1 * radius / np.sin(np.radians(fov_deg) / 2)
    light = Light(ambient=0.35, diffuse=0.75, direction=np.array([0.3, -0.4, 1.0]))
    out = render(layers, intrinsics(size, size, fov_deg), look_at(centre + distance * direction, centre), size, size,
                 light, background=(1.0, 1.0, 1.0), supersample=2)
    return out.rgb


def before_after_figure(before: Grasps, after: Grasps, samples: list[int], hands: dict[str, HandModel],
                        objects: dict[str, ArticulatedObject], records: dict[str, dict[str, np.ndarray]],
                        size: int, dpi: int) -> Figure:
    """Per sample a row: the initial (perturbed) grasp and the optimised one, each from two sides,
    titled with the deepest penetration and the gaps of both hands (exact measures, mm)."""
    fig, axes = plt.subplots(len(samples), 4, figsize=(10, 2.6 * len(samples)), dpi=dpi, squeeze=False)
    for row, k in enumerate(samples):
        for col, (label, grasps) in enumerate((("before", before), ("after", after))):
            layers = grasp_layers(grasps, k, hands, objects[str(grasps.object_name[k])])
            record = records[label]
            depth = max(record[f"{s}_depth_mm"][k] for s in SIDES)
            gaps = ", ".join(f"{s[0].upper()} {record[f'{s}_gap_mm'][k]:+.1f}" for s in SIDES)
            for view, azimuth in enumerate((30.0, 210.0)):
                ax = axes[row, 2 * col + view]
                ax.imshow(view_of(layers, azimuth, 35.0, size))
                ax.set_axis_off()
                if view == 0:
                    ax.set_title(f"{label}: {grasps.source[k]}\ndepth {depth:.1f} mm, gap {gaps}", fontsize=7, loc="left")
    fig.suptitle("grasps before and after optimisation (right hand warm, left cool; two views each)", fontsize=9)
    fig.tight_layout()
    return fig


def tsne_figure(embedding: np.ndarray, labels: np.ndarray, dpi: int) -> Figure:
    """Scatter of a [S,2] t-SNE embedding coloured by ``labels`` (train, generated, test)."""
    fig, ax = plt.subplots(figsize=(5, 4.4), dpi=dpi)
    for name, color in GROUP_COLORS.items():
        chosen = labels == name
        if chosen.any():
            ax.scatter(embedding[chosen, 0], embedding[chosen, 1], s=10, color=color, alpha=0.75,
                       label=f"{name} ({int(chosen.sum())})")
    ax.legend(fontsize=8)
    ax.set_title("t-SNE of both hands' joints in the object frame", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def loss_figure(curves: dict[str, np.ndarray], dpi: int) -> Figure:
    """Mean per-sample loss terms over the optimisation steps (log scale)."""
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=dpi)
    for name, curve in curves.items():
        if np.any(curve > 0):
            ax.plot(curve, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("mean loss per sample")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
