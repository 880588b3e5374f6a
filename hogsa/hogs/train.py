"""Training and evaluation of HOGS (and of its 3DGS ablation) for one (subject, object) group.

A group is "sXX/<object>": every train-split sequence of that subject with that object. Its images are
split into training and held-out samples: a view in ``held_out_views`` is held out at every frame,
and frame f of every view is held out when ``f % held_out_every == held_out_every // 2`` (the middle
of each block, so held-out frames are interpolated, not extrapolated). Each sample is a square crop
around the union of the parts' masks (plus a margin), resized to ``crop``² with its camera's K
adjusted, and with the background set to black using the mask: the model renders only hands and
object, so a black background (also behind the renders) is what it can match. Held-out PSNR and SSIM
are computed on these whole crops.

Loss (paper eq. 6): (1 − λ_SSIM)·L1 + λ_SSIM·(1 − SSIM) + λ_R·L_R. Adam; checkpoints
(``hogsa.training``) hold the parameters, the optimizer state and, as the run's identity, the
configuration, the parameters' shapes and a digest of the training code, so a run resumes where it
stopped and refuses to resume another run's (it starts afresh and says so). Batches are drawn from a
generator seeded by (seed, step), so a resumed run draws the batches an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from hogsa.articulated import ArticulatedObject
from hogsa.code_identity import code_digest
from hogsa.data.arctic_objects import read_object_template
from hogsa.data.dataset import DatasetIndex
from hogsa.data.schema import Camera, Sequence
from hogsa.geometry import project_points
from hogsa.hand import HandModel
from hogsa.hogs.model import (
    HOGS,
    PART_LABELS,
    PARTS,
    GaussianScene,
    HandPose,
    ObjectPose,
    Shading,
    render_gaussians,
)
from hogsa.hogs.pointcloud import PointCloudGaussians
from hogsa.hogs.poses import FrameKey, PoseCorrections, corrected, fit_corrections
from hogsa.io import save_safetensors
from hogsa.metrics.image import LPIPS, NOT_COMPUTED, psnr, ssim
from hogsa.training import (
    ITERATION,
    batch_indices,
    checkpoint_metadata,
    deterministic_algorithms,
    load_checkpoint,
    open_live,
    resume,
    save_checkpoint,
)

Kind = Literal["hogs", "3dgs"]
KINDS = ("hogs", "3dgs")
CHECKPOINT = "model.safetensors"
FITTED = "held_out_poses_fitted"  # checkpoint metadata: "true" once the held-out frames' poses are fitted
_VISIBLE_TOLERANCE = 0.004  # m: a Gaussian farther than this behind the first surface at its pixel is occluded


@dataclass(frozen=True)
class HOGSLearningRates:
    """Adam learning rates of HOGS's parameter groups (GaMeS's for the appearance)."""

    vertices: float  # canonical vertex offsets δ, metres per step
    bary: float  # barycentric logits
    scale: float  # in-plane log scale factors
    opacity: float  # opacity logits
    sh_dc: float  # SH degree 0
    sh_rest: float  # SH degrees ≥ 1 (GaMeS: sh_dc / 20)
    lighting: float  # irradiance SH coefficients (shading "sh2" only)


@dataclass(frozen=True)
class PointLearningRates:
    """Adam learning rates of the 3DGS ablation's parameter groups (3DGS's names)."""

    position: float  # centre offsets, metres per step
    rotation: float  # quaternions
    scale: float  # log-scales
    opacity: float
    sh_dc: float
    sh_rest: float
    lighting: float


@dataclass(frozen=True)
class PoseLearningRates:
    """Adam learning rates of the per-frame pose corrections (hogsa.hogs.poses)."""

    angles: float  # radians per step
    offsets: float  # metres per step


@dataclass(frozen=True)
class HOGSReportConfig:
    """params.yaml ``hogs.report``: the stage's figures (hogsa.report.hogs), rendered at the crops' size."""

    dpi: int
    image_inches: float  # side of each image of a figure's grid
    held_out_shown: int  # held-out crops shown per subset (novel views, novel poses), spread over it
    orbit_views: int  # cameras of the 360° orbit, evenly spaced in azimuth
    orbit_fov_deg: float  # field of view of the orbit's and the novel poses' cameras
    orbit_elevation_deg: float
    novel_poses_elevation_deg: float  # of the novel poses' two cameras, half a turn apart
    object_opening: float  # radians added to the object's articulation in the novel poses' figure


@dataclass(frozen=True)
class HOGSConfig:
    """params.yaml ``hogs`` section."""

    groups: list[str]  # "sXX/<object>" groups, or ["all"]: every (subject, object) of the train split
    gaussians_per_face: int  # paper: k = 2
    sh_degree: int  # 3 in 3DGS; 1 keeps CPU training fast (view dependence is weak on these materials)
    init_opacity: float
    shading: Shading  # "none": the paper's colours; "sh2": × a learned irradiance of the normal (hogsa.hogs.model)
    crop: int  # training and evaluation crops are crop × crop pixels
    crop_margin: float  # added on each side of the parts' bounding box, as a fraction of its longer side
    held_out_views: list[int]  # views held out at every frame (novel views)
    held_out_every: int  # every n-th frame is held out in every view (novel poses)
    color_init_views: int  # training crops whose pixels initialise the Gaussians' colours; 0 = grey
    iterations: int
    batch_views: int  # crops rendered per step
    lr_hogs: HOGSLearningRates
    lr_3dgs: PointLearningRates
    refine_poses: bool  # learn per-frame corrections of the annotated poses (hogsa.hogs.poses); not in the paper
    lr_poses: PoseLearningRates
    pose_fit_iterations: int  # steps per held-out frame fitting its correction with the model frozen
    lambda_ssim: float  # paper: 0.2
    lambda_r: float  # paper: 0.5
    eval_every: int  # steps between held-out evaluations logged to dvclive
    checkpoint_every: int
    lpips_weights: str | None  # safetensors file of LPIPS (AlexNet) weights; None: LPIPS is "not computed"
    report: HOGSReportConfig


@dataclass(frozen=True, eq=False)
class Sample:
    """One cropped view of one frame, with the poses that produced it."""

    image: Tensor  # [3, S, S] float32 in [0, 1], black outside the parts' mask
    mask: Tensor  # [S, S] uint8 part labels (0 background, 1 right, 2 left, 3 object)
    camera: Camera  # the crop's camera (S × S)
    right: HandPose
    left: HandPose
    obj: ObjectPose
    sequence: str
    view: int
    frame: int


@dataclass(frozen=True, eq=False)
class GroupData:
    """Everything a group's model is trained and evaluated on."""

    name: str  # "sXX/<object>"
    hands: dict[str, HandModel]
    obj: ArticulatedObject
    sequences: list[Sequence]
    train: list[Sample]
    held_out: list[Sample]


