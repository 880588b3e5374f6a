"""The pom stage: perturb training grasps, optimise both hands, measure every sample before and after,
keep the plausible ones, and report: a plausibility table, the loss curves, mesh renders before and
after, the t-SNE of grasp descriptors (paper Fig. 7) and the coverage of held-out test poses.

Coverage is the mean distance (mean per-joint, mm, object frame) from each test grasp to its nearest
grasp of the same object in a reference set: the training grasps, or those plus the generated ones
(adding poses can only lower it; the question is by how much). The same figures on the validation
grasps are the ones the perturbation's settings are chosen on.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from hogsa.articulated import ArticulatedObject
from hogsa.config import section
from hogsa.data.dataset import DatasetIndex
from hogsa.data.meshrender import Light, MeshLayer, render
from hogsa.data.rig import intrinsics, look_at
from hogsa.data.schema import SIDES
from hogsa.hand import HandConfig, HandModel, hand_models, hand_vertices
from hogsa.io import atomic_path, write_json
from hogsa.metrics.diversity import coverage, grasp_descriptors, mean_pairwise_distance, tsne_embedding
from hogsa.pom.contactnet import ContactNet, load_contactnet
from hogsa.pom.generate import GeneratedPoses, PomConfig, generate_poses, read_grasps
from hogsa.pom.grasps import Grasps, grasp_joints
from hogsa.pom.plausibility import failure_counts, filter_grasps, plausibility_summary
from hogsa.report.outputs import StageClock, save_and_close
from hogsa.report.paths import PomPaths

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


# --------------------------------------------------------------------------- #
# The stage
# --------------------------------------------------------------------------- #
class PomInputs(NamedTuple):
    """What the pom stage reads."""

    cfg: PomConfig
    seed: int
    hands: dict[str, HandModel]
    index: DatasetIndex
    net: ContactNet  # the contactnet stage's, in eval mode
    hand_subset: torch.Tensor  # [H] int64 hand vertices the net takes


class Generation(NamedTuple):
    """The grasps the pom stage starts from, generates and keeps."""

    train: Grasps  # the training split's grasp frames
    val: Grasps | None  # the validation split's (None when it has no sequence): where settings are chosen
    test: Grasps  # the test split's
    objects: dict[str, ArticulatedObject]  # the training grasps' objects, by name
    poses: GeneratedPoses  # every sample, initial and optimised, measured before and after
    kept: Grasps  # the plausible optimised samples
    dropped: int


def read_inputs(params: dict, paths: PomPaths) -> PomInputs:
    """The stage's settings, hands, dataset index and the trained ContactNet; makes the report folder."""
    cfg = section(params, "pom", PomConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    index = DatasetIndex.load(paths.index_file, hands)
    net, hand_subset = load_contactnet(paths.model_file)
    Path(paths.report_dir).mkdir(parents=True, exist_ok=True)
    return PomInputs(cfg, params["seed"], hands, index, net, hand_subset)


def generate(inputs: PomInputs, poses_file: str | Path) -> Generation:
    """Perturb, optimise and measure samples of the training grasps; save the plausible ones to ``poses_file``."""
    cfg, hands = inputs.cfg, inputs.hands
    train, objects = read_grasps(inputs.index, "train", hands, cfg.contact_distance)
    test, _ = read_grasps(inputs.index, "test", hands, cfg.contact_distance)
    val = read_grasps(inputs.index, "val", hands, cfg.contact_distance)[0] if inputs.index.sequences("val") else None
    poses = generate_poses(train, hands, objects, inputs.net, inputs.hand_subset, cfg, inputs.seed)
    kept, dropped = filter_grasps(poses.optimised, poses.after)
    kept.save(poses_file, {k: v[poses.after["passes"]] for k, v in poses.after.items()})
    return Generation(train, val, test, objects, poses, kept, dropped)


def csv_value(value: object) -> str:
    """A plausibility record's value as the table writes it: a flag as 0 or 1, a number to 3 decimals."""
    return str(int(value)) if isinstance(value, np.bool_) else f"{value:.3f}"


def write_plausibility_table(poses: GeneratedPoses, path: str | Path) -> None:
    """One CSV row per sample: its source grasp, then every plausibility column before and after."""
    columns = list(poses.after)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["sample"] + [f"{stage}_{c}" for stage in ("before", "after") for c in columns])
        for k in range(len(poses.optimised)):
            values = [poses.before[c][k] for c in columns] + [poses.after[c][k] for c in columns]
            writer.writerow([poses.optimised.source[k]] + [csv_value(v) for v in values])


def save_loss_figure(poses: GeneratedPoses, cfg: PomConfig, report_dir: str | Path) -> Figure:
    """loss_terms.png."""
    return save_and_close(loss_figure(poses.terms, cfg.report.dpi), Path(report_dir) / "loss_terms.png")


