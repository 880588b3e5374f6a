"""The embedded open dataset: synthetic multi-view bimanual sequences written in the ARCTIC layout.

Subjects are open hands of distinct shapes and skins; each (subject, object, action) sequence has
both hands approach the object, grasp it and manipulate it (``hogsa.data.synth_motion``). Eight
allocentric cameras on a ring see the scene at per-view resolutions; images get sensor noise and JPEG
compression; annotations get mocap-like jitter (RMS ``jitter_mm`` on every translation, ``jitter_deg``
on every rotation and finger joint, drifting smoothly over ``jitter_frames``) while images show the
clean poses. Train sequences have ``frames`` frames in all eight views (what HOGS trains on), val and
test sequences ``eval_frames`` (long enough for ARCTIC's motion metrics: 15-frame contact windows,
accelerations) in the ``eval_views`` (the views of one frame share its poses). Part masks (0 background,
1 right, 2 left, 3 object) are written beside the images.

Random draws are seeded per subject and per sequence from the config's seed and the names (the
sequence's name enters as the sum of its characters' code points).

World frame: metres, +z up, a table top at z = 0. Deterministic for a given config and seed; a
re-run skips sequences already complete for the same config.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.code_identity import code_digest
from hogsa.data import arctic_writer
from hogsa.data.arctic_objects import write_arctic_template
from hogsa.data.meshrender import Light, MeshLayer, Scene, View, render_view
from hogsa.data.rig import camera_ring
from hogsa.data.schema import MASK_LABELS, NUM_VIEWS, SIDES, Camera, SequenceRecord
from hogsa.data.skin import HandRig, SkinTone, random_tone, skin_color_fn
from hogsa.data.synth_motion import Plan, plan_sequence
from hogsa.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from hogsa.hand import HandModel, HandPose, hand_vertices
from hogsa.io import atomic_write_text
from hogsa.open_hand import build_open_hand
from hogsa.open_objects import OPEN_OBJECTS, open_object

# mesh-render part ids: the mask labels of the parts, and the table's (written as background)
PART_IDS = {part: label for part, label in MASK_LABELS.items() if label} | {"table": 4}
MARKER = ".hogsa-embedded.json"


@dataclass(frozen=True)
class EmbeddedConfig:
    """params.yaml ``data.embedded``: what the synthetic dataset holds and how it is rendered."""

    splits: dict[str, list[str]]  # split → subjects (ARCTIC p1 splits by subject)
    objects: list[str]  # names from hogsa.open_objects.OPEN_OBJECTS
    actions: list[str]  # "grab" and/or "use"
    frames: int  # per train sequence (HOGS's multi-view frames)
    eval_frames: int  # per val and test sequence: long enough for MDev's contact windows and ACC
    eval_views: list[int]  # allocentric views (1-8) of the val and test subjects; the train split has all 8
    image_size: list[int]  # [W, H] of a full-resolution view
    view_scales: list[float]  # one per allocentric view: ARCTIC's views differ in resolution
    fov_deg: float  # horizontal field of view of a full-resolution view
    camera_distance: float  # m from the ring's centre
    supersample: int  # anti-aliasing factor of the RGB render
    soft_shadow_samples: int  # 0: no shadows, 1: hard shadows, >1: soft shadows
    jitter_mm: float  # RMS length of the annotation translation jitter
    jitter_deg: float  # RMS angle of the annotation rotation and finger-pose jitter
    jitter_frames: float  # std (frames) of the Gaussian over time that smooths the jitter, as mocap error drifts
    noise_std: float  # sensor noise std, fraction of full scale
    jpeg_quality: int
    workers: int  # parallel processes

    def __post_init__(self) -> None:
        where = "params.yaml: data.embedded"
        for subject in {s for members in self.splits.values() for s in members}:
            if not re.fullmatch(r"s\d+", subject):
                raise ValueError(f"{where}.splits: subject names are 's' and a number (ARCTIC's), got {subject!r}")
        unknown = sorted(set(self.objects) - set(OPEN_OBJECTS))
        if unknown:
            raise ValueError(f"{where}.objects: unknown {unknown}; open objects are {list(OPEN_OBJECTS)}")
        if not set(self.actions) <= {"grab", "use"} or not self.actions:
            raise ValueError(f"{where}.actions: expected some of ['grab', 'use'], got {self.actions}")
        if len(self.view_scales) != NUM_VIEWS - 1:
            raise ValueError(f"{where}.view_scales: one scale per allocentric view ({NUM_VIEWS - 1}), got {len(self.view_scales)}")
        for field in ("frames", "eval_frames"):
            if getattr(self, field) < 4:
                raise ValueError(f"{where}.{field}: at least 4 frames (approach, grasp, release), got {getattr(self, field)}")
        if not self.eval_views or len(set(self.eval_views)) != len(self.eval_views) or \
                not set(self.eval_views) <= set(range(1, NUM_VIEWS)):
            raise ValueError(f"{where}.eval_views: distinct allocentric views among 1-{NUM_VIEWS - 1}, "
                             f"got {self.eval_views}")
        if self.jitter_frames < 0:
            raise ValueError(f"{where}.jitter_frames: a std of at least 0 frames, got {self.jitter_frames}")

    def frames_of(self, subject: str) -> int:
        """Frames of each sequence of ``subject``: ``frames`` in the train split, ``eval_frames`` elsewhere."""
        return self.frames if subject in self.splits.get("train", []) else self.eval_frames

    def views_of(self, subject: str) -> list[int]:
        """Allocentric views of ``subject``: all of them in the train split (HOGS's multi-view frames),
        ``eval_views`` elsewhere."""
        return list(range(1, NUM_VIEWS)) if subject in self.splits.get("train", []) else sorted(self.eval_views)


@dataclass(frozen=True)
class Subject:
    """One person of the embedded dataset: an open hand of its own shape and skin."""

    name: str
    betas: np.ndarray  # [10]
    tone: SkinTone


def subject_names(cfg: EmbeddedConfig) -> list[str]:
    """The subjects of all splits, in name order."""
    return sorted({s for members in cfg.splits.values() for s in members})


def subjects(cfg: EmbeddedConfig, seed: int) -> list[Subject]:
    """One Subject per name in the splits (shape ~ N(0, 0.8²), random skin), seeded by name."""
    out = []
    for name in subject_names(cfg):
        rng = np.random.default_rng([seed, int(name.lstrip("s"))])
        out.append(Subject(name, rng.normal(0, 0.8, 10).clip(-2, 2), random_tone(rng)))
    return out


def sequence_names(cfg: EmbeddedConfig) -> list[str]:
    """All "sXX/<object>_<action>_01" names of the dataset."""
    return [f"{s}/{o}_{a}_01" for s in subject_names(cfg) for o in cfg.objects for a in cfg.actions]


def rig_cameras(cfg: EmbeddedConfig, subject: str) -> list[Camera | None]:
    """The subject's cameras by ARCTIC view number: its ``views_of`` from a ring of 8 allocentric
    cameras turned per subject, None for view 0 (egocentric) and for the views it lacks."""
    width, height = cfg.image_size
    sizes = [(int(round(width * s)), int(round(height * s))) for s in cfg.view_scales]
    ring = camera_ring(np.array([0.0, 0.0, 0.08]), cfg.camera_distance, sizes, cfg.fov_deg,
                       azimuth_offset_deg=10.0 + 7.0 * subject_names(cfg).index(subject))
    views = cfg.views_of(subject)
    return [None] + [camera if view in views else None for view, camera in enumerate(ring, start=1)]


def table_layer(size: float = 1.2, seed: int = 0) -> MeshLayer:
    """A wooden table top of planks at z = 0 (part id 4; written as background in the masks)."""
    half = size / 2
    verts = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:512, 0:512] / 512.0
    plank = np.floor(rows * 8)  # 8 planks of 15 cm
    tone = rng.uniform(0.85, 1.1, 8)[plank.astype(int)]
    wobble = 0.004 * np.sin(2 * np.pi * (cols * 3 + rng.uniform(0, 1, 8)[plank.astype(int)]))
    grain = 0.5 + 0.5 * np.sin(2 * np.pi * 90 * (rows + wobble) + 3 * np.sin(2 * np.pi * 5 * cols))
    seam = np.abs(rows * 8 - np.round(rows * 8)) < 0.02
    wood = np.array([0.60, 0.42, 0.27]) * (tone * (0.85 + 0.15 * grain) * np.where(seam, 0.55, 1.0))[..., None]
    uvs = np.array([[[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 1], [0, 1]]], float)
    return MeshLayer(verts, faces, PART_IDS["table"], face_uvs=uvs, texture=(wood * 255).astype(np.uint8), smooth=False)


class SequenceRenderer:
    """Renders frames of one sequence: both hands (procedural skin), the object and the table.

    A frame's geometry is built once (:meth:`scene`) for all its views, a camera's rays once for all frames.
    """

    def __init__(self, cfg: EmbeddedConfig, hands: dict[str, HandModel], tone: SkinTone,
                 obj: ArticulatedObject, rig: HandRig, right_template: np.ndarray):
        self.cfg, self.hands, self.obj = cfg, hands, obj
        self.colors = {side: skin_color_fn(right_template, hands[side].faces.numpy(), rig, tone) for side in hands}
        self.table = table_layer()
        self.light = Light(ambient=0.35, diffuse=0.75, direction=np.array([0.3, -0.4, 1.0]),
                           shadows=cfg.soft_shadow_samples > 0, shadow_softness=0.05,
                           shadow_samples=max(cfg.soft_shadow_samples, 1))
        self._views: dict[tuple, View] = {}  # camera (K, world2cam, size) → its rays

    def layers(self, plan: Plan, frame: int) -> list[MeshLayer]:
        """Mesh layers of the clean scene at ``frame``."""
        layers = [self.table]
        for side, hand in self.hands.items():
            verts = hand_vertices(hand, plan.hands[side].take(frame))[0]
            layers.append(MeshLayer(verts, hand.faces.numpy(), PART_IDS[side], color_fn=self.colors[side]))
        with torch.no_grad():
            obj_verts = self.obj.pose(*plan.object_pose.take(frame).torch())
        layers.append(MeshLayer(obj_verts[0].double().numpy(), self.obj.faces.numpy(), PART_IDS["object"],
                                face_uvs=self.obj.face_uvs.numpy(), texture=self.obj.texture.numpy()))
        return layers

    def scene(self, plan: Plan, frame: int) -> Scene:
        """The clean scene at ``frame``, ready to render in every view."""
        return Scene(self.layers(plan, frame))

    def view(self, camera: Camera) -> View:
        """The camera's rays at the configured supersampling (computed on first use)."""
        key = (camera.K.tobytes(), camera.world2cam.tobytes(), camera.width, camera.height)
        if key not in self._views:
            self._views[key] = View(camera.K, camera.world2cam, camera.width, camera.height, self.cfg.supersample)
        return self._views[key]

    def render(self, scene: Scene, camera: Camera, noise_seed: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 image [H,W,3] (with sensor noise) and part mask [H,W] of one view."""
        out = render_view(scene, self.view(camera), self.light, background=(0.16, 0.17, 0.2), seed=noise_seed)
        noise = np.random.default_rng(noise_seed).normal(0, self.cfg.noise_std, out.rgb.shape)
        image = out.rgb + noise
        np.clip(image, 0, 1, out=image)
        image *= 255
        image += 0.5
        image = image.astype(np.uint8)
        mask = np.where(out.mask == PART_IDS["table"], 0, out.mask).astype(np.uint8)
        return image, mask


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, frames_std: float) -> np.ndarray:
    """Normal noise of std ``sigma`` on every entry of ``shape`` = (F, ...), correlated over the frames
    (axis 0) by a Gaussian of std ``frames_std`` frames (0: independent frames): white noise of
    F + 2·half frames filtered by a kernel of unit energy (so every entry keeps the std ``sigma``),
    keeping the F frames the kernel covers fully (stationary up to the ends)."""
    if frames_std == 0:
        return rng.normal(0.0, sigma, shape)
    half = int(np.ceil(4 * frames_std))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / frames_std) ** 2)
    kernel /= np.sqrt(np.sum(kernel**2))
    white = rng.normal(0.0, sigma, (shape[0] + 2 * half, *shape[1:]))
    return np.apply_along_axis(lambda column: np.convolve(column, kernel, mode="valid"), 0, white)


def jitter_annotations(plan: Plan, cfg: EmbeddedConfig, rng: np.random.Generator) -> Plan:
    """Mocap-like noise on the annotations: ``jitter_mm`` on translations, ``jitter_deg`` on rotations,
    drifting smoothly over ``jitter_frames`` frames (so a held grasp keeps its contacts and the
    annotated motion its accelerations, as a mocap fit's error does)."""
    # per-axis std so that the 3-D offset (and each rotation's angle) has RMS jitter_mm (jitter_deg)
    sigma_t, sigma_r = cfg.jitter_mm / 1000.0 / np.sqrt(3), np.radians(cfg.jitter_deg) / np.sqrt(3)
    frames = len(plan.object_pose)

    def noise(width: int, sigma: float) -> np.ndarray:
        return smooth_noise(rng, (frames, width), sigma, cfg.jitter_frames)

    def rotate(aa: np.ndarray) -> np.ndarray:  # aa [F,3]
        turn = axis_angle_to_matrix(torch.as_tensor(noise(3, sigma_r)))
        return matrix_to_axis_angle(turn @ axis_angle_to_matrix(torch.as_tensor(aa))).numpy()

    def jittered(pose: HandPose) -> HandPose:  # draws in the order rotation, finger pose, translation
        return HandPose(rotate(pose.global_orient), pose.hand_pose + noise(45, sigma_r), pose.betas,
                        pose.transl + noise(3, sigma_t))

    hands = {side: jittered(pose) for side, pose in plan.hands.items()}
    obj = plan.object_pose
    object_pose = ObjectPose(obj.articulation + noise(1, sigma_r)[:, 0], rotate(obj.rot), obj.transl + noise(3, sigma_t))
    return Plan(object_pose, hands, plan.grasping)


def to_sequence(name: str, plan: Plan, subject: Subject, cameras: list[Camera | None], obj_name: str) -> SequenceRecord:
    """A schema SequenceRecord of ``plan``'s poses."""
    frames = len(plan.object_pose)
    return SequenceRecord(name=name, subject=subject.name, object_name=obj_name, frames=frames, cameras=cameras,
                    hands=plan.hands, hand_valid={side: np.ones(frames, bool) for side in SIDES},
                    object_pose=plan.object_pose)


def config_digest(cfg: EmbeddedConfig, seed: int) -> str:
    """Identifies a dataset's content: the config, the seed and the source of the code that makes it
    (so a resumed run never mixes sequences made by different code)."""
    text = json.dumps({"cfg": asdict(cfg), "seed": seed, "code": code_digest(__name__)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generate(root: str | Path, cfg: EmbeddedConfig, seed: int) -> list[str]:
    """Write the embedded dataset under ``root``; returns the sequence names.

    A root holding an embedded dataset of another config is emptied first (a non-empty folder that is
    not one raises); sequences already complete for this config are kept, so an interrupted run resumes.
    """
    root = Path(root)
    digest = config_digest(cfg, seed)
    marker = root / MARKER
    if root.exists() and any(root.iterdir()):
        if not marker.is_file():
            raise FileExistsError(f"{root}: not empty and not an embedded dataset made by hogsa ({MARKER} missing); "
                                  "refusing to overwrite it")
        if json.loads(marker.read_text()).get("digest") != digest:
            shutil.rmtree(root)
    (root / ".done").mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, json.dumps({"digest": digest}) + "\n")
    for name in cfg.objects:
        folder = root / "meta" / "object_vtemplates" / name
        if not (folder / "parts.json").is_file():
            write_arctic_template(open_object(name), folder)
    arctic_writer.write_splits(root, {split: [n for n in sequence_names(cfg) if n.split("/")[0] in members]
                                      for split, members in cfg.splits.items()})
    names = sequence_names(cfg)
    todo = [n for n in names if not _done_file(root, n).is_file()]
    jobs = [(str(root), name, cfg, seed) for name in todo]
    if cfg.workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(cfg.workers, initializer=_worker_init) as pool:
            for _ in tqdm(pool.imap_unordered(_generate_one, jobs), total=len(jobs), desc="embedded dataset"):
                pass
    else:
        for job in tqdm(jobs, desc="embedded dataset"):
            _generate_one(job)
    return names


def _worker_init() -> None:
    """One thread per worker process, for torch and for numpy's BLAS (whose threads would otherwise
    contend with the other workers' for the same cores)."""
    torch.set_num_threads(1)
    threadpool_limits(1)


def _done_file(root: Path, name: str) -> Path:
    return root / ".done" / (name.replace("/", "__") + ".json")


@functools.cache
def open_hand_assets() -> tuple[dict[str, HandModel], HandRig, np.ndarray]:
    """Open hands, the skin rig and the right hand's float64 template (built once per process)."""
    right = build_open_hand("right")  # the construction's bones and float64 template, for the skin
    return {side: HandModel(side) for side in SIDES}, HandRig.from_open_hand(right), np.asarray(right["v_template"])


def plan_for(name: str, cfg: EmbeddedConfig, seed: int) -> tuple[Plan, Subject, ArticulatedObject]:
    """The clean plan of sequence ``name`` (deterministic in name, config and seed)."""
    hands, _, _ = open_hand_assets()
    subject_name, seq = name.split("/")
    obj_name, action, _ = seq.rsplit("_", 2)
    subject = next(s for s in subjects(cfg, seed) if s.name == subject_name)
    obj = open_object(obj_name)
    rng = np.random.default_rng([seed, int(subject_name.lstrip("s")), sum(map(ord, seq))])
    return plan_sequence(obj, action, subject.betas, hands, cfg.frames_of(subject_name), rng), subject, obj


def _generate_one(job: tuple[str, str, EmbeddedConfig, int]) -> None:
    """Render, annotate and write sequence ``name`` of ``job`` = (root, name, cfg, seed), then mark it done."""
    root, name, cfg, seed = job
    root = Path(root)
    hands, rig, right_template = open_hand_assets()
    plan, subject, obj = plan_for(name, cfg, seed)
    cameras = rig_cameras(cfg, subject.name)
    renderer = SequenceRenderer(cfg, hands, subject.tone, obj, rig, right_template)
    images, masks = {}, {}
    for frame in range(plan.grasping.size):
        scene = renderer.scene(plan, frame)
        for view in cfg.views_of(subject.name):
            noise_seed = int(np.random.default_rng([seed, sum(map(ord, name)), frame, view]).integers(2**31))
            images[view, frame], masks[view, frame] = renderer.render(scene, cameras[view], noise_seed)
    rng = np.random.default_rng([seed, sum(map(ord, name)), 7])
    annotated = jitter_annotations(plan, cfg, rng)
    sequence = to_sequence(name, annotated, subject, cameras, obj.name)
    arctic_writer.write_sequence(root, sequence, images=images, masks=masks,
                                 subject_meta={"ioi_offset": 0, "gender": "neutral"}, jpeg_quality=cfg.jpeg_quality)
    atomic_write_text(_done_file(root, name), json.dumps({"frames": int(plan.grasping.size)}) + "\n")
