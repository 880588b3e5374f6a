"""What the augmentation makes: variants, the poses and cameras of every sample, and the shards.

Variants (``augment.variants``), each written to ``<out>/<variant>/``:

- ``full``: POM's poses rendered by the group's HOGS model and refined by the HOGS renders' SRM;
- ``no_srm``: the same renders unrefined;
- ``no_pom``: the group's original training poses (every frame of its train-split sequences with both
  hands annotated), rendered and refined as ``full``;
- ``3dgs``: POM's poses rendered by the point-cloud ablation's model and refined by its SRM;
- ``oracle``: POM's poses rendered by the embedded dataset's own ray tracer (``hogsa.data.meshrender``,
  the subject's skin, the object's texture, the dataset's light and shadows): a perfect renderer,
  which bounds what better Gaussians could gain (the embedded dataset only).

Variants that share work form one *family*, computed once: ``full`` and ``no_srm`` (one render, two
outputs). A shard is (family, group, a chunk of ``shard_poses`` poses of the group); it is the unit of
work, of atomic completion and of resume.

A sample is (group, pose, camera slot). Its camera and background come from generators of its key
(seed, group, pose id, slot) alone, so ``full``, ``no_srm``, ``3dgs`` and ``oracle`` show the same
pose from the same camera over the same background, and no sample depends on the executor, the
worker or the samples before it. Per pose, slots ``0 .. rig_views - 1`` take distinct training views
of the subject's rig (views in ``hogs.held_out_views`` are never used), the next ``novel_views``
slots a camera on a sphere around the interaction's centre: elevation and azimuth uniform in their
ranges (degrees; elevation above the horizontal, world z up), distance uniform in ``novel_distance``
(m), with the intrinsics and image size of a rig training view drawn for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from hogsa.articulated import ArticulatedObject
from hogsa.augment.backgrounds import JitterConfig
from hogsa.data.rig import look_at
from hogsa.data.schema import SIDES, Camera, SequenceRecord
from hogsa.hand import HandModel, hand_vertices
from hogsa.pom.grasps import Grasps, repeated
from hogsa.seeding import generator

VARIANTS = ("full", "no_srm", "no_pom", "3dgs", "oracle")
FAMILIES = {"hogs": ("full", "no_srm"), "hogs_original": ("no_pom",), "3dgs": ("3dgs",), "oracle": ("oracle",)}
FAMILY_OF = {variant: family for family, variants in FAMILIES.items() for variant in variants}
POM_FAMILIES = ("hogs", "3dgs", "oracle")  # families rendering POM's poses (the others: the original poses)
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class AugmentReportConfig:
    """params.yaml ``augment.report``."""

    dpi: int
    grid_samples: int  # samples per variant in the grid figure
    check_samples: int  # samples per variant whose masks are checked against the geometry


@dataclass(frozen=True)
class AugmentConfig:
    """params.yaml ``augment``."""

    variants: list[str]  # of VARIANTS
    executor: str  # "local" (worker processes) or "ray" (Ray tasks)
    workers: int  # local: processes; ray: CPUs of a local instance
    ray_address: str | None  # None: a local Ray instance; "ray://host:10001" joins a cluster
    ray_gpus_per_task: float  # GPU fraction a Ray task asks for on a GPU machine (0.25: four per GPU)
    shard_poses: int  # poses per shard
    batch_size: int  # samples per rasterizer and SRM call
    rig_views: int  # camera slots per pose taken from the rig's training views
    novel_views: int  # camera slots per pose on a sphere around the interaction
    novel_elevation_deg: list[float]  # [low, high]
    novel_azimuth_deg: list[float]  # [low, high]
    novel_distance: list[float]  # [low, high] metres
    image_size: int  # side of the written crops (the paper's 224)
    backgrounds: str | None  # folder of background images (COCO2017 train); None: the built-in set
    background_jitter: JitterConfig
    jpeg_quality: int
    report: AugmentReportConfig

    def __post_init__(self) -> None:
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown or not self.variants:
            raise ValueError(f"params.yaml: augment.variants = {self.variants}; expected a non-empty list of {VARIANTS}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"params.yaml: augment.executor = {self.executor!r}; expected one of {EXECUTORS}")
        for name in ("novel_elevation_deg", "novel_azimuth_deg", "novel_distance"):
            low_high = getattr(self, name)
            if len(low_high) != 2 or low_high[0] > low_high[1]:
                raise ValueError(f"params.yaml: augment.{name} = {low_high}; expected [low, high] with low <= high")
        if self.rig_views + self.novel_views < 1 or min(self.shard_poses, self.batch_size, self.workers) < 1:
            raise ValueError("params.yaml: augment needs rig_views + novel_views >= 1 and shard_poses, batch_size, "
                             "workers >= 1")

    @property
    def views_per_pose(self) -> int:
        return self.rig_views + self.novel_views

    def families(self) -> list[str]:
        """The families the variants need, in ``FAMILIES`` order."""
        return [f for f, members in FAMILIES.items() if set(members) & set(self.variants)]

    def family_variants(self, family: str) -> tuple[str, ...]:
        """The requested variants ``family`` writes."""
        return tuple(v for v in FAMILIES[family] if v in self.variants)


class PoseSet(NamedTuple):
    """The poses of one group one family renders: P grasps with an id and a plausibility record each."""

    grasps: Grasps
    ids: list[str]  # "pom:<row of poses.npz>" or "<sequence>:<frame>"
    plausibility: list[dict | None]  # POM's record of the pose; None for an original pose


def pom_pose_set(poses: Grasps, records: dict[str, np.ndarray], group: str) -> PoseSet:
    """POM's kept poses of ``group`` (rows of poses.npz in order) with their plausibility records."""
    rows = np.flatnonzero(poses.group == group)
    plausibility = [{k: _plain(v[r]) for k, v in records.items()} for r in rows]
    return PoseSet(poses.take(rows), [f"pom:{r}" for r in rows], plausibility)


