"""The report's own pictures: a 360° novel-view orbit of a trained HOGS model (an animated GIF), a grasp
of one subject rendered on another subject's model (pose transfer, paper Fig. 13), and the test crops
with the hands and object a baseline predicted drawn over them (paper Fig. 5).

All rendering is HOGS's own (``GaussianScene.render``) or matplotlib's: no GL, no GPU.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from torch import Tensor

from hogsa.articulated import ArticulatedObject
from hogsa.baselines.evaluate import read_prediction
from hogsa.baselines.run import EXAMPLES_FILE, PREDICTIONS_DIR, run_dir
from hogsa.data.rig import camera_ring
from hogsa.data.schema import SequenceRecord
from hogsa.hand import HandModel, HandPose
from hogsa.hogs.train import TrainedScene
from hogsa.io import atomic_path
from hogsa.report.baselines import pixels
from hogsa.report.hogs import corrected_frame_poses, framing, image_grid, render_image
from hogsa.report.meshplot import shaded_colors

PART_COLOURS = {"right": (0.90, 0.30, 0.25), "left": (0.25, 0.45, 0.90), "object": (0.30, 0.80, 0.35)}


def to_uint8(image: np.ndarray) -> np.ndarray:  # [H, W, 3] in [0, 1] → uint8
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def orbit_frames(scene: TrainedScene, seq: SequenceRecord, frame: int, size: int, views: int, fov_deg: float,
                 elevation_deg: float) -> np.ndarray:
    """[views, size, size, 3] uint8: ``frame`` of ``seq`` at its corrected poses, rendered by ``scene``
    from ``views`` cameras evenly spaced over 360° of azimuth at ``elevation_deg``, framed to fit."""
    poses = corrected_frame_poses(scene, seq, frame)
    center, distance = framing(scene.model, poses, fov_deg)
    cameras = camera_ring(center, distance, [(size, size)] * views, fov_deg, (elevation_deg,), 0.0)
    return np.stack([to_uint8(render_image(scene.model, camera, *poses)) for camera in cameras])


def write_gif(path: str | Path, frames: np.ndarray, seconds_per_frame: float) -> None:
    """An endlessly looping GIF of [N, H, W, 3] uint8 frames (imageio's pillow plugin), written whole."""
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=round(1000 * seconds_per_frame), loop=0)


def with_shape(pose: HandPose, betas: Tensor) -> HandPose:
    """``pose`` with another subject's shape coefficients ``betas`` [1, 10]."""
    return dataclasses.replace(pose, betas=betas)


def pose_transfer_figure(source: TrainedScene, target: TrainedScene, source_seqs: list[SequenceRecord],
                         target_seq: SequenceRecord, size: int, fov_deg: float, elevation_deg: float,
                         image_inches: float, labels: tuple[str, str]) -> Figure:
    """The middle frame of each of ``source_seqs`` (one subject's grasps) rendered by the source
    subject's model and by the target subject's, with the target's hand shape (``target_seq``'s betas):
    one column per grasp, one row per model (``labels``, two different ones), each column's camera framed
    on the source's render."""
    betas = {side: target_seq.hands[side].take([0]).torch().betas for side in ("right", "left")}
    rows: dict[str, list[np.ndarray]] = {labels[0]: [], labels[1]: []}
    titles = []
    for seq in source_seqs:
        frame = seq.frames // 2
        right, left, obj = corrected_frame_poses(source, seq, frame)
        center, distance = framing(source.model, (right, left, obj), fov_deg)
        camera = camera_ring(center, distance, [(size, size)], fov_deg, (elevation_deg,), 30.0)[0]
        rows[labels[0]].append(render_image(source.model, camera, right, left, obj))
        transferred = (with_shape(right, betas["right"]), with_shape(left, betas["left"]), obj)
        rows[labels[1]].append(render_image(target.model, camera, *transferred))
        titles.append(f"{seq.name} f{frame}")
    return image_grid(rows, titles, image_inches)