# --------------------------------------------------------------------------- #
# Training
# --------------------------------------------------------------------------- #
class TrainedScene(NamedTuple):
    model: GaussianScene
    poses: PoseCorrections  # per-frame corrections: training frames learned, held-out frames fitted


@deterministic_algorithms()
def train_hogs(cfg: HOGSConfig, data: GroupData, kind: Kind, out_dir: str | Path, seed: int) -> TrainedScene:
    """Train (or resume, or just load when finished) the ``kind`` model of ``data``'s group in ``out_dir``.

    With ``refine_poses``, every training frame's pose correction is learned with the model, and after
    the last step every held-out frame's is fitted with the model frozen, on its crops from the
    training views (``fit_held_out_poses``). Writes ``out_dir/model.safetensors`` every
    ``checkpoint_every`` steps and at the end, and dvclive curves under ``out_dir/live``. Runs with
    deterministic algorithms: same inputs and seed, same model.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(kind, cfg, data, seed)
    poses = pose_corrections(cfg, data)
    params = checkpoint_parameters(model, poses)
    groups = model.param_groups(learning_rates(kind, cfg))
    if cfg.refine_poses:
        groups += poses.param_groups(asdict(cfg.lr_poses))
    optimizer = torch.optim.Adam(groups, eps=1e-15)
    identity = run_identity(cfg, kind, data.name, seed, params)
    stored = resume(out_dir / CHECKPOINT, params, [optimizer], identity)
    start, fitted = int(stored.get(ITERATION, 0)), stored.get(FITTED) == "true"
    if start == 0:
        init_colors(model, data.train, cfg.color_init_views, torch.Generator().manual_seed(seed))

    live = open_live(out_dir / "live", start)
    steps = tqdm(range(start, cfg.iterations), desc=f"{kind} {data.name}", initial=start, total=cfg.iterations)
    for step in steps:
        batch = [data.train[i] for i in batch_indices(step, len(data.train), cfg.batch_views, seed)]
        pred = torch.stack([model.render(s.camera, *poses.apply((s.sequence, s.frame), s.right, s.left, s.obj)
                                         ).rgb.permute(2, 0, 1) for s in batch])
        target = torch.stack([s.image for s in batch])
        loss, terms = hogs_loss(pred, target, model.regularizer(), cfg.lambda_ssim, cfg.lambda_r)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        check_finite_gradients(params, step)
        optimizer.step()

        terms["psnr"] = float(psnr(pred.detach().clamp(0, 1), target).mean())
        for name, value in terms.items():
            live.log_metric(f"train/{name}", value)
        steps.set_postfix(loss=f"{terms['loss']:.4f}", psnr=f"{terms['psnr']:.2f}")
        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.iterations:
            for name, value in evaluate(model, [corrected(s, poses) for s in data.held_out]).items():
                if isinstance(value, float):
                    live.log_metric(f"held_out/{name}", value)
        if done % cfg.checkpoint_every == 0 or done == cfg.iterations:
            save_checkpoint(out_dir / CHECKPOINT, params, [optimizer],
                            {**identity, ITERATION: str(done), FITTED: "false"})
        live.next_step()
    live.end()
    if cfg.refine_poses and not fitted:
        fit_held_out_poses(cfg, model, poses, data, seed)
        save_checkpoint(out_dir / CHECKPOINT, params, [optimizer],
                        {**identity, ITERATION: str(cfg.iterations), FITTED: "true"})
    return TrainedScene(model, poses)


def load_trained(cfg: HOGSConfig, data: GroupData, kind: Kind, path: str | Path, seed: int) -> TrainedScene:
    """The finished ``kind`` model of ``data``'s group that ``train_hogs`` wrote at ``path``; raises naming the
    file when there is none, when it is unfinished, or when other settings or code wrote it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained {kind} model of group {data.name}; run the hogs stage")
    model = build_model(kind, cfg, data, seed)
    poses = pose_corrections(cfg, data)
    params = checkpoint_parameters(model, poses)
    stored = checkpoint_metadata(path)
    identity = run_identity(cfg, kind, data.name, seed, params)
    changed = sorted(k for k in identity if stored.get(k) != identity[k])
    if changed:
        raise ValueError(f"{path}: written with other {', '.join(changed)} than these; run the hogs stage")
    finished = int(stored[ITERATION]) == cfg.iterations
    if not finished or (cfg.refine_poses and stored.get(FITTED) != "true"):
        raise ValueError(f"{path}: training stopped at iteration {stored[ITERATION]} of {cfg.iterations} "
                         f"(held-out poses fitted: {stored.get(FITTED)}); run the hogs stage")
    load_checkpoint(path, params)
    return TrainedScene(model.eval(), poses)