def original_pose_set(sequences: list[SequenceRecord], group: str) -> PoseSet:
    """Every frame of the group's training sequences with both hands annotated."""
    parts, ids = [], []
    for seq in sequences:
        frames = np.flatnonzero(seq.hand_valid["right"] & seq.hand_valid["left"])
        parts.append(Grasps({s: seq.hands[s].take(frames) for s in SIDES}, seq.object_pose.take(frames),
                            repeated(seq.object_name, len(frames)), repeated(group, len(frames)),
                            np.array([f"{seq.name}:{f}" for f in frames])))
        ids += [f"{seq.name}:{f}" for f in frames]
    return PoseSet(Grasps.concatenate(parts), ids, [None] * len(ids))


class Shard(NamedTuple):
    family: str
    group: str
    start: int  # first pose of the chunk in the group's PoseSet
    stop: int

    @property
    def name(self) -> str:
        """File-name form: "<family>-<subject>_<object>-<start>"."""
        return f"{self.family}-{self.group.replace('/', '_')}-{self.start:05d}"


def shards(family: str, group: str, poses: int, shard_poses: int) -> list[Shard]:
    """The shards of ``poses`` poses of one group, ``shard_poses`` each (the last may hold fewer)."""
    return [Shard(family, group, start, min(start + shard_poses, poses)) for start in range(0, poses, shard_poses)]


class SampleCamera(NamedTuple):
    camera: Camera  # full-resolution camera; the crop's comes from it (``hogsa.data.crops``)
    kind: str  # "rig" or "novel"
    view: int | None  # the rig view a "rig" camera is, or whose intrinsics a "novel" one has


def training_views(cameras: list[Camera | None], held_out: list[int]) -> list[int]:
    """The rig's views a sample may be seen from: present and not held out."""
    views = [v for v, c in enumerate(cameras) if c is not None and v not in held_out and v != 0]
    if not views:
        raise ValueError(f"augment: the rig has no view outside hogs.held_out_views = {held_out}")
    return views


def pose_cameras(cameras: list[Camera | None], views: list[int], centre: np.ndarray, cfg: AugmentConfig, seed: int,
                 group: str, pose_id: str) -> list[SampleCamera]:
    """The ``views_per_pose`` cameras of one pose (module doc), from a generator of (group, pose)."""
    rng = generator(seed, "augment-cameras", group, pose_id)
    picked = rng.permutation(len(views))
    out = [SampleCamera(cameras[views[picked[k % len(views)]]], "rig", views[picked[k % len(views)]])
           for k in range(cfg.rig_views)]
    for _ in range(cfg.novel_views):
        elevation = np.radians(rng.uniform(*cfg.novel_elevation_deg))
        azimuth = np.radians(rng.uniform(*cfg.novel_azimuth_deg))
        distance = rng.uniform(*cfg.novel_distance)
        view = views[int(rng.integers(len(views)))]
        base = cameras[view]
        direction = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
        out.append(SampleCamera(Camera(K=base.K, world2cam=look_at(centre + distance * direction, centre),
                                       width=base.width, height=base.height), "novel", view))
    return out


@torch.no_grad()
def posed_points(grasps: Grasps, hands: dict[str, HandModel], obj: ArticulatedObject) -> np.ndarray:
    """[P, V, 3] world vertices of both hands and the object of every grasp (metres)."""
    parts = [hand_vertices(hands[side], grasps.hands[side]) for side in SIDES]
    parts.append(obj.pose(*grasps.object_pose.torch(torch.float64)).numpy())
    return np.concatenate(parts, axis=1)


def interaction_centre(points: np.ndarray) -> np.ndarray:
    """[3] centre of the bounding box of one sample's points [V, 3]."""
    return (points.min(axis=0) + points.max(axis=0)) / 2


def _plain(value: np.generic) -> float | bool:
    """A record's numpy scalar as a JSON value."""
    return bool(value) if isinstance(value, np.bool_) else float(value)