# --------------------------------------------------------------------------- #
# Predictions drawn over the test crops
# --------------------------------------------------------------------------- #
def draw_mesh_2d(ax: Axes, verts: np.ndarray, faces: np.ndarray, K: np.ndarray, colour: tuple, alpha: float) -> None:
    """A camera-frame mesh (``verts`` [V, 3] m, ``faces`` [F, 3]) projected by ``K`` and painted far to
    near, Lambert-shaded from the camera, over the image on ``ax``."""
    order = np.argsort(-verts[faces][..., 2].mean(1))
    tri_uv = pixels(verts, K)[faces]  # [F, 3, 2]
    colours = shaded_colors(verts, faces, np.asarray(colour), light=(0.0, 0.0, -1.0))
    ax.add_collection(PolyCollection(tri_uv[order], facecolors=colours[order], edgecolors="none", alpha=alpha))


def prediction_meshes(runs_dir: str | Path, task: str, train_set: str, seed: int, source: str) -> dict:
    """{"pred": {...}, "target": {...}} of one test crop ("<sequence>:<view>:<frame>") from the run's saved
    predictions: verts_r, verts_l [Vh, 3] and obj_verts [Vo, 3], camera frame, metres."""
    sequence, view, frame = source.rsplit(":", 2)
    pred, target = read_prediction(run_dir(runs_dir, task, train_set, seed) / PREDICTIONS_DIR / sequence
                                   / f"{view}.npz")
    keys = ("verts_r", "verts_l", "obj_verts")
    return {"pred": {k: pred[k][int(frame)] for k in keys}, "target": {k: target[k][int(frame)] for k in keys}}


def predictions_figure(runs_dir: str | Path, train_sets: list[str], seed: int, hands: dict[str, HandModel],
                       objects: dict[str, ArticulatedObject], object_of: dict[str, str], image_inches: float,
                       count: int, alpha: float = 0.55) -> Figure:
    """ArcticNet-SF's test crops (the first ``count`` of the run's examples): the crop, the annotated
    meshes, then each train set's predicted meshes (right hand red, left blue, object green)."""
    examples = np.load(run_dir(runs_dir, "arcticnet_sf", train_sets[0], seed) / EXAMPLES_FILE)
    sources = [str(s) for s in examples["source"][:count]]
    rows = ["crop", "annotated"] + [f"{name}, seed {seed}" for name in train_sets]
    fig, axes = plt.subplots(len(rows), len(sources), figsize=(image_inches * len(sources), image_inches * len(rows)),
                             squeeze=False)
    faces = {"verts_r": hands["right"].faces.numpy(), "verts_l": hands["left"].faces.numpy()}
    colour = {"verts_r": PART_COLOURS["right"], "verts_l": PART_COLOURS["left"], "obj_verts": PART_COLOURS["object"]}
    for j, source in enumerate(sources):
        image, K = examples["images"][j], examples["K"][j]
        faces["obj_verts"] = objects[object_of[source.split(":", 1)[0]]].faces.numpy()
        saved = {name: prediction_meshes(runs_dir, "arcticnet_sf", name, seed, source) for name in train_sets}
        meshes = {"annotated": saved[train_sets[0]]["target"]}
        meshes |= {f"{name}, seed {seed}": saved[name]["pred"] for name in train_sets}
        for i, row in enumerate(rows):
            ax = axes[i, j]
            ax.imshow(image)
            for key in ("obj_verts", "verts_l", "verts_r") if row != "crop" else ():
                draw_mesh_2d(ax, meshes[row][key], faces[key], K, colour[key], alpha)
            ax.set_xlim(-0.5, image.shape[1] - 0.5)
            ax.set_ylim(image.shape[0] - 0.5, -0.5)
            ax.set_xticks([]), ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(row, fontsize=8)
        axes[0, j].set_title(source.replace(":", " v", 1).replace(":", " f"), fontsize=6)
    fig.tight_layout(pad=0.2)
    return fig