def export_scene(trained: TrainedScene, sample: Sample, path: str | Path) -> None:
    """Write ``GaussianScene.snapshot`` of ``sample`` (its camera, its frame's corrected poses) as
    safetensors (atomically): a trained scene for bench/render.py."""
    poses = trained.poses.apply((sample.sequence, sample.frame), sample.right, sample.left, sample.obj)
    tensors = {name: t.contiguous() for name, t in trained.model.snapshot(sample.camera, *poses).items()}
    save_safetensors(tensors, path)


def frame_keys(samples: list[Sample]) -> list[FrameKey]:
    return sorted({(s.sequence, s.frame) for s in samples})


def pose_corrections(cfg: HOGSConfig, data: GroupData) -> PoseCorrections:
    """Zero corrections of every frame of the group (training and held-out) with ``refine_poses``, else none."""
    return PoseCorrections(frame_keys(data.train + data.held_out) if cfg.refine_poses else [])


def fit_held_out_poses(cfg: HOGSConfig, model: GaussianScene, poses: PoseCorrections, data: GroupData,
                       seed: int) -> None:
    """Fit the correction of each held-out frame (one no training crop shows) on its crops from the
    training views, the model frozen; the held-out views are never fitted on."""
    trained_frames = set(frame_keys(data.train))
    by_frame: dict[FrameKey, list[Sample]] = {}
    for s in data.held_out:
        if (s.sequence, s.frame) not in trained_frames and s.view not in cfg.held_out_views:
            by_frame.setdefault((s.sequence, s.frame), []).append(s)
    fit_corrections(model, poses, by_frame, lambda pred, target: image_loss(pred, target, cfg.lambda_ssim),
                    asdict(cfg.lr_poses), cfg.pose_fit_iterations, cfg.batch_views, seed,
                    desc=f"fit held-out poses {data.name}")


