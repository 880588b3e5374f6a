"""The augment stage: the HOGSA dataset. Every variant's shards run (``hogsa.augment``), their manifests
are written, the original training images are cropped by the same procedure for the baselines, and the
stage reports counts, the expansion over the original training images, a grid of samples per variant
(paper Fig. 3/4) and how well the written masks agree with the geometry.

Mask agreement (``mask_agreement``): for a subset of each variant's samples, the posed meshes are
ray-traced at the written crop's camera (``hogsa.data.meshrender``, labels only). A hand joint is
visible where the rays through its pixel and its 8 neighbours first meet its own hand (visible, and
not on the silhouette's edge, where a pixel is part hand, part not); an object vertex where they meet
the object and the centre ray within 2 mm of the vertex's depth. The figures are the fractions of
visible joints (both hands) and object vertices whose pixel carries their part's label in the written
mask.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from scipy.ndimage import binary_erosion

from hogsa.augment.executors import output_identity, prepare_outputs, run_jobs, write_manifests, MANIFEST_FILE
from hogsa.augment.plan import AugmentConfig, FAMILY_OF, shards
from hogsa.augment.shards import AugmentInputs, ShardJob, hands_means, shard_context
from hogsa.augment.originals import write_original_crops
from hogsa.config import section
from hogsa.data.arctic import read_sequence
from hogsa.data.dataset import DatasetIndex
from hogsa.data.groups import resolve_groups
from hogsa.data.meshrender import Light, MeshLayer, render
from hogsa.data.schema import EGO_VIEW, MASK_LABELS, SIDES
from hogsa.geometry import project_points
from hogsa.hand import HandConfig, HandModel, hand_models
from hogsa.hogs.train import HOGSConfig
from hogsa.io import write_json
from hogsa.report.outputs import StageClock, save_and_close
from hogsa.report.paths import AugmentPaths
from hogsa.srm.pairs import model_path
from hogsa.srm.train import CHECKPOINT as SRM_CHECKPOINT

FLAT = Light(ambient=1.0, diffuse=0.0, direction=np.array([0.0, 0.0, 1.0]))
DEPTH_TOLERANCE = 0.002  # m: an object vertex is visible where the first hit is this close to it


class AugmentRun(NamedTuple):
    cfg: AugmentConfig
    jobs: list[ShardJob]
    counts: dict[str, dict]  # per variant: written, dropped
    originals: int  # original training images cropped into crops_dir


def stage_jobs(params: dict, paths: AugmentPaths) -> tuple[AugmentConfig, list[ShardJob], list[Path]]:
    """The stage's shards in plan order (families, then groups, then pose chunks) and its input files."""
    cfg = section(params, "augment", AugmentConfig)
    inputs = AugmentInputs(paths.index_file, paths.poses_file, paths.models_dir, paths.srm_dir, paths.out_dir)
    params_json = json.dumps(params, sort_keys=True)
    ctx = shard_context(params_json, inputs)
    groups = resolve_groups(ctx.hogs_cfg.groups, ctx.index)
    jobs = [ShardJob(params_json, inputs, shard) for family in cfg.families() for group in groups
            for shard in shards(family, group, len(ctx.pose_set(family, group).ids), cfg.shard_poses)]
    kinds = sorted({"3dgs" if FAMILY_OF[v] == "3dgs" else "hogs" for v in cfg.variants if v != "oracle"})
    files = [Path(paths.index_file), Path(paths.poses_file)]
    files += [model_path(paths.models_dir, g, k) for g in groups for k in kinds]
    files += [Path(paths.srm_dir) / k / SRM_CHECKPOINT for k in kinds]
    return cfg, jobs, files