def shown_samples(poses: GeneratedPoses, count: int) -> list[int]:
    """``count`` samples spread over the passing ones (over all when none passes), hence over the objects."""
    passing = np.flatnonzero(poses.after["passes"])
    pool = passing if len(passing) else np.arange(len(poses.optimised))
    return list(pool[:: max(1, len(pool) // count)][:count])


def save_before_after(generation: Generation, hands: dict[str, HandModel], cfg: PomConfig,
                      report_dir: str | Path) -> Figure:
    """before_after.png of ``pom.report.renders`` samples."""
    poses = generation.poses
    fig = before_after_figure(poses.initial, poses.optimised, shown_samples(poses, cfg.report.renders), hands,
                              generation.objects, {"before": poses.before, "after": poses.after},
                              cfg.report.render_size, cfg.report.dpi)
    return save_and_close(fig, Path(report_dir) / "before_after.png")


class Diversity(NamedTuple):
    """How the grasp sets spread and how well they cover the test grasps."""

    descriptors: dict[str, np.ndarray]  # "train", "generated", "test" → [S, D] grasp descriptors
    coverage_train: float  # mm
    coverage_train_plus_pom: float  # mm
    val_coverage: tuple[float, float] | None  # the same two on the validation grasps (None without them)
    embedding: np.ndarray  # [S, 2] t-SNE of all descriptors: train, then generated, then test
    labels: np.ndarray  # [S] "train", "generated" or "test"


def measure_diversity(generation: Generation, hands: dict[str, HandModel], seed: int) -> Diversity:
    """Coverage of the test grasps by the training ones, and by those plus the kept ones; their t-SNE."""
    train, kept, test = generation.train, generation.kept, generation.test
    train_d, kept_d, test_d = (grasp_descriptors(grasp_joints(g, hands), g.object_pose.rot, g.object_pose.transl)
                                for g in (train, kept, test))
    coverage_train = coverage(test_d, test.object_name, train_d, train.object_name)
    coverage_both = coverage(test_d, test.object_name, np.concatenate([train_d, kept_d]),
                             np.concatenate([train.object_name, kept.object_name]))
    val_coverage = None
    if generation.val is not None and len(generation.val):
        val = generation.val
        val_d = grasp_descriptors(grasp_joints(val, hands), val.object_pose.rot, val.object_pose.transl)
        val_coverage = (coverage(val_d, val.object_name, train_d, train.object_name),
                        coverage(val_d, val.object_name, np.concatenate([train_d, kept_d]),
                                 np.concatenate([train.object_name, kept.object_name])))
    labels = np.array(["train"] * len(train) + ["generated"] * len(kept) + ["test"] * len(test))
    embedding = tsne_embedding(np.concatenate([train_d, kept_d, test_d]), seed)
    return Diversity({"train": train_d, "generated": kept_d, "test": test_d}, coverage_train, coverage_both,
                     val_coverage, embedding, labels)


def save_tsne(diversity: Diversity, cfg: PomConfig, report_dir: str | Path) -> Figure:
    """tsne.png."""
    figure = tsne_figure(diversity.embedding, diversity.labels, cfg.report.dpi)
    return save_and_close(figure, Path(report_dir) / "tsne.png")


def pom_summary(generation: Generation, diversity: Diversity, cfg: PomConfig) -> dict:
    """reports/metrics/pom.json: plausibility before and after (means over samples and hands; depths mm,
    volumes cm³), the samples kept, and the diversity of the poses."""
    poses, kept = generation.poses, generation.kept
    before, after = plausibility_summary(poses.before), plausibility_summary(poses.after)
    pairwise_pom = mean_pairwise_distance(diversity.descriptors["generated"], kept.object_name)
    return {
        "penetration_mm_before": before["penetration_mm"],
        "penetration_mm_after": after["penetration_mm"],
        "contact_rate_before": before["contact_rate"],
        "contact_rate_after": after["contact_rate"],
        "pass_rate": after["pass_rate"],
        "pass_rate_before": before["pass_rate"],
        "volume_cm3_before": before["volume_cm3"],
        "volume_cm3_after": after["volume_cm3"],
        "hand_in_object_mm_before": before["hand_in_object_mm"],
        "hand_in_object_mm_after": after["hand_in_object_mm"],
        "object_in_hand_mm_before": before["object_in_hand_mm"],
        "object_in_hand_mm_after": after["object_in_hand_mm"],
        "hand_hand_volume_cm3_after": after["hand_hand_volume_cm3"],
        "coverage_mm_train": diversity.coverage_train,
        "coverage_mm_train_plus_pom": diversity.coverage_train_plus_pom,
        "val_coverage_mm_train": None if diversity.val_coverage is None else diversity.val_coverage[0],
        "val_coverage_mm_train_plus_pom": None if diversity.val_coverage is None else diversity.val_coverage[1],
        "mean_pairwise_mm_train": mean_pairwise_distance(diversity.descriptors["train"], generation.train.object_name),
        "mean_pairwise_mm_pom": None if np.isnan(pairwise_pom) else pairwise_pom,
        "samples": len(poses.optimised),
        "kept": len(kept),
        "dropped": generation.dropped,
        "failures_after": failure_counts(poses.after, cfg.plausibility),
        "train_grasps": len(generation.train),
        "test_grasps": len(generation.test),
    }


def run(params: dict, paths: PomPaths) -> dict:
    """The pom stage as its notebook runs it: the poses, table, figures, metrics and timings; returns the metrics."""
    clock = StageClock()
    inputs = read_inputs(params, paths)
    generation = generate(inputs, paths.poses_file)
    write_plausibility_table(generation.poses, Path(paths.report_dir) / "plausibility.csv")
    save_loss_figure(generation.poses, inputs.cfg, paths.report_dir)
    save_before_after(generation, inputs.hands, inputs.cfg, paths.report_dir)
    diversity = measure_diversity(generation, inputs.hands, inputs.seed)
    save_tsne(diversity, inputs.cfg, paths.report_dir)
    summary = pom_summary(generation, diversity, inputs.cfg)
    write_json(paths.metrics, summary)
    clock.parts["optimise"] = generation.poses.optimise_seconds
    clock.write(paths.timings)
    return summary
