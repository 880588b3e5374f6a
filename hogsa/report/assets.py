"""The assets stage: a figure of both hands (rest, fist, pinch) and every open object, and their summary."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import trimesh
from matplotlib.figure import Figure

from hogsa.articulated import ArticulatedObject, upright_rotation
from hogsa.config import section
from hogsa.hand import HandConfig, HandModel, hand_models
from hogsa.io import write_json
from hogsa.open_hand.poses import fist_pose, pinch_pose
from hogsa.open_objects import OPEN_OBJECTS, open_object
from hogsa.report.meshplot import draw_mesh, shaded_colors
from hogsa.report.outputs import StageClock, save_and_close
from hogsa.report.paths import AssetsPaths

SKIN = np.array([0.87, 0.68, 0.58])


@dataclass(frozen=True)
class AssetsConfig:
    """params.yaml ``assets``."""

    dpi: int  # of the figure
    object_opening: float  # radians by which articulated objects are shown opened


def load_assets(params: dict) -> tuple[dict[str, HandModel], list[ArticulatedObject]]:
    """Both hands of ``params``' ``hand`` section and every open object (``OPEN_OBJECTS`` order)."""
    return hand_models(section(params, "hand", HandConfig)), [open_object(name) for name in OPEN_OBJECTS]


def run(params: dict, paths: AssetsPaths) -> dict:
    """The assets stage as its notebook runs it: the figure, the metrics and the timings; returns the metrics."""
    clock = StageClock()
    cfg = section(params, "assets", AssetsConfig)
    hands, objects = load_assets(params)
    save_and_close(assets_figure(hands, objects, cfg.object_opening, cfg.dpi), paths.figure)
    summary = assets_summary(hands, objects)
    write_json(paths.metrics, summary)
    clock.write(paths.timings)
    return summary


def hand_poses(side: str) -> dict[str, np.ndarray]:
    """Named [45] absolute poses shown for each hand."""
    return {"rest": np.zeros(45), "fist": fist_pose(side), "pinch": pinch_pose(side)}


def posed_hand(hand: HandModel, pose: np.ndarray) -> np.ndarray:
    """[V,3] vertices of ``hand`` in the absolute finger pose ``pose`` [45], wrist at rest."""
    zeros = torch.zeros(1, 3)
    out = hand(zeros, torch.as_tensor(pose, dtype=torch.float32)[None], torch.zeros(1, hand.num_betas), zeros)
    return out.vertices[0].numpy()


def face_texture_colors(obj: ArticulatedObject) -> np.ndarray:
    """[F,3] colours in [0,1] sampled from the texture at each face's UV centroid."""
    uv = obj.face_uvs.mean(dim=1).numpy()
    tex = obj.texture.numpy()
    height, width = tex.shape[:2]
    cols = np.clip((uv[:, 0] * width).astype(int), 0, width - 1)
    rows = np.clip(((1 - uv[:, 1]) * height).astype(int), 0, height - 1)
    return tex[rows, cols] / 255.0


def assets_figure(hands: dict[str, HandModel], objects: list[ArticulatedObject], opening: float,
                  dpi: int) -> Figure:
    """Two rows of hands (right, left × rest, fist, pinch) and one row per object state."""
    n_cols = max(3, len(objects))
    fig = plt.figure(figsize=(3 * n_cols, 3 * 4), dpi=dpi)
    for row, (side, hand) in enumerate(hands.items()):
        faces = hand.faces.numpy()
        for col, (name, pose) in enumerate(hand_poses(side).items()):
            verts = posed_hand(hand, pose)
            ax = fig.add_subplot(4, n_cols, row * n_cols + col + 1, projection="3d")
            draw_mesh(ax, verts, faces, shaded_colors(verts, faces, SKIN), elev=35, azim=-70)
            ax.set_title(f"{side} hand, {name}", fontsize=9)
    for row, theta in ((2, 0.0), (3, opening)):
        for col, obj in enumerate(objects):
            angle = torch.tensor([theta if obj.articulated else 0.0])
            verts = obj.pose(angle, torch.zeros(1, 3), torch.zeros(1, 3))[0].double().numpy() @ upright_rotation(obj).T
            faces = obj.faces.numpy()
            ax = fig.add_subplot(4, n_cols, row * n_cols + col + 1, projection="3d")
            draw_mesh(ax, verts, faces, shaded_colors(verts, faces, face_texture_colors(obj)), elev=30, azim=-50)
            state = "rigid" if not obj.articulated else f"θ = {angle.item():.2f} rad"
            ax.set_title(f"{obj.name} ({state})", fontsize=9)
    fig.tight_layout()
    return fig


def assets_summary(hands: dict[str, HandModel], objects: list[ArticulatedObject]) -> dict:
    """Counts and mesh checks of the assets, for reports/metrics/assets.json."""
    summary: dict = {"hands": {}, "objects": {}}
    for side, hand in hands.items():
        mesh = trimesh.Trimesh(hand.v_template.numpy(), hand.faces.numpy(), process=False)
        summary["hands"][side] = {
            "vertices": int(len(mesh.vertices)), "faces": int(len(mesh.faces)),
            "watertight": bool(mesh.is_watertight), "volume_cm3": round(float(mesh.volume) * 1e6, 2),
            "open_hand": hand.is_open_hand,
        }
    for obj in objects:
        summary["objects"][obj.name] = {
            "vertices": int(obj.vertices.shape[0]), "faces": int(obj.faces.shape[0]),
            "articulated": obj.articulated, "diameter_m": round(obj.diameter, 4),
            "top_vertices": int(obj.top_mask.sum()),
        }
    return summary
