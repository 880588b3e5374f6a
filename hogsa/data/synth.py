"""The embedded open dataset: synthetic multi-view bimanual sequences written in the ARCTIC layout.

Subjects are open hands of distinct shapes and skins; each (subject, object, action) sequence has
both hands approach the object, grasp it (fingertips on the surface), lift and turn it (``grab``) or
hold it and open its articulated part (``use``; a rigid object is tilted as if poured), put it back
and let go. Eight allocentric cameras on a ring see the scene at per-view resolutions; images get
sensor noise and JPEG compression; annotations get mocap-like jitter (RMS ``jitter_mm`` on every
translation, ``jitter_deg`` on every rotation and finger joint) while images show the clean poses. Part masks (0 background, 1 right, 2 left, 3 object) are written beside the images.

World frame: metres, +z up, a table top at z = 0. Deterministic for a given config and seed; a
re-run skips sequences already complete for the same config.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hogsa.articulated import ArticulatedObject, ObjectPose, upright_rotation
from hogsa.code_identity import code_digest
from hogsa.data import arctic_writer
from hogsa.data.arctic_objects import write_arctic_template
from hogsa.data.contact import ObjectDistance, SurfaceDistance
from hogsa.data.grasp import compose, grasp_at, surface_site
from hogsa.data.meshrender import Light, MeshLayer, render
from hogsa.data.rig import camera_ring
from hogsa.data.schema import NUM_VIEWS, SIDES, Camera, Sequence
from hogsa.data.skin import HandRig, SkinTone, random_tone, skin_color_fn
from hogsa.geometry import axis_angle_to_matrix, hinge_rotation, matrix_to_axis_angle
from hogsa.hand import HandModel, HandPose, hand_vertices, rest_wrists
from hogsa.io import atomic_write_text
from hogsa.open_hand import build_open_hand
from hogsa.open_objects import OPEN_OBJECTS, open_object

PART_IDS = {"right": 1, "left": 2, "object": 3, "table": 4}
APPROACH_DISTANCE = 0.10  # m: hands start this far back from their grasp sites
MOTION_PENETRATION = 0.002  # m: deepest penetration a sequence's grasp frames may show
CONTACT_TOLERANCE = 0.003  # m: a grasping hand's closest vertex is at most this far from the object
MARKER = ".hogsa-embedded.json"


@dataclass(frozen=True)
class EmbeddedConfig:
    """params.yaml ``data.embedded``: what the synthetic dataset holds and how it is rendered."""

    splits: dict[str, list[str]]  # split → subjects (ARCTIC p1 splits by subject)
    objects: list[str]  # names from hogsa.open_objects.OPEN_OBJECTS
    actions: list[str]  # "grab" and/or "use"
    frames: int  # per sequence
    image_size: list[int]  # [W, H] of a full-resolution view
    view_scales: list[float]  # one per allocentric view: ARCTIC's views differ in resolution
    fov_deg: float  # horizontal field of view of a full-resolution view
    camera_distance: float  # m from the ring's centre
    supersample: int  # anti-aliasing factor of the RGB render
    soft_shadow_samples: int  # 0: no shadows, 1: hard shadows, >1: soft shadows
    jitter_mm: float  # RMS length of the annotation translation jitter
    jitter_deg: float  # RMS angle of the annotation rotation and finger-pose jitter
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
        if self.frames < 4:
            raise ValueError(f"{where}.frames: at least 4 frames (approach, grasp, release), got {self.frames}")


@dataclass(frozen=True)
class Subject:
    name: str
    betas: np.ndarray  # [10]
    tone: SkinTone


@dataclass(frozen=True)
class Plan:
    """The motion of one sequence: per-frame object pose and hand grasps (float64, F rows each)."""

    object_pose: ObjectPose  # articulation [F] rad, rot [F,3] axis-angle, transl [F,3] m
    hands: dict[str, HandPose]  # per side, the subject's betas on every row
    grasping: np.ndarray  # [F] bool: both hands hold the object


def subjects(cfg: EmbeddedConfig, seed: int) -> list[Subject]:
    """One Subject per name in the splits (shape ~ N(0, 0.8²), random skin), seeded by name."""
    names = sorted({s for members in cfg.splits.values() for s in members})
    out = []
    for name in names:
        rng = np.random.default_rng([seed, int(name.lstrip("s"))])
        out.append(Subject(name, rng.normal(0, 0.8, 10).clip(-2, 2), random_tone(rng)))
    return out


def sequence_names(cfg: EmbeddedConfig) -> list[str]:
    """All "sXX/<object>_<action>_01" names of the dataset."""
    people = sorted({s for members in cfg.splits.values() for s in members})
    return [f"{s}/{o}_{a}_01" for s in people for o in cfg.objects for a in cfg.actions]


def rest_pose(obj: ArticulatedObject, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Object rotation [3,3] and translation [3] standing it on z = 0, centred, turned by ``yaw``."""
    to_z_up = upright_rotation(obj)
    turn = axis_angle_to_matrix(torch.tensor([0.0, 0.0, yaw], dtype=torch.float64)).numpy()
    rotation = turn @ to_z_up
    verts = obj.vertices.double().numpy() @ rotation.T
    low, high = verts.min(axis=0), verts.max(axis=0)
    return rotation, -np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]])