def corrected_group(data: GroupData, poses: PoseCorrections) -> GroupData:
    """``data`` with every sample's poses corrected (what the trained model is compared with)."""
    return dataclasses.replace(data, train=[corrected(s, poses) for s in data.train],
                               held_out=[corrected(s, poses) for s in data.held_out])


def build_model(kind: Kind, cfg: HOGSConfig, data: GroupData, seed: int) -> GaussianScene:
    """A fresh ``kind`` model of the group (HOGS, or the 3DGS ablation)."""
    if kind == "hogs":
        return HOGS(data.hands, data.obj, torch.Generator().manual_seed(seed), cfg.gaussians_per_face,
                    cfg.sh_degree, cfg.init_opacity, cfg.shading)
    if kind == "3dgs":
        return PointCloudGaussians(data.hands, data.obj, cfg.sh_degree, cfg.init_opacity, cfg.shading)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def learning_rates(kind: Kind, cfg: HOGSConfig) -> dict[str, float]:
    return asdict(cfg.lr_hogs if kind == "hogs" else cfg.lr_3dgs)


def image_loss(pred: Tensor, target: Tensor, lambda_ssim: float) -> Tensor:  # [B, 3, H, W] each → []
    """(1 − λ_SSIM)·L1 + λ_SSIM·(1 − SSIM): the image part of paper eq. 6."""
    return (1.0 - lambda_ssim) * (pred - target).abs().mean() + lambda_ssim * (1.0 - ssim(pred, target).mean())


def hogs_loss(
    pred: Tensor,  # [B, 3, H, W]
    target: Tensor,  # [B, 3, H, W] in [0, 1]
    regularizer: Tensor,  # [] L_R, metres
    lambda_ssim: float,
    lambda_r: float,
) -> tuple[Tensor, dict[str, float]]:
    """Paper eq. 6 and its terms (as floats, for logging)."""
    image = image_loss(pred, target, lambda_ssim)
    loss = image + lambda_r * regularizer
    return loss, {"loss": loss.item(), "image": image.item(), "l_r": regularizer.item()}


def check_finite_gradients(params: dict[str, nn.Parameter], step: int) -> None:
    """Raise FloatingPointError naming the parameters whose gradient holds NaN or ±inf (one bad
    Gaussian would otherwise poison a whole part through Adam, and the hands' joints spread it further)."""
    bad = [name for name, p in params.items() if p.grad is not None and not p.grad.isfinite().all()]
    if bad:
        raise FloatingPointError(f"step {step}: non-finite gradients in {bad}")


