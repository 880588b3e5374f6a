"""Training the baselines on crops, resumably, and predicting the val/test crops.

``train_baseline(task, cfg, crops, out_dir, seed, models, objects)`` trains ArcticNet-SF
(``"arcticnet_sf"``) or InterField-SF (``"interfield_sf"``) for ``cfg.steps`` Adam steps (``train_step``:
batches a function of (seed, step), the learning rate constant or falling along a half cosine, gradient
norm clipped at ``cfg.grad_clip``), checkpointing the parameters,
BatchNorm statistics and Adam state every ``cfg.checkpoint_every`` steps through ``hogsa.training``,
so a killed run resumes where it stopped, and logging its loss terms with dvclive.

Image augmentation (ARCTIC's: scale, in-plane rotation, colour jitter, no flips) is drawn per step
from the seed: the crop turns by θ and zooms by s about its principal point, which is the crop camera
turning about its optical axis and its focal length scaling, so the annotations turn by R_z(θ) and K's
focal lengths scale by s; brightness, contrast and saturation change by factors in [1 − j, 1 + j].
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import kornia
import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor, nn
from tqdm.auto import tqdm

from hogsa.articulated import ArticulatedObject
from hogsa.baselines.arcticnet import SIDES, ArcticNetSF, decode_hand, decode_object, encode_hand, encode_object
from hogsa.baselines.backbone import load_backbone_weights, resnet
from hogsa.baselines.interfield import InterFieldSF, farthest_points, field_loss
from hogsa.baselines.losses import Targets, arcticnet_loss, object_keypoints, pose_keypoints
from hogsa.baselines.samples import CropSet, hands_to_camera, object_to_camera
from hogsa.baselines.hmr import weak_perspective_to_translation
from hogsa.code_identity import code_digest
from hogsa.hand import HandModel
from hogsa.metrics.arctic import CONTACT_THRES, FIELD_MAX_DIST
from hogsa.training import ITERATION, batch_indices, open_live, resume, save_checkpoint

TASKS = ("arcticnet_sf", "interfield_sf")
CHECKPOINT = "model.safetensors"


@dataclass(frozen=True)
class BaselinesConfig:
    """params.yaml ``baselines``: what is trained, on what, and how."""

    tasks: list[str]
    train_sets: list[str]  # "original" (the training crops alone) or an augment variant added to them
    seeds: list[int]
    backbone: str  # "small" or "resnet50"
    width: int  # first-stage channels of the small backbone
    hmr_width: int  # ArcticNet-SF's HMR refinement width (ARCTIC: 1024)
    field_width: int  # InterField-SF's feature and PointNet channels (ARCTIC: 512)
    backbone_weights: str | None  # safetensors ImageNet weights of the backbone; None: trained from scratch
    image_size: int  # crops are resized to this square input (pixels)
    steps: int
    batch_size: int
    lr: float
    cosine_lr: bool  # the learning rate falls from lr to 0 along a half cosine over the steps (ARCTIC: constant)
    root_weight: float  # the extra wrist-rotation term of ArcticNet-SF's loss (``losses``; ARCTIC: 0)
    grad_clip: float
    checkpoint_every: int
    aug_scale: float  # zoom factor drawn in [1 - a, 1 + a]
    aug_rotation_deg: float  # in-plane rotation drawn in [-a, a]
    aug_color: float  # brightness, contrast and saturation factors drawn in [1 - a, 1 + a]
    hand_points: int  # InterField-SF's points per hand template
    object_points: int  # and per object
    eval_margin: float  # the val/test crops' margin (as the augmentation's)


def make_backbone(cfg: BaselinesConfig) -> nn.Module:
    backbone = resnet(cfg.backbone, cfg.width)
    if cfg.backbone_weights:
        load_backbone_weights(backbone, cfg.backbone_weights)
    return backbone


def build_model(task: str, cfg: BaselinesConfig, models: Mapping[str, HandModel], object_vertices: int) -> nn.Module:
    if task == "arcticnet_sf":
        return ArcticNetSF(make_backbone(cfg), hidden=cfg.hmr_width)
    if task == "interfield_sf":
        points = {side: models[side].v_template[farthest_points(models[side].v_template, cfg.hand_points)] for side in SIDES}
        return InterFieldSF(make_backbone(cfg), points, models["right"].v_template.shape[0], cfg.object_points,
                            object_vertices, cfg.field_width)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def mean_cameras(crops: CropSet, models: Mapping[str, HandModel], size: int) -> tuple[dict[str, Tensor], Tensor]:
    """The mean weak-perspective camera [s, tx, ty] of each side's valid hands and of the objects in ``crops``."""
    K = torch.as_tensor(crops.K, dtype=torch.float32)
    focal = (K[:, 0, 0] + K[:, 1, 1]) / 2
    valid = torch.as_tensor(crops.valid)
    hands = {}
    for side in SIDES:
        cam = encode_hand(crops.hands[side].torch(), models[side], focal, size).cam
        hands[side] = cam[torch.as_tensor(crops.hand_valid[side]) & valid].mean(dim=0)
    return hands, encode_object(crops.object_pose.torch(), focal, size).cam[valid].mean(dim=0)


