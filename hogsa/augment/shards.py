"""Running one shard: its samples rendered, composited, cropped and written, then recorded.

Each sample is written in the ARCTIC layout (``hogsa.data.arctic_writer``) as a sequence of one frame,
``<subject>/<object>_aug<pose>_<slot>``, seen by view 0 (ARCTIC's egocentric view, the one with a
camera per sequence and frame): the image is view 0's JPEG, the part mask its PNG, the crop's
intrinsics and extrinsics view 0's camera, the pose the sequence's MANO and object parameters. Every
file is written atomically. When all files of the shard's variants are written, a record of the shard
(its samples' manifest lines and its dropped samples) is written, atomically, to
``<variant>/shards/<shard>.json``: a shard with records is finished, and a rerun skips it. A shard
killed half-way is redone from the start and writes the same bytes over what it had written.

Work that does not change within a process (models, SRMs, pose sets, backgrounds) is loaded once per
process (``ShardContext``) for all the shards that process runs.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from hogsa.augment.backgrounds import BackgroundBank
from hogsa.augment.plan import (FAMILIES, POM_FAMILIES, AugmentConfig, PoseSet, SampleCamera, Shard, interaction_centre,
                                original_pose_set, pom_pose_set, pose_cameras, posed_points, training_views)
from hogsa.augment.render import Layers, composite, gaussian_layers, labels, oracle_layers, to_uint8
from hogsa.config import section
from hogsa.data.arctic_writer import write_sequence
from hogsa.data.crops import box_from_points, crop_camera
from hogsa.data.dataset import DatasetIndex
from hogsa.data.groups import load_group
from hogsa.data.schema import EGO_VIEW, NUM_VIEWS, SIDES, Camera, SequenceRecord
from hogsa.hand import HandConfig, HandModel, hand_models
from hogsa.hogs.model import GaussianScene
from hogsa.hogs.train import HOGSConfig, Kind, load_trained
from hogsa.io import write_json
from hogsa.pom.grasps import Grasps, load_records
from hogsa.seeding import generator
from hogsa.srm.pairs import model_path
from hogsa.srm.styleunet import StyleUNet
from hogsa.srm.train import CHECKPOINT as SRM_CHECKPOINT, SRMConfig
from hogsa.training import ITERATION, checkpoint_metadata, load_checkpoint

SHARDS_DIR = "shards"
OUT_OF_VIEW = "out_of_view"  # a dropped sample's reason: no vertex of the grasp projects into the camera


@dataclass(frozen=True)
class AugmentInputs:
    """Where a shard reads from and writes to (the augment stage's paths)."""

    index_file: str
    poses_file: str  # the pom stage's kept poses
    models_dir: str  # the hogs stage's models
    srm_dir: str  # the srm stage's SRMs
    out_dir: str  # one folder per variant


@dataclass(frozen=True)
class ShardJob:
    """One shard and everything needed to run it in any process: picklable, and what a Ray task takes."""

    params_json: str  # the study's parameters, as JSON (sorted keys)
    inputs: AugmentInputs
    shard: Shard


def sample_name(subject: str, obj: str, pose: int, slot: int) -> str:
    """The ARCTIC sequence name of the sample at ``slot`` of the group's pose number ``pose``."""
    return f"{subject}/{obj}_aug{pose:05d}_{slot:02d}"


def record_path(out_dir: str | Path, variant: str, shard: Shard) -> Path:
    return Path(out_dir) / variant / SHARDS_DIR / f"{shard.name}.json"


def is_finished(out_dir: str | Path, cfg: AugmentConfig, shard: Shard) -> bool:
    """Whether every variant of the shard's family has its record."""
    return all(record_path(out_dir, v, shard).is_file() for v in cfg.family_variants(shard.family))


class ShardContext:
    """What the shards of one study share, loaded on first use in each process."""

    def __init__(self, params_json: str, inputs: AugmentInputs) -> None:
        self.params = json.loads(params_json)
        self.inputs = inputs
        self.cfg = section(self.params, "augment", AugmentConfig)
        self.hogs_cfg = section(self.params, "hogs", HOGSConfig)
        self.seed = int(self.params["seed"])
        self.hands = hand_models(section(self.params, "hand", HandConfig))
        self.index = DatasetIndex.load(inputs.index_file, self.hands)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.backgrounds = BackgroundBank(self.cfg.backgrounds, self.cfg.background_jitter)

    @functools.cached_property
    def pom_poses(self) -> tuple[Grasps, dict[str, np.ndarray]]:
        return Grasps.load(self.inputs.poses_file), load_records(self.inputs.poses_file)

    @functools.lru_cache(maxsize=None)
    def pose_set(self, family: str, group: str) -> PoseSet:
        if family in POM_FAMILIES:
            return pom_pose_set(*self.pom_poses, group)
        return original_pose_set(self.index.group_sequences(group, "train"), group)

    @functools.lru_cache(maxsize=None)
    def group_sequences(self, group: str) -> list[SequenceRecord]:
        return self.index.group_sequences(group, "train")

    @functools.lru_cache(maxsize=2)
    def model(self, group: str, kind: Kind) -> GaussianScene:
        data = load_group(self.hogs_cfg, self.index, self.hands, group)
        model, _ = load_trained(self.hogs_cfg, data, kind, model_path(self.inputs.models_dir, group, kind), self.seed)
        return model.to(self.device)

    @functools.lru_cache(maxsize=None)
    def srm(self, kind: Kind) -> StyleUNet:
        cfg = section(self.params, "srm", SRMConfig)
        return load_srm_generator(cfg, Path(self.inputs.srm_dir) / kind / SRM_CHECKPOINT).to(self.device)

    @functools.lru_cache(maxsize=None)
    def oracle_renderer(self, group: str):
        from hogsa.augment.oracle import oracle_renderer  # the embedded dataset's renderer
        return oracle_renderer(self.params, group, self.hands, self.index.object(self.group_sequences(group)[0].object_name))


@functools.lru_cache(maxsize=4)
def shard_context(params_json: str, inputs: AugmentInputs) -> ShardContext:
    return ShardContext(params_json, inputs)


def load_srm_generator(cfg: SRMConfig, path: Path) -> StyleUNet:
    """The generator of the SRM the srm stage finished training at ``path``; raises naming the file when
    there is none or it is unfinished."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained SRM; run the srm stage")
    done = int(checkpoint_metadata(path).get(ITERATION, 0))
    if done != cfg.iterations:
        raise ValueError(f"{path}: SRM training stopped at iteration {done} of {cfg.iterations}; run the srm stage")
    generator = StyleUNet(cfg.generator)
    load_checkpoint(path, {f"generator/{name}": p for name, p in generator.named_parameters()})
    return generator.eval()



class Planned(NamedTuple):
    """A sample of a shard whose grasp is in view: its pose, slot, camera and crop cameras."""

    pose: int  # index in the group's PoseSet
    slot: int
    camera: SampleCamera
    render_camera: Camera  # the crop at the models' crop size (Gaussians) or at twice the written size (oracle)
    image_camera: Camera  # the written crop's camera


def plan_shard(ctx: ShardContext, shard: Shard) -> tuple[list[Planned], int]:
    """The shard's samples in (pose, slot) order, and how many were dropped out of view."""
    cfg = ctx.cfg
    poses = ctx.pose_set(shard.family, shard.group)
    seq = ctx.group_sequences(shard.group)[0]
    obj = ctx.index.object(seq.object_name)
    views = training_views(seq.cameras, ctx.hogs_cfg.held_out_views)
    render_size = 2 * cfg.image_size if shard.family == "oracle" else ctx.hogs_cfg.crop
    chosen = np.arange(shard.start, shard.stop)
    points = posed_points(poses.grasps.take(chosen), ctx.hands, obj)
    planned, dropped = [], 0
    for pose, pts in zip(chosen, points):
        cameras = pose_cameras(seq.cameras, views, interaction_centre(pts), cfg, ctx.seed, shard.group, poses.ids[pose])
        for slot, camera in enumerate(cameras):
            box = box_from_points(pts, camera.camera, ctx.hogs_cfg.crop_margin)
            if box is None:
                dropped += 1
                continue
            planned.append(Planned(int(pose), slot, camera, crop_camera(camera.camera, box, render_size),
                                   crop_camera(camera.camera, box, cfg.image_size)))
    return planned, dropped


def family_layers(ctx: ShardContext, shard: Shard, batch: list[Planned], grasps: Grasps) -> dict[str, Layers]:
    """{variant: layers at the written size} of one batch, for the shard's family's variants."""
    size = ctx.cfg.image_size
    cameras = [p.render_camera for p in batch]
    if shard.family == "oracle":
        ids = ctx.pose_set(shard.family, shard.group).ids
        seeds = [int(generator(ctx.seed, "oracle-shadows", shard.group, ids[p.pose], p.slot).integers(2**31))
                 for p in batch]
        return {"oracle": oracle_layers(ctx.oracle_renderer(shard.group), grasps, cameras, seeds).resized(size)}
    kind = "3dgs" if shard.family == "3dgs" else "hogs"
    raw = gaussian_layers(ctx.model(shard.group, kind), grasps, cameras)
    refined = raw.refined(ctx.srm(kind)).resized(size)
    out = {"no_srm": raw.resized(size), "full": refined} if shard.family == "hogs" else {FAMILIES[shard.family][0]: refined}
    return {v: out[v] for v in ctx.cfg.family_variants(shard.family)}


def run_shard(job: ShardJob) -> str:
    """Render, write and record one shard (skipped when finished); returns its name."""
    ctx = shard_context(job.params_json, job.inputs)
    shard, cfg, out_dir = job.shard, ctx.cfg, Path(job.inputs.out_dir)
    if is_finished(out_dir, cfg, shard):
        return shard.name
    planned, dropped = plan_shard(ctx, shard)
    poses = ctx.pose_set(shard.family, shard.group)
    seq = ctx.group_sequences(shard.group)[0]
    lines = {v: [] for v in cfg.family_variants(shard.family)}
    for start in range(0, len(planned), cfg.batch_size):
        batch = planned[start:start + cfg.batch_size]
        grasps = poses.grasps.take(np.array([p.pose for p in batch]))
        layers = family_layers(ctx, shard, batch, grasps)
        backgrounds = [ctx.backgrounds.sample(cfg.image_size, ctx.seed, shard.group, poses.ids[p.pose], p.slot)
                       for p in batch]
        background = torch.stack([b[0] for b in backgrounds]).to(next(iter(layers.values())).rgb.device)
        for variant, layer in layers.items():
            images, masks = to_uint8(composite(layer, background)), labels(layer).cpu().numpy()
            for k, sample in enumerate(batch):
                lines[variant].append(write_sample(out_dir / variant, seq, poses, sample, grasps.take(np.array([k])),
                                                   images[k], masks[k], backgrounds[k][1], cfg.jpeg_quality,
                                                   ctx.hands))
    for variant, variant_lines in lines.items():
        write_json(record_path(out_dir, variant, shard), {"samples": variant_lines, "dropped": {OUT_OF_VIEW: dropped}})
    return shard.name


def write_one_frame(root: Path, name: str, like: SequenceRecord, camera: Camera, hands: dict, object_pose,
                    image: np.ndarray, mask: np.ndarray, jpeg_quality: int,
                    hands_mean: dict[str, np.ndarray]) -> dict[str, str]:
    """Write a one-frame ARCTIC sequence ``name`` under ``root``, seen by view 0 (``camera``), with the
    subject, object and gender of ``like`` and one row of ``hands`` ({side: HandPose}) and ``object_pose``;
    returns its image and mask paths (relative to ``root``) and their SHA-256."""
    cameras: list[Camera | None] = [None] * NUM_VIEWS
    cameras[EGO_VIEW] = camera
    record = SequenceRecord(name=name, subject=like.subject, object_name=like.object_name, frames=1, cameras=cameras,
                            hands=dict(hands), hand_valid={s: np.ones(1, bool) for s in SIDES},
                            object_pose=object_pose, ego_world2cam=camera.world2cam[None], gender=like.gender)
    write_sequence(root, record, images={(EGO_VIEW, 0): image}, masks={(EGO_VIEW, 0): mask},
                   subject_meta={"ioi_offset": 0}, jpeg_quality=jpeg_quality, hands_mean=hands_mean)
    subject, folder = name.split("/")
    files = {"image": Path("images") / subject / folder / str(EGO_VIEW) / "00000.jpg",
             "mask": Path("masks") / subject / folder / str(EGO_VIEW) / "00000.png"}
    return {**{k: str(v) for k, v in files.items()}, **{f"{k}_sha256": file_sha256(root / v) for k, v in files.items()}}


def hands_means(hands: dict[str, HandModel]) -> dict[str, np.ndarray]:
    """{side: float64 [45]} the ARCTIC layout's pose offsets of ``hands`` (``arctic.read_sequence``)."""
    return {s: hands[s].hands_mean.numpy().astype(np.float64) for s in SIDES}


def write_sample(root: Path, group_seq: SequenceRecord, poses: PoseSet, sample: Planned, grasp: Grasps,
                 image: np.ndarray, mask: np.ndarray, background: str, jpeg_quality: int,
                 hands: dict[str, HandModel]) -> dict:
    """Write one sample as a one-frame ARCTIC sequence under ``root``; its manifest line."""
    name = sample_name(group_seq.subject, group_seq.object_name, sample.pose, sample.slot)
    camera = sample.image_camera
    files = write_one_frame(root, name, group_seq, camera, grasp.hands, grasp.object_pose, image, mask, jpeg_quality,
                            hands_means(hands))
    return {
        "sample": name,
        "group": str(grasp.group[0]),
        "pose": poses.ids[sample.pose],
        "source": str(grasp.source[0]),
        "plausibility": poses.plausibility[sample.pose],
        "camera": {"kind": sample.camera.kind, "view": sample.camera.view, "K": camera.K.tolist(),
                   "world2cam": camera.world2cam.tolist(), "size": [camera.width, camera.height]},
        "background": background,
        **files,
    }


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
