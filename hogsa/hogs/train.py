"""Training of HOGS (and of its 3DGS ablation) for one (subject, object) group.

The group's crops come from ``hogsa.data.groups``; held-out scores logged during training and
reported by the stage come from ``hogsa.hogs.evaluate``.

Loss (paper eq. 6): (1 − λ_SSIM)·L1 + λ_SSIM·(1 − SSIM) + λ_R·L_R. Adam; checkpoints
(``hogsa.training``) hold the parameters, the optimizer state and, as the run's identity, the
configuration, the parameters' shapes and a digest of the training code, so a run resumes where it
stopped and refuses to resume another run's (it starts afresh and says so). Batches are drawn from a
generator seeded by (seed, step), so a resumed run draws the batches an uninterrupted one would.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from hogsa.code_identity import code_digest
from hogsa.data.groups import GroupData, Sample
from hogsa.geometry import project_points
from hogsa.hogs.evaluate import evaluate
from hogsa.hogs.binding import GaussianSet
from hogsa.hogs.model import HOGS, PART_LABELS, PARTS, GaussianScene, Shading, render_gaussians
from hogsa.hogs.pointcloud import PointCloudGaussians
from hogsa.hogs.poses import FrameKey, PoseCorrections, corrected, fit_corrections
from hogsa.io import save_safetensors
from hogsa.metrics.image import psnr, ssim
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
# checkpoint metadata: "true" once the held-out frames' pose corrections are fitted, else "false"
HELD_OUT_POSES_FITTED = "held_out_poses_fitted"
OCCLUSION_TOLERANCE = 0.004  # m: a Gaussian farther than this behind the first surface at its pixel is occluded


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
    workers: int  # processes training models at once, one torch thread each (1: in the stage's process)
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
    optimizer = build_optimizer(kind, cfg, model, poses)
    identity = run_identity(cfg, kind, data.name, seed, params)
    stored = resume(out_dir / CHECKPOINT, params, [optimizer], identity)
    start, fitted = int(stored.get(ITERATION, 0)), stored.get(HELD_OUT_POSES_FITTED) == "true"
    if start == 0:
        init_colors(model, data.train, cfg.color_init_views, torch.Generator().manual_seed(seed))

    live = open_live(out_dir / "live", start)
    steps = tqdm(range(start, cfg.iterations), desc=f"{kind} {data.name}", initial=start, total=cfg.iterations)
    for step in steps:
        batch = [data.train[i] for i in batch_indices(step, len(data.train), cfg.batch_views, seed)]
        terms = train_step(cfg, model, poses, optimizer, batch, step)
        for name, value in terms.items():
            live.log_metric(f"train/{name}", value)
        steps.set_postfix(loss=f"{terms['loss']:.4f}", psnr=f"{terms['psnr']:.2f}")
        done = step + 1
        if data.held_out and (done % cfg.eval_every == 0 or done == cfg.iterations):
            for name, value in evaluate(model, [corrected(s, poses) for s in data.held_out]).means().items():
                live.log_metric(f"held_out/{name}", value)
        if done % cfg.checkpoint_every == 0 or done == cfg.iterations:
            save_checkpoint(out_dir / CHECKPOINT, params, [optimizer],
                            {**identity, ITERATION: str(done), HELD_OUT_POSES_FITTED: "false"})
        live.next_step()
    live.end()
    if cfg.refine_poses and not fitted:
        fit_held_out_poses(cfg, model, poses, data, seed)
        save_checkpoint(out_dir / CHECKPOINT, params, [optimizer],
                        {**identity, ITERATION: str(cfg.iterations), HELD_OUT_POSES_FITTED: "true"})
    return TrainedScene(model, poses)


def train_step(cfg: HOGSConfig, model: GaussianScene, poses: PoseCorrections, optimizer: torch.optim.Optimizer,
               batch: list[Sample], step: int) -> dict[str, float]:
    """One Adam step of paper eq. 6 on ``batch``'s crops, rendered at their frames' corrected poses;
    returns the loss terms and the batch's PSNR (of the renders before the step) for logging."""
    pred = model.render_frames([s.camera for s in batch], *poses.apply_frames(batch)).rgb  # [B, 3, S, S]
    target = torch.stack([s.image for s in batch])
    loss, terms = hogs_loss(pred, target, model.regularizer(), cfg.lambda_ssim, cfg.lambda_r)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    check_finite_gradients(checkpoint_parameters(model, poses), step)
    optimizer.step()
    terms["psnr"] = float(psnr(pred.detach().clamp(0, 1), target).mean())
    return terms


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
    if not finished or (cfg.refine_poses and stored.get(HELD_OUT_POSES_FITTED) != "true"):
        raise ValueError(f"{path}: training stopped at iteration {stored[ITERATION]} of {cfg.iterations} "
                         f"(held-out poses fitted: {stored.get(HELD_OUT_POSES_FITTED)}); run the hogs stage")
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


def build_model(kind: Kind, cfg: HOGSConfig, data: GroupData, seed: int) -> GaussianScene:
    """A fresh ``kind`` model of the group (HOGS, or the 3DGS ablation)."""
    if kind == "hogs":
        return HOGS(data.hands, data.obj, torch.Generator().manual_seed(seed), cfg.gaussians_per_face,
                    cfg.sh_degree, cfg.init_opacity, cfg.shading)
    if kind == "3dgs":
        return PointCloudGaussians(data.hands, data.obj, cfg.sh_degree, cfg.init_opacity, cfg.shading)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def build_optimizer(kind: Kind, cfg: HOGSConfig, model: GaussianScene, poses: PoseCorrections) -> torch.optim.Adam:
    """Adam over the model's parameter groups (at the ``kind``'s learning rates) and, with
    ``refine_poses``, the pose corrections'."""
    groups = model.param_groups(asdict(cfg.lr_hogs if kind == "hogs" else cfg.lr_3dgs))
    if cfg.refine_poses:
        groups += poses.param_groups(asdict(cfg.lr_poses))
    return torch.optim.Adam(groups, eps=1e-15)


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
    its part, and no more than ``OCCLUSION_TOLERANCE`` behind the first surface there (depth of an opaque
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
        one = {part: GaussianSet(*(field[None] for field in g)) for part, g in opaque.items()}
        depth = render_gaussians(one, [sample.camera], model.sh_degree).depth[0]  # [S, S]
        K = torch.as_tensor(sample.camera.K, dtype=torch.float32)
        world2cam = torch.as_tensor(sample.camera.world2cam, dtype=torch.float32)
        for part, label in zip(PARTS, PART_LABELS):
            uv, z = project_points(gaussians[part].means, K, world2cam)
            col, row = uv[:, 0].floor().long(), uv[:, 1].floor().long()
            inside = (z > 0) & (col >= 0) & (col < sample.camera.width) & (row >= 0) & (row < sample.camera.height)
            col, row = col.clamp(0, sample.camera.width - 1), row.clamp(0, sample.camera.height - 1)
            seen = inside & (sample.mask[row, col] == label) & (z <= depth[row, col] + OCCLUSION_TOLERANCE)
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
    bookkeeping = ("groups", "workers", "eval_every", "checkpoint_every", "lpips_weights", "report")
    settings = {k: v for k, v in asdict(cfg).items() if k not in bookkeeping}
    shapes = {name: list(p.shape) for name, p in params.items()}
    return {"kind": kind, "group": group, "seed": str(seed), "config": json.dumps(settings, sort_keys=True),
            "parameters": json.dumps(shapes, sort_keys=True), "code": code_digest(__name__)}
