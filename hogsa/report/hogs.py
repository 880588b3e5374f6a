"""The hogs stage: train (or resume) HOGS and its 3DGS ablation per group, score both on the held-out
crops, and draw them: held-out renders beside the ground truth, a 360° orbit and novel poses.

Scores are the mean over groups of each group's held-out mean (PSNR and SSIM on the whole crop, black
background), at the corrected poses (``psnr``, ``ssim``, ``lpips``) and at the annotated ones
(``*_annotated_poses``); per group, per subset and the RMS pose corrections under ``groups``. Figures
are rendered at the crops' resolution (``hogs.crop``) with ``hogs.report``'s cameras.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from hogsa.articulated import ObjectPose
from hogsa.config import section
from hogsa.data.dataset import DatasetIndex
from hogsa.data.groups import GroupData, Sample, frame_poses, load_group, resolve_groups
from hogsa.data.rig import camera_ring
from hogsa.data.schema import Camera, SequenceRecord
from hogsa.hand import HandConfig, HandModel, HandPose, hand_models
from hogsa.hogs.evaluate import corrected_group, evaluate_held_out, held_out_subsets
from hogsa.hogs.model import GaussianScene
from hogsa.hogs.train import KINDS, HOGSConfig, TrainedScene, export_scene, train_hogs
from hogsa.io import write_json
from hogsa.metrics.image import LPIPS
from hogsa.report.outputs import StageClock, save_and_close
from hogsa.report.paths import HogsPaths

FRAMING_QUANTILE = 0.98  # of the Gaussians' distances to the interaction's centre: the radius framed
FRAMING_MARGIN = 1.15  # the framed radius fills 1 / margin of the half field of view


class HogsInputs(NamedTuple):
    cfg: HOGSConfig
    seed: int
    hands: dict[str, HandModel]
    index: DatasetIndex
    groups: list[str]  # "sXX/<object>"
    lpips: LPIPS | None  # None: LPIPS is "not computed"
    params: dict  # the whole parameter set (worker processes rebuild the rest from it)
    index_file: str


class GroupResult(NamedTuple):
    data: GroupData
    scenes: dict[str, TrainedScene]  # by kind (KINDS)
    scores: dict[str, dict]  # by kind: corrected_poses and annotated_poses (evaluate_held_out), pose_corrections


def read_inputs(params: dict, paths: HogsPaths) -> HogsInputs:
    """The stage's settings, hands, dataset index and groups; makes the report folder."""
    cfg = section(params, "hogs", HOGSConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    index = DatasetIndex.load(paths.index_file, hands)
    groups = resolve_groups(cfg.groups, index)
    lpips = LPIPS.from_file(cfg.lpips_weights) if cfg.lpips_weights else None
    Path(paths.report_dir).mkdir(parents=True, exist_ok=True)
    return HogsInputs(cfg, params["seed"], hands, index, groups, lpips, params, str(paths.index_file))


def group_slug(group: str) -> str:
    """``sXX/<object>`` as a file-name part: ``sXX_<object>``."""
    return group.replace("/", "_")


def train_group(inputs: HogsInputs, group: str, models_dir: str | Path) -> GroupResult:
    """Train (or resume, or load) both kinds of model of ``group`` in ``models_dir/<group>/<kind>`` and
    score them on the held-out crops; the HOGS model's first training frame is exported for bench/render.py."""
    cfg = inputs.cfg
    data = load_group(cfg, inputs.index, inputs.hands, group)
    scenes, scores = {}, {}
    for kind in KINDS:
        out_dir = Path(models_dir) / group_slug(group) / kind
        model, poses = scenes[kind] = train_hogs(cfg, data, kind, out_dir, inputs.seed)
        scores[kind] = {
            "corrected_poses": evaluate_held_out(model, corrected_group(data, poses), cfg, inputs.lpips).as_metrics(),
            "annotated_poses": evaluate_held_out(model, data, cfg, inputs.lpips).as_metrics(),
            "pose_corrections": poses.magnitudes(),
        }
        if kind == "hogs":
            export_scene(scenes[kind], data.train[0], out_dir / "scene.safetensors")
    return GroupResult(data, scenes, scores)


def train_groups(inputs: HogsInputs, models_dir: str | Path) -> dict[str, GroupResult]:
    """``train_group`` of every group, in ``inputs.groups`` order. With ``hogs.workers`` > 1 the models
    are first trained by that many processes of one thread each (``train_in_workers``)."""
    if inputs.cfg.workers > 1:
        train_in_workers(inputs, models_dir)
    return {group: train_group(inputs, group, models_dir) for group in inputs.groups}


def train_in_workers(inputs: HogsInputs, models_dir: str | Path) -> None:
    """Train (or resume) every (group, kind) model in ``hogs.workers`` spawned processes, one torch
    thread each: a training step is mostly small operations that one core runs as fast as two, so two
    models at a time train nearly twice as fast. Each model gets a fresh process (``maxtasksperchild=1``):
    the compiled kernels (``hogsa.compiled``, dynamic shapes) specialise on the sizes they first see, so a
    process that had trained another model first could round one model's steps differently."""
    jobs = [(inputs.params, inputs.index_file, str(models_dir), group, kind) for group in inputs.groups
            for kind in KINDS]
    context = multiprocessing.get_context("spawn")
    with context.Pool(inputs.cfg.workers, initializer=torch.set_num_threads, initargs=(1,),
                      maxtasksperchild=1) as pool:
        for _ in pool.imap_unordered(_train_job, jobs):
            pass


def _train_job(job: tuple[dict, str, str, str, str]) -> None:
    """Train the ``kind`` model of ``group``: job = (params, index file, models folder, group, kind)."""
    params, index_file, models_dir, group, kind = job
    cfg = section(params, "hogs", HOGSConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    data = load_group(cfg, DatasetIndex.load(index_file, hands), hands, group)
    train_hogs(cfg, data, kind, Path(models_dir) / group_slug(group) / kind, params["seed"])


def mean_over_groups(results: dict[str, GroupResult], kind: str, poses: str, metric: str) -> float | str:
    """Mean over groups of the held-out ``metric`` of ``kind`` at ``poses``; a text value (LPIPS "not
    computed") is passed through."""
    values = [result.scores[kind][poses]["held_out"][metric] for result in results.values()]
    return float(np.mean(values)) if all(isinstance(v, float) for v in values) else values[0]


def hogs_summary(results: dict[str, GroupResult]) -> dict:
    """reports/metrics/hogs.json (module docstring)."""
    summary: dict = {}
    for kind in KINDS:
        corrected = {metric: mean_over_groups(results, kind, "corrected_poses", metric)
                     for metric in ("psnr", "ssim", "lpips")}
        annotated = {f"{metric}_annotated_poses": mean_over_groups(results, kind, "annotated_poses", metric)
                     for metric in ("psnr", "ssim")}
        summary[kind] = corrected | annotated
    summary["groups"] = {group: {kind: result.scores[kind] for kind in KINDS} for group, result in results.items()}
    return summary


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #
def render_image(model: GaussianScene, camera: Camera, right: HandPose, left: HandPose,
                 obj: ObjectPose) -> np.ndarray:  # [H, W, 3] in [0, 1]
    with torch.no_grad():
        return model.render(camera, right, left, obj).rgb.clamp(0, 1).permute(1, 2, 0).numpy()


def image_grid(rows: dict[str, list[np.ndarray]], titles: list[str], image_inches: float) -> Figure:
    """One row of [H, W, 3] images per entry of ``rows``, labelled with its key; ``titles`` over the first."""
    n_cols = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(image_inches * n_cols, image_inches * len(rows)),
                             squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c])
            if titles and r == 0:
                ax.set_title(titles[c], fontsize=7)
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