def object_templates(objects: Mapping[str, ArticulatedObject], count: int) -> dict[str, Tensor]:
    """Per object its ``count`` farthest canonical vertices [count, 3] (repeated cyclically when it has fewer)."""
    templates = {}
    for name, obj in objects.items():
        chosen = farthest_points(obj.vertices, count)
        templates[name] = obj.vertices[chosen[torch.arange(count) % len(chosen)]]
    return templates


def augment(crops: CropSet, images: Tensor, cfg: BaselinesConfig, models: Mapping[str, HandModel],
            generator: torch.Generator) -> tuple[CropSet, Tensor]:
    """``crops`` and their images [B, 3, S, S] in [0, 1] after a random zoom, turn and colour change."""
    batch = len(crops)
    uniform = lambda low, high: low + (high - low) * torch.rand(batch, generator=generator, dtype=torch.float64)  # noqa: E731
    scale = uniform(1 - cfg.aug_scale, 1 + cfg.aug_scale)
    theta = uniform(-cfg.aug_rotation_deg, cfg.aug_rotation_deg) * math.pi / 180
    color = [uniform(1 - cfg.aug_color, 1 + cfg.aug_color).float() for _ in range(3)]
    cos, sin = torch.cos(theta), torch.sin(theta)
    turn = torch.zeros(batch, 4, 4, dtype=torch.float64)
    turn[:, 0, 0], turn[:, 0, 1], turn[:, 1, 0], turn[:, 1, 1] = cos, -sin, sin, cos
    turn[:, 2, 2] = turn[:, 3, 3] = 1.0
    K = crops.K.copy()
    K[:, 0, 0] *= scale.numpy()
    K[:, 1, 1] *= scale.numpy()
    # pixel u -> c + s R(θ) (u - c) about the principal point c (kornia's pixel centres are integers)
    centre = torch.as_tensor(crops.K[:, :2, 2]) - 0.5
    linear = scale[:, None, None] * turn[:, :2, :2]
    affine = torch.cat((linear, (centre - torch.einsum("bij,bj->bi", linear, centre))[:, :, None]), dim=2)
    size = images.shape[-1]
    warped = kornia.geometry.transform.warp_affine(images, affine.float(), (size, size), padding_mode="zeros")
    warped = (warped * color[0][:, None, None, None]).clamp(0, 1)
    mean = warped.mean(dim=(1, 2, 3), keepdim=True)
    warped = ((warped - mean) * color[1][:, None, None, None] + mean).clamp(0, 1)
    warped = kornia.enhance.adjust_saturation(warped, color[2]).clamp(0, 1)
    world2cam = turn.numpy()
    moved = CropSet(crops.images, K, hands_to_camera(crops.hands, models, world2cam), crops.hand_valid,
                    crops.valid, object_to_camera(crops.object_pose, world2cam), crops.object_name, crops.source)
    return moved, warped


def image_tensor(crops: CropSet, size: int) -> Tensor:
    """[B, 3, size, size] float in [0, 1] of the crops' images (resized when they are another size)."""
    images = torch.as_tensor(crops.images).permute(0, 3, 1, 2).float() / 255.0
    if images.shape[-1] != size:
        raise ValueError(f"crops are {images.shape[-1]} pixels wide, the model takes {size}")
    return images