@torch.no_grad()
def init_colors(model: GaussianScene, samples: list[Sample], n_views: int, generator: torch.Generator) -> None:
    """Set each Gaussian's base colour to the mean of the pixels it covers in ``n_views`` training crops.

    A Gaussian counts in a crop when its centre projects inside, onto a pixel that the mask gives to
    its part, and no more than ``_VISIBLE_TOLERANCE`` behind the first surface there (depth of an opaque
    render of the initial model). Gaussians seen nowhere keep their colour.
    """
    if n_views <= 0:
        return
    picks = torch.randperm(len(samples), generator=generator)[:n_views].tolist()
    totals: dict[str, Tensor] = {}
    counts: dict[str, Tensor] = {}
    for sample in (samples[i] for i in picks):
        gaussians = model.posed_gaussians(sample.right, sample.left, sample.obj)
        opaque = {part: g._replace(opacities=torch.ones_like(g.opacities)) for part, g in gaussians.items()}
        depth = render_gaussians(opaque, sample.camera, model.sh_degree).depth  # [S, S]
        K = torch.as_tensor(sample.camera.K, dtype=torch.float32)
        world2cam = torch.as_tensor(sample.camera.world2cam, dtype=torch.float32)
        for part, label in zip(PARTS, PART_LABELS):
            uv, z = project_points(gaussians[part].means, K, world2cam)
            col, row = uv[:, 0].floor().long(), uv[:, 1].floor().long()
            inside = (z > 0) & (col >= 0) & (col < sample.camera.width) & (row >= 0) & (row < sample.camera.height)
            col, row = col.clamp(0, sample.camera.width - 1), row.clamp(0, sample.camera.height - 1)
            seen = inside & (sample.mask[row, col] == label) & (z <= depth[row, col] + _VISIBLE_TOLERANCE)
            colours = sample.image[:, row, col].T  # [N, 3]
            totals[part] = totals.get(part, 0) + colours * seen[:, None]
            counts[part] = counts.get(part, 0) + seen.float()
    for part in PARTS:
        model.set_colors(part, totals[part] / counts[part].clamp_min(1.0)[:, None], counts[part] > 0)


# --------------------------------------------------------------------------- #
# Checkpoints
# --------------------------------------------------------------------------- #
def checkpoint_parameters(model: GaussianScene, poses: PoseCorrections) -> dict[str, nn.Parameter]:
    """What a checkpoint holds: the model's trainable parameters and the pose corrections (``poses.``)."""
    return {**model.trainable_parameters(), **{f"poses.{name}": p for name, p in poses.named_parameters()}}


def run_identity(cfg: HOGSConfig, kind: Kind, group: str, seed: int, params: dict[str, nn.Parameter]
                 ) -> dict[str, str]:
    """What a checkpoint must match to be resumed: the settings that shape training, the parameters and
    the code (so a resumed or reloaded model never mixes code versions)."""
    bookkeeping = ("groups", "eval_every", "checkpoint_every", "lpips_weights", "report")
    settings = {k: v for k, v in asdict(cfg).items() if k not in bookkeeping}
    shapes = {name: list(p.shape) for name, p in params.items()}
    return {"kind": kind, "group": group, "seed": str(seed), "config": json.dumps(settings, sort_keys=True),
            "parameters": json.dumps(shapes, sort_keys=True), "code": code_digest(__name__)}


# --------------------------------------------------------------------------- #
# Evaluation
# --------------------------------------------------------------------------- #
def evaluate(model: GaussianScene, samples: list[Sample], lpips: LPIPS | None = None) -> dict[str, float | str | int]:
    """Mean PSNR, SSIM (and LPIPS, given its network) over ``samples``' crops, black background."""
    return summarize(image_scores(model, samples, lpips))