def timeline(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame reach (0 away … 1 grasping) and manipulation (0 at rest … 1 at the peak)."""
    u = np.linspace(0.0, 1.0, frames)
    reach = np.clip(np.minimum(u / 0.25, (1.0 - u) / 0.2), 0, 1)
    reach = reach * reach * (3 - 2 * reach)
    manip = np.where((u > 0.3) & (u < 0.75), np.sin(np.pi * (u - 0.3) / 0.45) ** 2, 0.0)
    return reach, manip


def plan_sequence(obj: ArticulatedObject, action: str, subject: Subject, hands: dict[str, HandModel],
                  frames: int, rng: np.random.Generator, attempts: int = 6) -> Plan:
    """Grasp sites, finger closure and the motion of one sequence (clean poses).

    Grasps are drawn until, over all grasp frames, both hands touch the object (within
    ``CONTACT_TOLERANCE``) and nothing penetrates deeper than ``MOTION_PENETRATION`` (a moving lid
    can run into a finger); if no draw qualifies the one with the least penetration is kept.
    """
    distance = ObjectDistance(obj)
    best, best_depth = None, np.inf
    for _ in range(attempts):
        plan = _draw_plan(obj, action, subject, hands, frames, rng)
        pose = plan.object_pose
        closest = np.array([
            [distance(hand_vertices(hands[side], plan.hands[side].take(f))[0], pose.articulation[f], pose.rot[f],
                      pose.transl[f]).min() for side in hands]
            for f in np.nonzero(plan.grasping)[0]
        ])
        depth = max(-closest.min(), 0.0)
        if depth <= MOTION_PENETRATION and closest.max() <= CONTACT_TOLERANCE:
            return plan
        if depth < best_depth:
            best, best_depth = plan, depth
    return best


def _draw_plan(obj: ArticulatedObject, action: str, subject: Subject, hands: dict[str, HandModel],
               frames: int, rng: np.random.Generator) -> Plan:
    """One random draw of grasp sites, finger closure and motion."""
    rotation, translation = rest_pose(obj, rng.uniform(0, 2 * np.pi))
    canonical = obj.vertices.double().numpy()
    faces = obj.faces.numpy()
    world = canonical @ rotation.T + translation
    distance = SurfaceDistance(world, faces, seed=int(rng.integers(2**31)))
    low, high = world.min(axis=0), world.max(axis=0)
    centre = (low + high) / 2
    use_top = action == "use" and obj.articulated

    if use_top:  # the right hand takes the articulated part at its far side, the left holds the base
        top = world[obj.top_mask.numpy()].mean(axis=0)
        away = top - translation  # the hinge (canonical z axis) passes through the translated origin
        away[2] = 0
        away = away / np.linalg.norm(away) if np.linalg.norm(away) > 1e-6 else np.array([1.0, 0, 0])
        bottom = world[~obj.top_mask.numpy()].mean(axis=0)
        side_on = np.cross(np.array([0.0, 0.0, 1.0]), away)  # beside the hinge line, clear of the swinging part
        aims = {"right": (away, top[2]), "left": (side_on, bottom[2])}
    else:
        heading = rng.normal(size=2)
        heading = np.array([*heading / np.linalg.norm(heading), 0.0])
        level = centre[2] + (0.25 * (high[2] - low[2]) if action == "use" else 0.0)
        aims = {"right": (heading, level), "left": (-heading, level)}

    tall = (high[2] - low[2]) > 0.8 * min(high[0] - low[0], high[1] - low[1])
    grasps = {}
    for side, (direction, height) in aims.items():
        origin = np.array([centre[0], centre[1], height]) + direction * 1.0
        site, normal = surface_site(world, faces, origin, -direction)
        # wrap the fingers around a tall object or the base of an opening one (clear of the moving
        # part), else curl them over the top
        if tall or (use_top and side == "left"):
            fingers = np.cross(np.array([0.0, 0.0, 1.0]), normal)
        else:
            fingers = np.array([0.0, 0.0, 1.0])
        twist = rng.uniform(-0.35, 0.35)
        fingers = axis_angle_to_matrix(torch.as_tensor(normal * twist)).numpy() @ fingers
        grasps[side] = grasp_at(hands[side], subject.betas, distance, site, normal, fingers)

    reach, manip = timeline(frames)
    theta_max = rng.uniform(0.5, 1.0) if use_top else 0.0
    lift = 0.03 if action == "use" else rng.uniform(0.06, 0.10)
    yaw = rng.uniform(-0.6, 0.6) if action == "grab" else 0.0
    tilt = rng.uniform(0.6, 1.0) if action == "use" and not obj.articulated else rng.uniform(-0.2, 0.2)

    wrists = {side: rest_wrists(hands[side], subject.betas[None])[0] for side in hands}
    retreats = {side: retreat_direction(grasps[side], hands[side], centre) for side in hands}
    articulation = theta_max * manip
    object_rot, object_transl = np.zeros((frames, 3)), np.zeros((frames, 3))
    tracks = {side: [] for side in hands}
    for f in range(frames):
        motion = axis_angle_to_matrix(torch.tensor([tilt * manip[f], 0.0, yaw * manip[f]], dtype=torch.float64)).numpy()
        pivot = np.array([centre[0], centre[1], low[2]])
        move_t = pivot + np.array([0, 0, lift * manip[f]]) - motion @ pivot  # x ↦ motion x + move_t
        object_rot[f] = matrix_to_axis_angle(torch.as_tensor(motion @ rotation)).numpy()
        object_transl[f] = motion @ translation + move_t
        for side in hands:
            grasp = grasps[side]
            if side == "right" and use_top:  # carried by the articulated part about the hinge
                hinge_rot = hinge_rotation(torch.tensor(articulation[f], dtype=torch.float64)).numpy()
                swing = rotation @ hinge_rot @ rotation.T
                grasp = compose(swing, translation - swing @ translation, grasp, wrists[side])
            grasp = compose(motion, move_t, grasp, wrists[side])
            tracks[side].append(_approach(grasp, motion @ retreats[side], reach[f]))
    hand_poses = {side: HandPose.concatenate(rows) for side, rows in tracks.items()}
    return Plan(ObjectPose(articulation, object_rot, object_transl), hand_poses, reach >= 1.0 - 1e-9)


def retreat_direction(grasp: HandPose, hand: HandModel, centre: np.ndarray) -> np.ndarray:
    """Unit direction a grasping hand (``grasp``: one row) comes from: away from the object's centre,
    mostly level."""
    away = hand_vertices(hand, grasp)[0].mean(axis=0) - centre
    away[2] = 0.0
    away = away / max(np.linalg.norm(away), 1e-9) + np.array([0.0, 0.0, 0.3])
    return away / np.linalg.norm(away)


def _approach(grasp: HandPose, retreat: np.ndarray, reach: float) -> HandPose:
    """The grasp (one row) backed off along ``retreat`` with fingers opened, by 1 - ``reach``."""
    return HandPose(grasp.global_orient, grasp.hand_pose * reach, grasp.betas,
                    grasp.transl + (1.0 - reach) * APPROACH_DISTANCE * retreat)


def rig_cameras(cfg: EmbeddedConfig, subject_index: int) -> list[Camera | None]:
    """The subject's 8 allocentric cameras (view 1..8; view 0 absent), ring turned per subject."""
    width, height = cfg.image_size
    sizes = [(int(round(width * s)), int(round(height * s))) for s in cfg.view_scales]
    return [None] + camera_ring(np.array([0.0, 0.0, 0.08]), cfg.camera_distance, sizes, cfg.fov_deg,
                                azimuth_offset_deg=10.0 + 7.0 * subject_index)


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
    """Renders frames of one sequence: both hands (procedural skin), the object and the table."""

    def __init__(self, cfg: EmbeddedConfig, hands: dict[str, HandModel], subject: Subject,
                 obj: ArticulatedObject, rig: HandRig, right_template: np.ndarray):
        self.cfg, self.hands, self.subject, self.obj = cfg, hands, subject, obj
        self.colors = {side: skin_color_fn(right_template, hands[side].faces.numpy(), rig, subject.tone)
                       for side in hands}
        self.table = table_layer()
        self.light = Light(ambient=0.35, diffuse=0.75, direction=np.array([0.3, -0.4, 1.0]),
                           shadows=cfg.soft_shadow_samples > 0, shadow_softness=0.05,
                           shadow_samples=max(cfg.soft_shadow_samples, 1))

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

    def render(self, layers: list[MeshLayer], camera: Camera, noise_seed: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 image [H,W,3] (with sensor noise) and part mask [H,W] of one view."""
        out = render(layers, camera.K, camera.world2cam, camera.width, camera.height, self.light,
                     background=(0.16, 0.17, 0.2), supersample=self.cfg.supersample, seed=noise_seed)
        noise = np.random.default_rng(noise_seed).normal(0, self.cfg.noise_std, out.rgb.shape)
        image = (np.clip(out.rgb + noise, 0, 1) * 255 + 0.5).astype(np.uint8)
        mask = np.where(out.mask == PART_IDS["table"], 0, out.mask).astype(np.uint8)
        return image, mask


def jitter_annotations(plan: Plan, cfg: EmbeddedConfig, rng: np.random.Generator) -> Plan:
    """Mocap-like noise on the annotations: ``jitter_mm`` on translations, ``jitter_deg`` on rotations."""
    # per-axis std so that the 3-D offset (and each rotation's angle) has RMS jitter_mm (jitter_deg)
    sigma_t, sigma_r = cfg.jitter_mm / 1000.0 / np.sqrt(3), np.radians(cfg.jitter_deg) / np.sqrt(3)

    def rotate(aa: np.ndarray) -> np.ndarray:
        noise = axis_angle_to_matrix(torch.as_tensor(rng.normal(0, sigma_r, aa.shape)))
        return matrix_to_axis_angle(noise @ axis_angle_to_matrix(torch.as_tensor(aa))).numpy()

    def jittered_row(row: HandPose) -> HandPose:  # draws in the order rotation, finger pose, translation
        return HandPose(rotate(row.global_orient), row.hand_pose + rng.normal(0, sigma_r, 45), row.betas,
                        row.transl + rng.normal(0, sigma_t, 3))

    hands = {side: HandPose.concatenate([jittered_row(pose.take(f)) for f in range(len(pose))])
             for side, pose in plan.hands.items()}
    obj = plan.object_pose
    object_pose = ObjectPose(obj.articulation + rng.normal(0, sigma_r, obj.articulation.shape), rotate(obj.rot),
                             obj.transl + rng.normal(0, sigma_t, obj.transl.shape))
    return Plan(object_pose, hands, plan.grasping)


def to_sequence(name: str, plan: Plan, subject: Subject, cameras: list[Camera | None], obj_name: str) -> Sequence:
    """A schema Sequence of ``plan``'s poses."""
    frames = len(plan.object_pose)
    return Sequence(name=name, subject=subject.name, object_name=obj_name, frames=frames, cameras=cameras,
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
    torch.set_num_threads(1)


def _done_file(root: Path, name: str) -> Path:
    return root / ".done" / (name.replace("/", "__") + ".json")


_CACHE: dict = {}


def _assets() -> tuple[dict[str, HandModel], HandRig, np.ndarray]:
    """Open hands, the skin rig and the right hand's float64 template (cached per process)."""
    if not _CACHE:
        right = build_open_hand("right")  # the construction's bones and float64 template, for the skin
        _CACHE["value"] = ({side: HandModel(side) for side in SIDES}, HandRig.from_open_hand(right),
                           np.asarray(right["v_template"]))
    return _CACHE["value"]


def plan_for(name: str, cfg: EmbeddedConfig, seed: int) -> tuple[Plan, Subject, ArticulatedObject]:
    """The clean plan of sequence ``name`` (deterministic in name, config and seed)."""
    hands, _, _ = _assets()
    subject_name, seq = name.split("/")
    obj_name, action, _ = seq.rsplit("_", 2)
    subject = next(s for s in subjects(cfg, seed) if s.name == subject_name)
    obj = open_object(obj_name)
    rng = np.random.default_rng([seed, int(subject_name.lstrip("s")), sum(map(ord, seq))])
    return plan_sequence(obj, action, subject, hands, cfg.frames, rng), subject, obj


def _generate_one(job: tuple[str, str, EmbeddedConfig, int]) -> None:
    root, name, cfg, seed = job
    root = Path(root)
    hands, rig, right_template = _assets()
    plan, subject, obj = plan_for(name, cfg, seed)
    people = sorted({s for members in cfg.splits.values() for s in members})
    cameras = rig_cameras(cfg, people.index(subject.name))
    renderer = SequenceRenderer(cfg, hands, subject, obj, rig, right_template)
    images, masks = {}, {}
    for frame in range(cfg.frames):
        layers = renderer.layers(plan, frame)
        for view in range(1, len(cameras)):
            noise_seed = int(np.random.default_rng([seed, sum(map(ord, name)), frame, view]).integers(2**31))
            images[view, frame], masks[view, frame] = renderer.render(layers, cameras[view], noise_seed)
    rng = np.random.default_rng([seed, sum(map(ord, name)), 7])
    annotated = jitter_annotations(plan, cfg, rng)
    sequence = to_sequence(name, annotated, subject, cameras, obj.name)
    arctic_writer.write_sequence(root, sequence, images=images, masks=masks,
                                 subject_meta={"ioi_offset": 0, "gender": "neutral"}, jpeg_quality=cfg.jpeg_quality)
    atomic_write_text(_done_file(root, name), json.dumps({"frames": cfg.frames}) + "\n")
