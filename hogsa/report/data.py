"""The data stage: build the embedded dataset (or index a real one), read every sequence back and
report on it: counts per split, contact sheets of all views with projected annotations, and the
hand-object contact and penetration statistics of the annotations."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.spatial import ConvexHull

from hogsa.articulated import ArticulatedObject
from hogsa.config import section
from hogsa.data.contact import ObjectDistance
from hogsa.data.dataset import DataConfig, DataReportConfig, DatasetIndex, index_dataset
from hogsa.data.schema import MASK_LABELS, SequenceRecord
from hogsa.data.synth import generate
from hogsa.data.synth_motion import timeline
from hogsa.geometry import project_points
from hogsa.hand import MANO_PARENTS, HandConfig, HandModel, HandOutput, hand_models
from hogsa.io import write_json
from hogsa.report.outputs import StageClock, save_and_close
from hogsa.report.paths import DataPaths

SIDE_COLORS = {"right": "#e8443a", "left": "#3a7be8"}
TIP_PARENTS = (15, 3, 6, 12, 9)  # joints 16-20 (tips thumb, index, middle, ring, pinky) hang off these


def posed_hands(seq: SequenceRecord, hands: dict[str, HandModel], frames: list[int] | None = None
                ) -> dict[str, HandOutput]:
    """Annotated hands of ``seq``: {side: HandOutput} with vertices [F',V,3] and joints [F',21,3]."""
    frames = list(range(seq.frames)) if frames is None else frames
    out = {}
    for side, hand in hands.items():
        with torch.no_grad():
            out[side] = hand(*seq.hands[side].take(frames).torch())
    return out


def posed_object(seq: SequenceRecord, obj: ArticulatedObject, frames: list[int]) -> np.ndarray:
    """[F',V,3] object vertices of the annotated ``frames``."""
    with torch.no_grad():
        return obj.pose(*seq.object_pose.take(frames).torch()).double().numpy()


def split_counts(index: DatasetIndex, sequences: dict[str, SequenceRecord]) -> dict:
    """{split: {sequences, frames, images, objects: {name: sequences}}} from the read sequences."""
    counts = {}
    for split, names in index.splits.items():
        seqs = [sequences[n] for n in names]
        counts[split] = {
            "sequences": len(seqs),
            "frames": int(sum(s.frames for s in seqs)),
            "images": int(sum(s.frames * len(s.views) for s in seqs)),
            "objects": dict(Counter(s.object_name for s in seqs)),
        }
    return counts


def contact_sheet(seq: SequenceRecord, frame: int, hands: dict[str, HandModel], obj: ArticulatedObject,
                  dpi: int) -> Figure:
    """Every view of ``frame`` with the annotated 21 joints per hand and the object's outline."""
    views = seq.views
    cols = 4
    rows = int(np.ceil(len(views) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), dpi=dpi, squeeze=False)
    posed = posed_hands(seq, hands, [frame])
    obj_verts = posed_object(seq, obj, [frame])[0]
    top = obj.top_mask.numpy()
    for ax, view in zip(axes.ravel(), views):
        cam = seq.camera(view, frame)
        K, w2c = torch.as_tensor(cam.K), torch.as_tensor(cam.world2cam)
        ax.imshow(seq.image(view, frame))
        for part in (top, ~top):
            if part.sum() >= 3:
                uv = project_points(torch.as_tensor(obj_verts[part]), K, w2c)[0].numpy()
                hull = ConvexHull(uv)
                loop = np.append(hull.vertices, hull.vertices[0])
                ax.plot(uv[loop, 0], uv[loop, 1], color="#f5d000", lw=1.0)
        for side, out in posed.items():
            uv = project_points(out.joints[0].double(), K, w2c)[0].numpy()
            parents = list(MANO_PARENTS) + list(TIP_PARENTS)
            for child, parent in enumerate(parents):
                if parent >= 0:
                    ax.plot(uv[[parent, child], 0], uv[[parent, child], 1], color=SIDE_COLORS[side], lw=0.8)
            ax.scatter(uv[:, 0], uv[:, 1], s=4, color=SIDE_COLORS[side], zorder=3)
        ax.set_title(f"view {view} ({cam.width}×{cam.height})", fontsize=8)
        ax.set_xlim(0, cam.width)
        ax.set_ylim(cam.height, 0)
        ax.set_axis_off()
    for ax in axes.ravel()[len(views):]:
        ax.set_axis_off()
    fig.suptitle(f"{seq.name}, frame {frame}: joints (right red, left blue), object outline (yellow)", fontsize=9)
    fig.tight_layout()
    return fig


def contact_distances(seq: SequenceRecord, hands: dict[str, HandModel], distance: ObjectDistance) -> dict[str, np.ndarray]:
    """Per side, [F] signed distance (m) of the hand's closest vertex to the object (negative: the
    deepest penetration), from the annotations."""
    posed = posed_hands(seq, hands)
    return {side: distance.closest(result.vertices.double().numpy(), seq.object_pose) for side, result in posed.items()}


def joints_on_mask(seq: SequenceRecord, hands: dict[str, HandModel], frame: int, radius_px: int = 2) -> tuple[int, int]:
    """(joints landing on their own hand's mask within ``radius_px``, joints visible) over all views.

    A joint counts as visible when it projects inside the image and the mask there (within the radius)
    is not the object or the other hand, i.e. nothing occludes it; joints are inside the hand, so a
    visible one must fall on its hand's mask.
    """
    posed = posed_hands(seq, hands, [frame])
    hits = visible = 0
    for view in seq.views:
        mask = seq.mask(view, frame)
        if mask is None:
            continue
        cam = seq.camera(view, frame)
        for side, out in posed.items():
            own = MASK_LABELS[side]
            occluders = [MASK_LABELS["object"], MASK_LABELS["left" if side == "right" else "right"]]
            uv, _ = project_points(out.joints[0].double(), torch.as_tensor(cam.K), torch.as_tensor(cam.world2cam))
            for u, v in uv.numpy():
                col, row = int(np.floor(u)), int(np.floor(v))
                if not (0 <= col < cam.width and 0 <= row < cam.height):
                    continue
                window = mask[max(row - radius_px, 0):row + radius_px + 1, max(col - radius_px, 0):col + radius_px + 1]
                if np.isin(window, occluders).any():
                    continue
                visible += 1
                hits += bool((window == own).any())
    return hits, visible


def contact_histograms(distances_mm: np.ndarray, dpi: int) -> Figure:
    """Histograms of the closest hand-object distance and of the penetration depth (mm)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=dpi)
    near = distances_mm[distances_mm < 30]
    left.hist(near, bins=60, color="#4a7bb7")
    left.axvline(0, color="k", lw=0.8)
    left.axvline(3, color="#e8443a", lw=0.8, ls="--", label="3 mm contact")
    left.set_xlabel("closest hand vertex to object (mm, < 0 inside)")
    left.set_ylabel("hand-frames")
    left.legend(fontsize=8)
    depth = np.clip(-distances_mm[distances_mm < 3], 0, None)
    right.hist(depth, bins=40, color="#b74a4a")
    right.set_xlabel("penetration depth of hand-frames in contact (mm)")
    right.set_ylabel("hand-frames")
    fig.tight_layout()
    return fig


def dataset_summary(index: DatasetIndex, sequences: dict[str, SequenceRecord], hands: dict[str, HandModel],
                    objects: dict[str, ArticulatedObject]) -> tuple[dict, np.ndarray]:
    """Metrics of the data stage and the [hand-frames] closest-distance array (mm).

    Joint-on-mask agreement needs part masks (the embedded dataset and ARCTIC) and is checked at each
    sequence's middle frame.
    """
    metrics: dict = {"source": index.source, "splits": split_counts(index, sequences)}
    distances = []
    if objects:
        indexes = {name: ObjectDistance(obj) for name, obj in objects.items()}
        for seq in sequences.values():
            for values in contact_distances(seq, hands, indexes[seq.object_name]).values():
                distances.append(values)
    distances_mm = np.concatenate(distances) * 1000 if distances else np.zeros(0)
    if len(distances_mm):
        contact = distances_mm[distances_mm < 3]
        depth = np.clip(-contact, 0, None)
        metrics["contact"] = {
            "hand_frames": int(len(distances_mm)),
            "contact_rate": round(float(len(contact) / len(distances_mm)), 4),
            "penetration_mm_mean": round(float(depth.mean()), 3) if len(depth) else 0.0,
            "penetration_mm_p95": round(float(np.percentile(depth, 95)), 3) if len(depth) else 0.0,
            "penetration_mm_max": round(float(depth.max()), 3) if len(depth) else 0.0,
        }
    hits = visible = 0
    for seq in sequences.values():
        if seq.mask_file is not None:
            h, v = joints_on_mask(seq, hands, seq.frames // 2)
            hits, visible = hits + h, visible + v
    if visible:
        metrics["joints_on_mask_rate"] = round(hits / visible, 4)
    return metrics, distances_mm


# --------------------------------------------------------------------------- #
# The stage
# --------------------------------------------------------------------------- #
class Dataset(NamedTuple):
    """The dataset as the data stage read it back."""

    index: DatasetIndex
    sequences: dict[str, SequenceRecord]  # every sequence of every split, by name
    objects: dict[str, ArticulatedObject]  # the sequences' objects, by name


def build_dataset(cfg: DataConfig, seed: int, hands: dict[str, HandModel], paths: DataPaths) -> Dataset:
    """Generate the embedded dataset (resuming) or index the real one, write the index and read it all back."""
    if cfg.source == "embedded":
        generate(paths.embedded_root, cfg.embedded, seed)
    index_dataset(cfg, paths.embedded_root).save(paths.index_file)
    index = DatasetIndex.load(paths.index_file, hands)
    sequences = {name: index.read(name) for names in index.splits.values() for name in names}
    return Dataset(index, sequences, index.objects({s.object_name for s in sequences.values()}))


def save_contact_histograms(distances_mm: np.ndarray, cfg: DataReportConfig, report_dir: str | Path) -> Figure | None:
    """contact_histograms.png of the annotations' hand-object distances; None (nothing saved) without any."""
    if not len(distances_mm):
        return None
    return save_and_close(contact_histograms(distances_mm, cfg.dpi), Path(report_dir) / "contact_histograms.png")


def grasp_frame(seq: SequenceRecord) -> int:
    """The frame of the peak of the manipulation (the embedded sequences' timeline)."""
    return int(timeline(seq.frames)[1].argmax())


def save_contact_sheets(dataset: Dataset, hands: dict[str, HandModel], cfg: DataReportConfig,
                        report_dir: str | Path) -> list[Figure]:
    """contact_sheet_<k>.png of the grasp frame of each of the first ``cfg.sheet_sequences`` test sequences
    (none without object templates)."""
    figures = []
    for k, name in enumerate(dataset.index.sequences("test")[: cfg.sheet_sequences]):
        seq = dataset.sequences[name]
        if dataset.objects:
            sheet = contact_sheet(seq, grasp_frame(seq), hands, dataset.objects[seq.object_name], cfg.dpi)
            figures.append(save_and_close(sheet, Path(report_dir) / f"contact_sheet_{k}.png"))
    return figures


def run(params: dict, paths: DataPaths) -> dict:
    """The data stage as its notebook runs it: the dataset, its index, figures, metrics and timings;
    returns the metrics."""
    clock = StageClock()
    cfg = section(params, "data", DataConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    Path(paths.report_dir).mkdir(parents=True, exist_ok=True)
    dataset = build_dataset(cfg, params["seed"], hands, paths)
    summary, distances_mm = dataset_summary(dataset.index, dataset.sequences, hands, dataset.objects)
    save_contact_histograms(distances_mm, cfg.report, paths.report_dir)
    save_contact_sheets(dataset, hands, cfg.report, paths.report_dir)
    write_json(paths.metrics, summary)
    clock.write(paths.timings)
    return summary