def augment(params: dict, paths: AugmentPaths) -> AugmentRun:
    """Run (or resume) every shard, write the manifests and the original crops."""
    cfg, jobs, files = stage_jobs(params, paths)
    prepare_outputs(paths.out_dir, cfg.variants, output_identity(params, files))
    run_jobs(jobs, cfg)
    counts = write_manifests(jobs, cfg)
    hogs_cfg = section(params, "hogs", HOGSConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    originals = write_original_crops(DatasetIndex.load(paths.index_file, hands), hands, cfg, hogs_cfg.crop_margin,
                                     paths.crops_dir)
    return AugmentRun(cfg, jobs, counts, originals)


def read_manifest(out_dir: str | Path, variant: str) -> list[dict]:
    text = (Path(out_dir) / variant / MANIFEST_FILE).read_text()
    return [json.loads(line) for line in text.splitlines()]


def spread(count: int, total: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)``."""
    return sorted({int(k) for k in np.linspace(0, total - 1, min(count, total))}) if total else []


def grid_figure(out_dir: str | Path, cfg: AugmentConfig) -> Figure:
    """A row per variant, the same samples (name) in every row where the variant has them."""
    manifests = {v: read_manifest(out_dir, v) for v in cfg.variants}
    reference = manifests.get("full") or next(iter(manifests.values()))
    picks = [reference[k]["sample"] for k in spread(cfg.report.grid_samples, len(reference))]
    fig, axes = plt.subplots(len(manifests), len(picks), figsize=(1.5 * len(picks), 1.6 * len(manifests)),
                             dpi=cfg.report.dpi, squeeze=False)
    for row, (variant, lines) in enumerate(manifests.items()):
        by_name = {line["sample"]: line for line in lines}
        chosen = [by_name[p] for p in picks] if all(p in by_name for p in picks) else \
            [lines[k] for k in spread(len(picks), len(lines))]
        for col in range(len(picks)):
            ax = axes[row, col]
            ax.set_axis_off()
            if col < len(chosen):
                ax.imshow(Image.open(Path(out_dir) / variant / chosen[col]["image"]))
                ax.set_title(chosen[col]["sample"].split("/")[1], fontsize=5)
        axes[row, 0].text(-0.08, 0.5, variant, transform=axes[row, 0].transAxes, rotation=90, va="center", ha="right",
                          fontsize=8)
    fig.suptitle("a row per variant; down a column, one pose, camera and background", fontsize=8)
    fig.tight_layout()
    return fig


def overlay_figure(out_dir: str | Path, variant: str, hands: dict[str, HandModel], count: int, dpi: int) -> Figure:
    """``count`` samples of ``variant``: the image with its mask's part outlines and the pose's joints
    projected by the written camera (right red, left blue), to see that the pixels are where the pose says."""
    lines = read_manifest(out_dir, variant)
    root = Path(out_dir) / variant
    picks = spread(count, len(lines))
    fig, axes = plt.subplots(1, len(picks), figsize=(1.8 * len(picks), 2.0), dpi=dpi, squeeze=False)
    hands_mean = hands_means(hands)
    for ax, k in zip(axes[0], picks):
        seq = read_sequence(root, lines[k]["sample"], hands_mean=hands_mean)
        camera = seq.camera(EGO_VIEW, 0)
        ax.imshow(Image.open(root / lines[k]["image"]))
        mask = np.asarray(Image.open(root / lines[k]["mask"]))
        ax.contour(mask, levels=[0.5, 1.5, 2.5], colors=["white", "white", "yellow"], linewidths=0.5)
        for side, color in zip(SIDES, ("red", "blue")):
            with torch.no_grad():
                joints = hands[side](*seq.hands[side].torch()).joints[0].double().numpy()
            uv, _ = project_points(torch.as_tensor(joints), torch.as_tensor(camera.K), torch.as_tensor(camera.world2cam))
            ax.scatter(uv[:, 0] - 0.5, uv[:, 1] - 0.5, s=2, color=color)  # imshow's pixel centres are integers
        ax.set_axis_off()
        ax.set_title(lines[k]["sample"].split("/")[1], fontsize=5)
    fig.suptitle(f"{variant}: mask outlines and the pose's joints", fontsize=8)
    fig.tight_layout()
    return fig


def mask_agreement(out_dir: str | Path, variant: str, hands: dict[str, HandModel], index: DatasetIndex,
                   count: int) -> dict[str, float]:
    """{"joints_on_hand_mask", "object_vertices_on_object_mask", "samples"} over ``count`` samples."""
    lines = read_manifest(out_dir, variant)
    root = Path(out_dir) / variant
    joints_hit = joints_total = verts_hit = verts_total = 0
    for k in spread(count, len(lines)):
        seq = read_sequence(root, lines[k]["sample"], hands_mean=hands_means(hands))
        camera = seq.camera(EGO_VIEW, 0)
        mask = np.asarray(Image.open(root / lines[k]["mask"]))
        obj = index.object(seq.object_name)
        layers, joints = [], {}
        for part, side in enumerate(SIDES, start=1):
            with torch.no_grad():
                out = hands[side](*seq.hands[side].torch())
            vertices = out.vertices[0].double().numpy()
            layers.append(MeshLayer(vertices, hands[side].faces.numpy(), part, vertex_colors=np.ones_like(vertices)))
            joints[side] = out.joints[0].double().numpy()
        with torch.no_grad():
            verts = obj.pose(*seq.object_pose.torch(torch.float64))[0].numpy()
        layers.append(MeshLayer(verts, obj.faces.numpy(), MASK_LABELS["object"], vertex_colors=np.ones_like(verts)))
        truth = render(layers, camera.K, camera.world2cam, camera.width, camera.height, FLAT)
        interior = {label: binary_erosion(truth.mask == label, np.ones((3, 3), bool)) for label in (1, 2, 3)}
        for side in SIDES:
            rows, cols, _, inside = pixels(joints[side], camera)
            visible = inside.copy()
            visible[inside] = interior[MASK_LABELS[side]][rows[inside], cols[inside]]
            joints_total += int(visible.sum())
            joints_hit += int((mask[rows[visible], cols[visible]] == MASK_LABELS[side]).sum())
        rows, cols, depth, inside = pixels(verts, camera)
        visible = inside.copy()
        hit_depth = truth.depth[rows[inside], cols[inside]]
        visible[inside] = interior[MASK_LABELS["object"]][rows[inside], cols[inside]] & \
            (np.abs(hit_depth - depth[inside]) < DEPTH_TOLERANCE)
        verts_total += int(visible.sum())
        verts_hit += int((mask[rows[visible], cols[visible]] == MASK_LABELS["object"]).sum())
    return {"joints_on_hand_mask": joints_hit / max(joints_total, 1),
            "object_vertices_on_object_mask": verts_hit / max(verts_total, 1),
            "samples": len(spread(count, len(lines)))}


def pixels(points: np.ndarray, camera) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer pixel rows, cols, camera depths of world ``points`` [N, 3] and whether each is in the image."""
    uv, z = project_points(torch.as_tensor(points), torch.as_tensor(camera.K), torch.as_tensor(camera.world2cam))
    cols, rows = np.floor(uv[:, 0].numpy()).astype(int), np.floor(uv[:, 1].numpy()).astype(int)
    inside = (z.numpy() > 0) & (cols >= 0) & (cols < camera.width) & (rows >= 0) & (rows < camera.height)
    return np.clip(rows, 0, camera.height - 1), np.clip(cols, 0, camera.width - 1), z.numpy(), inside


def original_training_images(index: DatasetIndex) -> int:
    """The training split's images (every present view of every frame)."""
    total = 0
    for name in index.sequences("train"):
        seq = index.read(name)
        total += seq.frames * sum(1 for c in seq.cameras if c is not None)
    return total


def augment_summary(run: AugmentRun, index: DatasetIndex, hands: dict[str, HandModel], out_dir: str | Path,
                    check_samples: int) -> dict:
    """reports/metrics/augment.json."""
    original = original_training_images(index)
    summary = {"original_train_images": original, "original_crops": run.originals, "shards": len(run.jobs)}
    for variant, count in run.counts.items():
        summary[variant] = {"generated": count["written"] + sum(count["dropped"].values()), "written": count["written"],
                            "dropped": count["dropped"],
                            "expansion": count["written"] / original,
                            "mask_agreement": mask_agreement(out_dir, variant, hands, index, check_samples)}
    return summary


def run(params: dict, paths: AugmentPaths) -> dict:
    """The augment stage as its notebook runs it; returns the metrics."""
    clock = StageClock()
    Path(paths.report_dir).mkdir(parents=True, exist_ok=True)
    with clock.part("generate"):
        result = augment(params, paths)
    hands = hand_models(section(params, "hand", HandConfig))
    index = DatasetIndex.load(paths.index_file, hands)
    summary = augment_summary(result, index, hands, paths.out_dir, result.cfg.report.check_samples)
    save_and_close(grid_figure(paths.out_dir, result.cfg), Path(paths.report_dir) / "grid.png")
    for variant in result.cfg.variants:
        save_and_close(overlay_figure(paths.out_dir, variant, hands, result.cfg.report.grid_samples, result.cfg.report.dpi),
                       Path(paths.report_dir) / f"overlay_{variant}.png")
    write_json(paths.metrics, summary)
    clock.write(paths.timings)
    timings = json.loads(Path(paths.timings).read_text())
    written = sum(c["written"] for c in result.counts.values())
    timings["generate_seconds_per_image"] = round(timings["generate_seconds"] / max(written, 1), 4)
    write_json(paths.timings, timings)
    return summary
