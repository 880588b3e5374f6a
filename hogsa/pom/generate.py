"""The POM stage's work: dataset grasps → perturbed initial poses → optimised poses → plausibility.

``read_grasps`` takes a split's bimanual grasp frames; ``generate_poses`` starts ``samples_per_grasp``
samples from every training grasp frame, perturbs each with draws of its own, optimises both hands
and measures every sample before and after; the stage (``hogsa.report.pom``) filters, saves and
reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from hogsa.articulated import ArticulatedObject
from hogsa.data.contact import ObjectDistance
from hogsa.data.dataset import DatasetIndex
from hogsa.hand import HandModel
from hogsa.pom.contact import ObjectOccupancy
from hogsa.pom.contactnet import ContactNet, object_surfaces
from hogsa.pom.grasps import Grasps, from_sequences
from hogsa.pom.optimize import OptimizeConfig, optimize_grasps
from hogsa.pom.perturb import PerturbConfig, perturb
from hogsa.pom.plausibility import PlausibilityConfig, plausibility_records
from hogsa.seeding import generator
from hogsa.training import deterministic_algorithms
from hogsa.workers import map_single_threaded


@dataclass(frozen=True)
class PomReportConfig:
    """params.yaml ``pom.report``."""

    dpi: int
    renders: int  # samples shown before and after optimisation
    render_size: int  # pixels per view


@dataclass(frozen=True)
class PomConfig:
    """params.yaml ``pom``."""

    samples_per_grasp: int  # perturbed initial poses started from each training grasp frame
    workers: int  # processes optimising objects at once, one torch thread each (1: in the stage's process)
    object_points: int  # contact-map samples per object (ContactNet's input)
    dense_points: int  # dense surface samples giving the depth of hand vertices inside the object
    occupancy_voxel: float  # m: occupancy grid of the object's inside test during optimisation
    contact_distance: float  # m: dataset frames whose both hands are this close to the object are grasps
    perturb: PerturbConfig
    optimize: OptimizeConfig
    plausibility: PlausibilityConfig
    report: PomReportConfig


def read_grasps(index: DatasetIndex, split: str, hands: dict[str, HandModel], contact_distance: float
                ) -> tuple[Grasps, dict[str, ArticulatedObject]]:
    """The bimanual grasp frames of ``split`` and the objects they hold."""
    sequences = [index.read(name) for name in index.sequences(split)]
    objects = index.objects({s.object_name for s in sequences})
    return from_sequences(sequences, hands, objects, contact_distance), objects


def merged(records: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One record of per-sample columns: each column of ``records`` concatenated in order."""
    return {k: np.concatenate([r[k] for r in records]) for k in records[0]}


class GeneratedPoses(NamedTuple):
    """Every sample of ``generate_poses``, before and after the optimisation (S samples in all)."""

    initial: Grasps  # the perturbed initial poses
    optimised: Grasps  # the same samples after optimisation
    before: dict[str, np.ndarray]  # plausibility record of the initial poses
    after: dict[str, np.ndarray]  # plausibility record of the optimised poses
    terms: dict[str, np.ndarray]  # mean loss terms per step, averaged over objects by sample count
    optimise_seconds: float  # summed over the objects (worker processes run objects at once)


class ObjectPoses(NamedTuple):
    """``object_poses``'s samples of one object."""

    initial: Grasps
    optimised: Grasps
    before: dict[str, np.ndarray]
    after: dict[str, np.ndarray]
    terms: dict[str, np.ndarray]  # mean loss terms per step over the object's samples
    optimise_seconds: float


@deterministic_algorithms()
def object_poses(name: str, obj: ArticulatedObject, train: Grasps, hands: dict[str, HandModel], net: ContactNet,
                 hand_subset: torch.Tensor, cfg: PomConfig, seed: int) -> ObjectPoses | None:
    """``samples_per_grasp`` copies of each training grasp of object ``name``, each perturbed by draws of
    its own, optimised and measured; None when the object has no training grasp. The random choices
    come from a generator of the object's name, and the optimisation runs with deterministic
    algorithms: the same inputs on the same number of threads give the same poses to the bit, in any
    process."""
    rng = generator(seed, "pom", name)
    pool = np.flatnonzero(train.object_name == name)
    if not len(pool):
        return None
    init = perturb(train.take(np.repeat(pool, cfg.samples_per_grasp)), hands, obj, cfg.perturb, rng)
    surface = object_surfaces({name: obj}, cfg.object_points, seed)[name]
    dense = object_surfaces({name: obj}, cfg.dense_points, seed + 1)[name]
    tic = time.perf_counter()
    result = optimize_grasps(init, hands, obj, surface, dense, ObjectOccupancy(obj, cfg.occupancy_voxel), net,
                             hand_subset, cfg.optimize)
    seconds = time.perf_counter() - tic
    distance = ObjectDistance(obj)
    return ObjectPoses(init, result.grasps, plausibility_records(init, hands, obj, distance, cfg.plausibility),
                       plausibility_records(result.grasps, hands, obj, distance, cfg.plausibility), result.terms,
                       seconds)


def _object_job(job: tuple) -> ObjectPoses | None:
    return object_poses(*job)


def generate_poses(train: Grasps, hands: dict[str, HandModel], objects: dict[str, ArticulatedObject], net: ContactNet,
                   hand_subset: torch.Tensor, cfg: PomConfig, seed: int) -> GeneratedPoses:
    """``object_poses`` of every object, in name order, by ``cfg.workers`` spawned processes of one
    torch thread each (``hogsa.workers``: the optimisation is mostly small operations and single-threaded
    searches, which one core runs as fast as two); the result does not depend on the number of workers."""
    jobs = [(name, obj, train, hands, net, hand_subset, cfg, seed) for name, obj in sorted(objects.items())]
    parts = map_single_threaded(_object_job, jobs, cfg.workers)
    parts = [part for part in parts if part is not None]
    if not parts:
        raise ValueError("generate_poses: the training split holds no grasp of any object")
    total = sum(len(p.initial) for p in parts)
    terms = {k: np.sum([p.terms[k] * len(p.initial) for p in parts], axis=0) / total for k in parts[0].terms}
    return GeneratedPoses(Grasps.concatenate([p.initial for p in parts]), Grasps.concatenate([p.optimised for p in parts]),
                          merged([p.before for p in parts]), merged([p.after for p in parts]), terms,
                          sum(p.optimise_seconds for p in parts))