def spread(samples: list[Sample], count: int) -> list[Sample]:
    """``count`` of ``samples`` evenly spread from the first to the last (none of none)."""
    if not samples:
        return []
    return [samples[i] for i in np.linspace(0, len(samples) - 1, count).round().astype(int)]


def held_out_figure(result: GroupResult, cfg: HOGSConfig) -> Figure:
    """Held-out crops, novel views then novel poses: the ground truth, then each kind's render at its
    corrected poses."""
    subsets = held_out_subsets(result.data, cfg)
    picks = [s for name in ("novel_views", "novel_poses") for s in spread(subsets[name], cfg.report.held_out_shown)]
    rows = {"ground truth": [s.image.permute(1, 2, 0).numpy() for s in picks]}
    for kind in KINDS:
        model, poses = result.scenes[kind]
        rows[kind] = [render_image(model, s.camera, *poses.apply((s.sequence, s.frame), s.right, s.left, s.obj))
                      for s in picks]
    titles = [f"{s.sequence.split('/', 1)[1]} v{s.view} f{s.frame}" for s in picks]  # ARCTIC: <seq>; H2O: <scene>/<seq>
    return image_grid(rows, titles, cfg.report.image_inches)


def corrected_frame_poses(scene: TrainedScene, seq: SequenceRecord, frame: int) -> tuple[HandPose, HandPose, ObjectPose]:
    """The annotated poses of ``frame`` of ``seq`` with ``scene``'s correction of that frame."""
    with torch.no_grad():
        return scene.poses.apply((seq.name, frame), *frame_poses(seq, frame))