def evaluate_held_out(model: GaussianScene, data: GroupData, cfg: HOGSConfig,
                      lpips: LPIPS | None = None) -> dict[str, dict[str, float | str | int]]:
    """``evaluate`` over all held-out crops and over each non-empty subset of ``held_out_subsets``
    (each crop rendered once)."""
    scores = dict(zip(map(id, data.held_out), image_scores(model, data.held_out, lpips)))
    subsets = held_out_subsets(data, cfg)
    return {name: summarize([scores[id(s)] for s in samples]) for name, samples in subsets.items() if samples}


@torch.no_grad()
def image_scores(model: GaussianScene, samples: list[Sample], lpips: LPIPS | None = None) -> list[dict[str, float]]:
    """Per crop: PSNR and SSIM (and LPIPS) of the render, clamped to [0, 1], against the image."""
    scores = []
    for sample in samples:
        pred = model.render(sample.camera, sample.right, sample.left, sample.obj).rgb.permute(2, 0, 1)[None]
        pred, target = pred.clamp(0, 1), sample.image[None]
        score = {"psnr": float(psnr(pred, target)[0]), "ssim": float(ssim(pred, target)[0])}
        if lpips is not None:
            score["lpips"] = float(lpips(pred, target)[0])
        scores.append(score)
    return scores


def summarize(scores: list[dict[str, float]]) -> dict[str, float | str | int]:
    """Means of per-image scores; LPIPS is ``NOT_COMPUTED`` when the scores lack it."""
    mean = {key: float(np.mean([score[key] for score in scores])) for key in ("psnr", "ssim")}
    lpips = float(np.mean([score["lpips"] for score in scores])) if scores and "lpips" in scores[0] else NOT_COMPUTED
    return {**mean, "lpips": lpips, "images": len(scores)}


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
def resolve_groups(groups: list[str], index: DatasetIndex, hands: dict[str, HandModel]) -> list[str]:
    """``groups`` as "sXX/<object>" names; ["all"] expands to every (subject, object) of the train split."""
    hands_mean = {side: hand.hands_mean.numpy() for side, hand in hands.items()}
    sequences = [index.read(name, hands_mean) for name in index.sequences("train")]
    present = sorted({f"{seq.subject}/{seq.object_name}" for seq in sequences})
    if groups == ["all"]:
        return present
    unknown = [g for g in groups if g not in present]
    if unknown:
        raise ValueError(f"params.yaml: hogs.groups names {unknown}, which the train split lacks; it has {present}")
    return list(groups)


def load_group(cfg: HOGSConfig, index: DatasetIndex, hands: dict[str, HandModel], group: str) -> GroupData:
    """The group's train-split sequences, cut into training and held-out crops (module docstring), and
    its object's template (ARCTIC layout)."""
    hands_mean = {side: hand.hands_mean.numpy() for side, hand in hands.items()}
    sequences = [seq for seq in (index.read(name, hands_mean) for name in index.sequences("train"))
                 if f"{seq.subject}/{seq.object_name}" == group]
    if not sequences:
        raise ValueError(f"group {group!r}: no train-split sequence of this subject and object")
    train, held_out = [], []
    for seq in sequences:
        for frame in tqdm(range(seq.frames), desc=f"crops {seq.name}", leave=False):
            if not (seq.hand_valid["right"][frame] and seq.hand_valid["left"][frame]):
                continue  # a model of both hands is trained on frames where both are annotated
            poses = (HandPose.from_sequence(seq, "right", frame), HandPose.from_sequence(seq, "left", frame),
                     ObjectPose.from_sequence(seq, frame))
            for view in seq.views:
                sample = crop_sample(seq, view, frame, poses, cfg.crop, cfg.crop_margin)
                if sample is not None:
                    (held_out if is_held_out(view, frame, cfg) else train).append(sample)
    obj = read_object_template(index.root, sequences[0].object_name)
    return GroupData(group, hands, obj, sequences, train, held_out)


def is_held_out(view: int, frame: int, cfg: HOGSConfig) -> bool:
    return view in cfg.held_out_views or frame % cfg.held_out_every == cfg.held_out_every // 2


