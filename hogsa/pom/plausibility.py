"""Plausibility of bimanual grasps: a per-sample record from exact geometry and a filter.

The record is measured independently of the optimiser's losses: signed distances of the hand
vertices to the object (``hogsa.data.contact.ObjectDistance``: dense surface samples and ray parity),
ray-parity inside tests of posed meshes and voxel intersection volumes (``hogsa.pom.contact``).
Per hand: the gap (closest vertex's signed distance), the deepest hand vertex inside the object, the
deepest object surface point inside the hand, the hand ∩ object volume and whether it touches the
object; per sample: the right ∩ left hand volume.

The filter (REFERENCES §8, GraspTTA's): each hand's intersection volume with the object below
``max_volume`` (4e-6 m³ with 5 mm voxels), each hand touching the object (a vertex within
``contact_distance`` = 5 mm of it or inside it) and the hands' mutual volume at most
``max_hand_hand_volume``. Failing samples are dropped; ``filter_grasps`` says how many and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hogsa.articulated import ArticulatedObject
from hogsa.data.contact import ObjectDistance, Solid
from hogsa.data.schema import SIDES
from hogsa.hand import HandModel, hand_vertices
from hogsa.pom.contact import SurfaceSamples, hand_object_contact, intersection_volume
from hogsa.pom.grasps import Grasps

M_TO_MM = 1000.0
M3_TO_CM3 = 1e6


@dataclass(frozen=True)
class PlausibilityConfig:
    """params.yaml ``pom.plausibility`` (defaults from REFERENCES §8)."""

    max_volume: float  # m³ per hand ∩ object (GraspTTA: 4e-6)
    contact_distance: float  # m: a hand touches when a vertex is this close or inside (5 mm)
    max_hand_hand_volume: float  # m³ right ∩ left
    voxel: float  # m: voxel size of the volumes (GraspTTA: 5 mm)
    object_samples: int  # surface samples of the object tested against the hand


def plausibility_records(grasps: Grasps, hands: dict[str, HandModel], obj: ArticulatedObject,
                         distance: ObjectDistance, cfg: PlausibilityConfig) -> dict[str, np.ndarray]:
    """Per-sample record of grasps of object ``obj``: {column: [S] array}, lengths in mm, volumes in cm³.

    Columns: ``<side>_gap_mm``, ``<side>_hand_depth_mm``, ``<side>_object_depth_mm``,
    ``<side>_depth_mm`` (the larger of the two depths), ``<side>_volume_cm3``, ``<side>_contact`` for
    both sides, ``hand_hand_volume_cm3`` and ``passes`` (the filter).
    """
    if set(grasps.object_name) - {obj.name}:
        raise ValueError(f"plausibility_records: grasps of {sorted(set(grasps.object_name))}, expected only {obj.name!r}")
    count = len(grasps)
    samples = SurfaceSamples(obj, cfg.object_samples, seed=0)
    pose = grasps.object_pose
    with torch.no_grad():
        object_points, _ = samples.pose(*pose.torch(torch.float64))
        object_verts = obj.pose(*pose.torch(torch.float64)).numpy()
    verts = {side: hand_vertices(hands[side], grasps.hands[side]) for side in SIDES}
    faces = {side: hands[side].faces.numpy() for side in SIDES}
    record = {f"{side}_{key}": np.zeros(count) for side in SIDES
              for key in ("gap_mm", "hand_depth_mm", "object_depth_mm", "depth_mm", "volume_cm3")}
    record.update({f"{side}_contact": np.zeros(count, bool) for side in SIDES})
    record["hand_hand_volume_cm3"] = np.zeros(count)
    for k in range(count):
        solid = Solid(object_verts[k], obj.faces.numpy())
        hand_solids = {}
        for side in SIDES:
            hand_solids[side] = Solid(verts[side][k], faces[side])
            signed = distance(verts[side][k], pose.articulation[k], pose.rot[k], pose.transl[k])
            measure = hand_object_contact(hand_solids[side], solid, signed, object_points[k].numpy(), cfg.voxel)
            record[f"{side}_gap_mm"][k] = measure.gap * M_TO_MM
            record[f"{side}_hand_depth_mm"][k] = measure.hand_depth * M_TO_MM
            record[f"{side}_object_depth_mm"][k] = measure.object_depth * M_TO_MM
            record[f"{side}_depth_mm"][k] = max(measure.hand_depth, measure.object_depth) * M_TO_MM
            record[f"{side}_volume_cm3"][k] = measure.volume * M3_TO_CM3
            record[f"{side}_contact"][k] = measure.gap <= cfg.contact_distance
        shared = intersection_volume(hand_solids["right"], hand_solids["left"], cfg.voxel)
        record["hand_hand_volume_cm3"][k] = shared * M3_TO_CM3
    record["passes"] = passes(record, cfg)
    return record


def failures(record: dict[str, np.ndarray], cfg: PlausibilityConfig) -> dict[str, np.ndarray]:
    """Per criterion of the filter (module doc), [S] bool: the samples that fail it."""
    failed = {}
    for side in SIDES:
        failed[f"{side}_volume"] = record[f"{side}_volume_cm3"] >= cfg.max_volume * M3_TO_CM3
        failed[f"{side}_no_contact"] = ~record[f"{side}_contact"]
    failed["hand_hand_volume"] = record["hand_hand_volume_cm3"] > cfg.max_hand_hand_volume * M3_TO_CM3
    return failed


def passes(record: dict[str, np.ndarray], cfg: PlausibilityConfig) -> np.ndarray:
    """[S] bool: the samples that fail no criterion of the filter."""
    return ~np.any(list(failures(record, cfg).values()), axis=0)


def failure_counts(record: dict[str, np.ndarray], cfg: PlausibilityConfig) -> dict[str, int]:
    """How many samples fail each criterion (a sample may fail several) and in all."""
    counts = {"total": int(len(record["passes"])), "failed": int((~record["passes"]).sum())}
    return counts | {name: int(failed.sum()) for name, failed in failures(record, cfg).items()}


def filter_grasps(grasps: Grasps, record: dict[str, np.ndarray]) -> tuple[Grasps, int]:
    """The passing samples and the number dropped."""
    keep = record["passes"]
    return grasps.take(keep), int((~keep).sum())


def plausibility_summary(record: dict[str, np.ndarray]) -> dict[str, float]:
    """Means over samples and both hands: penetration depth (mm), hand→object depth, object→hand
    depth, volume (cm³), contact rate, and the pass rate."""
    def both(key: str) -> np.ndarray:  # [2S] the column of both hands
        return np.concatenate([record[f"{s}_{key}"] for s in SIDES]).astype(float)

    return {
        "penetration_mm": float(both("depth_mm").mean()),
        "hand_in_object_mm": float(both("hand_depth_mm").mean()),
        "object_in_hand_mm": float(both("object_depth_mm").mean()),
        "volume_cm3": float(both("volume_cm3").mean()),
        "contact_rate": float(both("contact").mean()),
        "hand_hand_volume_cm3": float(record["hand_hand_volume_cm3"].mean()),
        "pass_rate": float(record["passes"].mean()),
    }