def crop_fields(crops: CropSet, models: Mapping[str, HandModel], objects: Mapping[str, ArticulatedObject]
                ) -> dict[str, list[tuple[Tensor, Tensor, Tensor]]]:
    """Per side, per crop, the ground truth's interaction field (as ``interaction_field``, by k-d tree
    queries): hand-to-object distances [Vh] and nearest object vertices [Vh], object-to-hand distances
    [Vo], clamped to FIELD_MAX_DIST."""
    fields: dict[str, list] = {side: [] for side in SIDES}
    with torch.no_grad():
        verts = {side: models[side](*crops.hands[side].torch()).vertices.double().numpy() for side in SIDES}
        obj_verts: list = [None] * len(crops)
        for name in np.unique(crops.object_name):
            rows = np.flatnonzero(crops.object_name == name)
            posed = objects[str(name)].pose(*crops.object_pose.take(rows).torch(torch.float64)).numpy()
            for k, row in enumerate(rows):
                obj_verts[row] = posed[k]
    for row in range(len(crops)):
        object_tree = cKDTree(obj_verts[row])
        for side in SIDES:
            dist_ho, idx_ho = object_tree.query(verts[side][row])
            dist_oh, _ = cKDTree(verts[side][row]).query(obj_verts[row])
            fields[side].append((torch.as_tensor(dist_ho.clip(0, FIELD_MAX_DIST), dtype=torch.float32),
                                 torch.as_tensor(idx_ho, dtype=torch.int64),
                                 torch.as_tensor(dist_oh.clip(0, FIELD_MAX_DIST), dtype=torch.float32)))
    return fields


def contact_pairs(crops: CropSet, models: Mapping[str, HandModel], objects: Mapping[str, ArticulatedObject],
                  fields: dict[str, list] | None = None) -> dict[str, list[tuple[Tensor, Tensor]]]:
    """Per side, per crop, the ground truth's contacts: hand vertex ids and their nearest object vertex
    ids where that distance is at most CONTACT_THRES (``hogsa.metrics.arctic.cdev``'s set); from the
    crops' ``crop_fields`` when given."""
    pairs = {}
    for side, rows in (fields or crop_fields(crops, models, objects)).items():
        contacts = [(dist <= CONTACT_THRES).nonzero().view(-1) for dist, _, _ in rows]
        pairs[side] = [(contact, idx[contact]) for contact, (_, idx, _) in zip(contacts, rows)]
    return pairs


def targets_of(crops: CropSet, models: Mapping[str, HandModel], objects: Mapping[str, ArticulatedObject],
               contacts: dict[str, list[tuple[Tensor, Tensor]]], size: int) -> Targets:
    """The loss's ground truth of ``crops`` (camera frame) and its contacts (``contact_pairs``)."""
    K = torch.as_tensor(crops.K, dtype=torch.float32)
    focal = (K[:, 0, 0] + K[:, 1, 1]) / 2
    valid = torch.as_tensor(crops.valid)
    hands, joints = {}, {}
    for side in SIDES:
        pose = crops.hands[side].torch()
        hands[side] = encode_hand(pose, models[side], focal, size)
        joints[side] = models[side](*pose).joints
    pose = crops.object_pose.torch()
    keypoints = crop_keypoints(crops.object_name, objects, pose.rot, pose.articulation, pose.transl)
    return Targets(hands, joints, {s: torch.as_tensor(crops.hand_valid[s]) & valid for s in SIDES},
                   encode_object(pose, focal, size), keypoints, valid, contacts)