def held_out_subsets(data: GroupData, cfg: HOGSConfig) -> dict[str, list[Sample]]:
    """The held-out samples, all of them and split into novel views (held-out views, every frame) and
    novel poses (held-out frames seen from the training views)."""
    return {
        "held_out": data.held_out,
        "novel_views": [s for s in data.held_out if s.view in cfg.held_out_views],
        "novel_poses": [s for s in data.held_out if s.view not in cfg.held_out_views],
    }


def crop_sample(seq: Sequence, view: int, frame: int, poses: tuple[HandPose, HandPose, ObjectPose], size: int,
                margin: float) -> Sample | None:
    """The ``size``² crop of one view (module docstring); None when no part is in view."""
    mask = seq.mask(view, frame)
    if mask is None:
        raise ValueError(f"sequence {seq.name}: HOGS needs part masks (view {view}, frame {frame} has none)")
    box = crop_box(mask, margin)
    if box is None:
        return None
    image = torch.tensor(seq.image(view, frame)).permute(2, 0, 1).float() / 255.0  # [3, H, W]
    crop_image, crop_mask, camera = crop_view(image, torch.tensor(mask), seq.camera(view, frame), box, size)
    return Sample(crop_image, crop_mask, camera, *poses, seq.name, view, frame)


def crop_view(
    image: Tensor,  # [3, H, W] in [0, 1]
    labels: Tensor,  # [H, W] uint8 part labels
    camera: Camera,  # the image's camera
    box: tuple[int, int, int],  # (x0, y0, side) window, pixels
    size: int,
) -> tuple[Tensor, Tensor, Camera]:
    """The window resized to ``size``²: image [3, S, S] black where the labels are 0 (antialiased
    bilinear), labels [S, S] (nearest, pixel centres aligned) and the window's camera."""
    x0, y0, side = box
    masked = image * (labels > 0)
    crop_image = F.interpolate(_window(masked, x0, y0, side)[None], size=(size, size), mode="bilinear",
                               antialias=True, align_corners=False)[0].clamp(0, 1)
    crop_labels = F.interpolate(_window(labels[None].float(), x0, y0, side)[None], size=(size, size),
                                mode="nearest-exact")[0, 0].to(torch.uint8)
    return crop_image, crop_labels, crop_camera(camera, x0, y0, side, size)


def crop_box(mask: np.ndarray, margin: float) -> tuple[int, int, int] | None:  # mask [H, W] labels
    """Square window (x0, y0, side) in pixels around the labelled pixels, ``margin``·longer side added
    on each side; it may reach outside the image. None for an empty mask."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    side = int(np.ceil(max(height, width) * (1.0 + 2.0 * margin)))
    y0 = round(float(rows.min() + rows.max() + 1 - side) / 2)
    x0 = round(float(cols.min() + cols.max() + 1 - side) / 2)
    return x0, y0, side


def crop_camera(camera: Camera, x0: int, y0: int, side: int, size: int) -> Camera:
    """The camera whose ``size``² image is the window (x0, y0, side) of ``camera``'s, resized."""
    scale = size / side
    K = camera.K.copy()
    K[0, 0], K[1, 1] = K[0, 0] * scale, K[1, 1] * scale
    K[0, 2], K[1, 2] = (K[0, 2] - x0) * scale, (K[1, 2] - y0) * scale
    return Camera(K=K, world2cam=camera.world2cam, width=size, height=size)


def _window(image: Tensor, x0: int, y0: int, side: int) -> Tensor:  # [C, H, W] → [C, side, side]
    """Pixels [y0, y0 + side) × [x0, x0 + side), zero outside the image."""
    _, height, width = image.shape
    padded = F.pad(image, (max(-x0, 0), max(x0 + side - width, 0), max(-y0, 0), max(y0 + side - height, 0)))
    return padded[:, max(y0, 0): max(y0, 0) + side, max(x0, 0): max(x0, 0) + side]