def framing(model: GaussianScene, poses: tuple[HandPose, HandPose, ObjectPose],
            fov_deg: float) -> tuple[np.ndarray, float]:
    """[3] centre of the interaction (metres) and a camera distance that fits it in the field of view."""
    center = model.center(*poses)
    with torch.no_grad():
        means = torch.cat([g.means for g in model.posed_gaussians(*poses).values()])
    radius = float((means - center).norm(dim=-1).quantile(FRAMING_QUANTILE))
    return center.numpy(), FRAMING_MARGIN * radius / np.tan(np.radians(fov_deg) / 2)


def orbit_figure(result: GroupResult, cfg: HOGSConfig) -> Figure:
    """A 360° orbit around the middle frame of the group's first sequence, one row per kind."""
    report, size = cfg.report, cfg.crop
    seq = result.data.sequences[0]
    frame = seq.frames // 2
    center, radius = framing(result.scenes["hogs"].model, corrected_frame_poses(result.scenes["hogs"], seq, frame),
                             report.orbit_fov_deg)
    cameras = camera_ring(center, radius, [(size, size)] * report.orbit_views, report.orbit_fov_deg,
                          (report.orbit_elevation_deg,), 0.0)
    rows = {}
    for kind in KINDS:
        scene = result.scenes[kind]
        poses = corrected_frame_poses(scene, seq, frame)
        rows[kind] = [render_image(scene.model, camera, *poses) for camera in cameras]
    titles = [f"{360 * k // report.orbit_views}°" for k in range(report.orbit_views)]
    return image_grid(rows, titles, report.image_inches)


def novel_poses_figure(result: GroupResult, cfg: HOGSConfig) -> Figure:
    """Columns: the recorded middle frame, both hands of frame 0 over the recorded object, the object
    opened by ``hogs.report.object_opening``; rows: each kind from two cameras half a turn apart."""
    report, size = cfg.report, cfg.crop
    seq = result.data.sequences[0]
    frame = seq.frames // 2
    rows = {}
    for kind in KINDS:
        scene = result.scenes[kind]
        right, left, obj = corrected_frame_poses(scene, seq, frame)
        first_right, first_left, _ = corrected_frame_poses(scene, seq, 0)
        opened = dataclasses.replace(obj, articulation=obj.articulation + report.object_opening)
        variants = {"recorded": (right, left, obj), "hands of frame 0": (first_right, first_left, obj),
                    f"opened +{report.object_opening:g} rad": (right, left, opened)}
        center, radius = framing(result.scenes["hogs"].model, (right, left, obj), report.orbit_fov_deg)
        cameras = camera_ring(center, radius, [(size, size)] * 2, report.orbit_fov_deg,
                              (report.novel_poses_elevation_deg,), 0.0)
        for c, camera in enumerate(cameras):
            rows[f"{kind} {180 * c}°"] = [render_image(scene.model, camera, *pose) for pose in variants.values()]
    return image_grid(rows, list(variants), report.image_inches)


FIGURES = {"held_out": held_out_figure, "orbit": orbit_figure, "novel_poses": novel_poses_figure}


def save_group_figures(name: str, results: dict[str, GroupResult], cfg: HOGSConfig,
                       report_dir: str | Path) -> list[Figure]:
    """Figure ``name`` (of ``FIGURES``) of every group, saved as ``report_dir/<name>_<group>.png``."""
    return [save_and_close(FIGURES[name](result, cfg), Path(report_dir) / f"{name}_{group_slug(group)}.png",
                           cfg.report.dpi)
            for group, result in results.items()]


def run(params: dict, paths: HogsPaths) -> dict:
    """The hogs stage as its notebook runs it: models, metrics, figures and timings; returns the metrics."""
    clock = StageClock()
    inputs = read_inputs(params, paths)
    results = train_groups(inputs, paths.models_dir)
    summary = hogs_summary(results)
    write_json(paths.metrics, summary)
    for name in FIGURES:
        save_group_figures(name, results, inputs.cfg, paths.report_dir)
    clock.write(paths.timings)
    return summary