def arcticnet_outputs(model: ArcticNetSF, images: Tensor, K: Tensor, names: np.ndarray,
                      models: Mapping[str, HandModel], objects: Mapping[str, ArticulatedObject]) -> dict:
    """The model's parameters for B crops and their camera-frame meshes: ``hands``, ``obj``,
    ``joints`` / ``verts`` per side, ``object_verts`` (per crop [Vo, 3]) and ``keypoints`` [B, 16, 3]."""
    size = images.shape[-1]
    focal = (K[:, 0, 0] + K[:, 1, 1]) / 2
    hands, obj = model(images)
    decoded = {side: decode_hand(hands[side], models[side], focal, size) for side in SIDES}
    transl = weak_perspective_to_translation(obj.cam, focal, size)
    object_verts: list = [None] * len(names)
    for name in np.unique(names):  # the crops of one object are posed together
        rows = np.flatnonzero(names == name)
        index = torch.as_tensor(rows)
        params = type(obj)(obj.rot[index], obj.angle[index], obj.cam[index])
        posed = decode_object(params, objects[str(name)], focal[index], size)
        for k, row in enumerate(rows):
            object_verts[row] = posed[k]
    return {"hands": hands, "obj": obj, "joints": {s: decoded[s].joints for s in SIDES},
            "verts": {s: decoded[s].vertices for s in SIDES}, "object_verts": object_verts,
            "keypoints": crop_keypoints(names, objects, obj.rot, obj.angle, transl)}


def crop_keypoints(names: np.ndarray, objects: Mapping[str, ArticulatedObject], rot: Tensor, angle: Tensor,
                   transl: Tensor) -> Tensor:
    """[B, 16, 3] camera-frame keypoints (``object_keypoints``) of B crops' objects ``names`` [B] under
    their poses (rot [B, 3], angle [B], transl [B, 3]), the crops of one object posed together."""
    keypoints = rot.new_empty(len(names), 16, 3)
    for name in np.unique(names):
        index = torch.as_tensor(np.flatnonzero(names == name))
        keypoints[index] = pose_keypoints(object_keypoints(objects[str(name)]), rot[index], angle[index], transl[index])
    return keypoints


def field_targets(crops: CropSet, models: Mapping[str, HandModel], objects: Mapping[str, ArticulatedObject],
                  object_vertices: int, fields: dict[str, list] | None = None) -> dict[str, Tensor]:
    """The ground-truth fields of ``crops``: ro, lo [B, Vh]; or, ol [B, object_vertices] (zero-padded)
    and ``mask`` [B, object_vertices], 1 on the object's real vertices; from the crops' ``crop_fields``
    when given."""
    fields = fields or crop_fields(crops, models, objects)
    pad = lambda dist: torch.nn.functional.pad(dist, (0, object_vertices - dist.shape[0]))  # noqa: E731
    mask = torch.stack([pad(torch.ones_like(dist_oh)) for _, _, dist_oh in fields["right"]])
    return {"ro": torch.stack([row[0] for row in fields["right"]]), "lo": torch.stack([row[0] for row in fields["left"]]),
            "or": torch.stack([pad(row[2]) for row in fields["right"]]),
            "ol": torch.stack([pad(row[2]) for row in fields["left"]]), "mask": mask}


def run_identity(task: str, cfg: BaselinesConfig, seed: int, crops: CropSet) -> dict[str, str]:
    """What a checkpoint must match to be resumed: task, settings, seed, the training crops and the code."""
    sha = hashlib.sha256(np.ascontiguousarray(crops.images).tobytes())
    sha.update("\n".join(crops.source.tolist()).encode())
    return {"task": task, "config": json.dumps(asdict(cfg), sort_keys=True), "seed": str(seed),
            "crops": sha.hexdigest(), "code": code_digest(__name__)}


def checkpoint_tensors(model: nn.Module) -> dict[str, Tensor]:
    """The parameters and the persistent buffers (BatchNorm statistics) a resumed run needs."""
    persistent = model.state_dict()
    return {**dict(model.named_parameters()), **{k: v for k, v in model.named_buffers() if k in persistent}}


def train_baseline(task: str, cfg: BaselinesConfig, crops: CropSet, supervision: dict, out_dir: str | Path,
                   seed: int, models: Mapping[str, HandModel], objects: Mapping[str, ArticulatedObject],
                   object_vertices: int, name: str = "") -> nn.Module:
    """Train (or resume, or just load when finished) ``task`` on ``crops`` in ``out_dir``; returns the
    model in eval mode. ``supervision`` is ``contact_pairs`` (ArcticNet-SF) or ``field_targets``
    (InterField-SF) of ``crops``, computed once by the caller."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_model(task, cfg, models, object_vertices)
    if task == "arcticnet_sf":
        model.start_cameras(*mean_cameras(crops, models, cfg.image_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    tensors = checkpoint_tensors(model)
    identity = run_identity(task, cfg, seed, crops)
    start = int(resume(out_dir / CHECKPOINT, tensors, [optimizer], identity).get(ITERATION, 0))
    templates = object_templates(objects, cfg.object_points) if task == "interfield_sf" else None
    live = open_live(out_dir / "live", start)
    model.train()
    for step in tqdm(range(start, cfg.steps), desc=f"{task} {name}", initial=start, total=cfg.steps):
        terms = train_step(task, cfg, model, optimizer, crops, supervision, step, seed, models, objects, templates)
        loss = torch.stack(list(terms.values())).sum()
        live.log_metric("train/loss", loss.item())
        for key, value in terms.items():
            live.log_metric(f"train/{key}", value.item())
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_checkpoint(out_dir / CHECKPOINT, tensors, [optimizer], {**identity, ITERATION: str(done)})
        live.next_step()
    live.end()
    return model.eval()


def learning_rate(cfg: BaselinesConfig, step: int) -> float:
    """The learning rate of step ``step`` (0-based): ``cfg.lr``, or its half-cosine decay over ``cfg.steps``."""
    if not cfg.cosine_lr:
        return cfg.lr
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / cfg.steps))


def train_step(task: str, cfg: BaselinesConfig, model: nn.Module, optimizer: torch.optim.Optimizer, crops: CropSet,
               supervision: dict, step: int, seed: int, models: Mapping[str, HandModel],
               objects: Mapping[str, ArticulatedObject], templates: dict[str, Tensor] | None) -> dict[str, Tensor]:
    """One optimisation step on the batch of (seed, step), augmented and with dropout drawn from them too;
    returns the loss terms (name → scalar; their sum is the loss the step minimised)."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(cfg, step)
    rows = np.array(batch_indices(step, len(crops), cfg.batch_size, seed))
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    torch.manual_seed(seed * 1_000_003 + step)  # dropout: a function of (seed, step), as the batches
    chosen = crops.take(rows)
    batch, images = augment(chosen, image_tensor(chosen, cfg.image_size), cfg, models, generator)
    if task == "arcticnet_sf":
        terms = arcticnet_terms(model, batch, images, {s: [supervision[s][r] for r in rows] for s in SIDES},
                                models, objects, cfg.image_size, cfg.root_weight)
    else:
        terms = interfield_terms(model, batch, images, {k: v[rows] for k, v in supervision.items()}, templates)
    optimizer.zero_grad(set_to_none=True)
    torch.stack(list(terms.values())).sum().backward()
    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    return terms


def arcticnet_terms(model: ArcticNetSF, batch: CropSet, images: Tensor, contacts: dict[str, list],
                    models: Mapping[str, HandModel], objects: Mapping[str, ArticulatedObject],
                    size: int, root_weight: float = 0.0) -> dict[str, Tensor]:
    K = torch.as_tensor(batch.K, dtype=torch.float32)
    out = arcticnet_outputs(model, images, K, batch.object_name, models, objects)
    target = targets_of(batch, models, objects, contacts, size)
    return arcticnet_loss(out["hands"], out["obj"], out["joints"], out["verts"], out["object_verts"],
                          out["keypoints"], target, K, size, root_weight)


def interfield_terms(model: InterFieldSF, batch: CropSet, images: Tensor, fields: dict[str, Tensor],
                     templates: dict[str, Tensor]) -> dict[str, Tensor]:
    points = torch.stack([templates[str(name)] for name in batch.object_name])
    pred = model(images, points)
    valid = torch.as_tensor(batch.valid, dtype=torch.float32)[:, None]
    mask = fields["mask"]
    return {"dist_ro": field_loss(pred.dist_ro, fields["ro"], valid.expand_as(fields["ro"])),
            "dist_lo": field_loss(pred.dist_lo, fields["lo"], valid.expand_as(fields["lo"])),
            "dist_or": field_loss(pred.dist_or, fields["or"], valid * mask),
            "dist_ol": field_loss(pred.dist_ol, fields["ol"], valid * mask)}
