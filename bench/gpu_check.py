"""GPU check: hogsa's CPU rasterizer against gsplat, the speed of both, and HOGS training on CUDA.

For a machine with a CUDA GPU, nvcc and ninja (README, "On a GPU"); ``make gpu-check`` runs it. In order:

1. build: imports gsplat's CUDA backend, which JIT-compiles its kernels on first use (MAX_JOBS = the
   CPU count unless set), timed.
2. compare: scenes rendered by hogsa's CPU rasterizer (CPU tensors) and by gsplat (CUDA tensors, through
   ``hogsa.render.rasterize``'s dispatch): random Gaussians seen by two cameras with backgrounds, random
   Gaussians with degree-3 SH colours in "antialiased" mode, the mesh-bound ellipsoid of bench/render.py,
   and a HOGS model of the smoke group seen from a training crop. Colours, alphas and depths
   (render_mode "RGB+D") and the gradients of means, quats, scales, opacities and colours of one loss
   Σ w·output with fixed random weights w, the same for both: max and mean |Δ|, the reference's
   largest magnitude and the relative L2 error ‖Δ‖ / ‖reference‖.
3. speed_gsplat: forward and forward+backward (of the image and alpha sums) medians in ms at 128², 224²
   and 1400×1000 with ≈20k and ≈200k Gaussians on the ellipsoid, after warm-up calls.
4. train: HOGS on the smoke group (params.yaml with params/smoke.yaml; its embedded data generated into
   a temporary folder) for a fixed number of steps on CUDA, at the smoke crop (32²) and the default
   crop (128², cut from the same images), and a few steps on the CPU for comparison: iterations per
   second after warm-up steps. The step is ``hogsa.hogs.train.train_step``, as ``train_hogs`` takes it
   (render the batch, paper eq. 6, Adam, deterministic algorithms), without its logging and checkpoints.
5. augment: the augmentation's batched steps (``hogsa.augment.render``) on each device: a batch of
   the smoke group's training poses and cameras (the crops rescaled to the default crop) rendered by its
   initial HOGS model with part coverage in one rasterizer call, refined by an untrained SRM of the
   default width, resized to 224², composited and labelled: milliseconds per image (the paper: 60).
6. speed_cpu: the CPU rasterizer on the cases of 3, cheapest first, inside what is left of the time
   budget (``--budget-s``, 7 minutes): a case whose cost, predicted from the same Gaussians at the
   previous size, would not fit is skipped and says why.

Prints a line per result as it comes, then one JSON object as the last line, and writes it to
reports/gpu/gpu_check.json (atomically). A part that fails records its error and the others still run;
the exit status is then 1. Without CUDA it prints {"cuda": false, "message": ...}, writes nothing and
exits 0. ``--dry-run`` runs every part at tiny sizes on the CPU, hogsa's rasterizer with 16-pixel tiles
standing in for gsplat (which needs CUDA): a test of this script, written only with ``--out``.

Conventions as ``hogsa.render``: quaternions wxyz, viewmats world→camera (OpenCV), K in pixels,
metres; times in milliseconds (``*_ms``) or seconds (``seconds``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
# hogsa from this source tree (a GPU machine runs it uninstalled), and bench/render.py beside this file
for _folder in (ROOT / "bench", ROOT):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from render import ellipsoid_mesh, forward_and_backward, mesh_gaussians, timed  # noqa: E402  (bench/render.py)

from hogsa.io import write_json  # noqa: E402
from hogsa.render import rasterize  # noqa: E402

REPORT = ROOT / "reports" / "gpu" / "gpu_check.json"
SIZES = ((128, 128), (224, 224), (1400, 1000))  # (W, H)
ELLIPSOIDS = {"20k": (64, 80), "200k": (200, 252)}  # ellipsoid (n_lat, n_lon): 20,160 and 200,592 Gaussians
GAUSSIAN_INPUTS = ("means", "quats", "scales", "opacities", "colors")
OUTPUTS = ("colors", "alphas", "depths")
BUDGET_S = 420.0  # the whole check: 7 minutes, inside the 8 it must fit


# --------------------------------------------------------------------------------------------- scenes
@dataclasses.dataclass(frozen=True)
class Scene:
    """Gaussians and cameras as ``rasterize`` takes them (float32; on the CPU unless moved by ``to``)."""

    means: Tensor  # [N, 3] world, metres
    quats: Tensor  # [N, 4] wxyz, any norm
    scales: Tensor  # [N, 3] standard deviations, metres
    opacities: Tensor  # [N] in [0, 1]
    colors: Tensor  # [N, 3], or SH coefficients [N, (sh_degree + 1)², 3]
    viewmats: Tensor  # [C, 4, 4] world→camera
    Ks: Tensor  # [C, 3, 3] pixels
    width: int
    height: int
    sh_degree: int | None = None
    backgrounds: Tensor | None = None  # [C, 3]
    rasterize_mode: str = "classic"

    def gaussians(self, device: str, requires_grad: bool = False) -> dict[str, Tensor]:
        """Fresh copies of the five Gaussian inputs on ``device`` (leaves, with gradients if asked)."""
        return {k: getattr(self, k).detach().to(device, copy=True).requires_grad_(requires_grad)
                for k in GAUSSIAN_INPUTS}

    def to(self, device: str) -> Scene:
        """The scene with every tensor on ``device`` (timed calls then copy nothing)."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), Tensor)})

    def describe(self) -> dict[str, Any]:
        return {"gaussians": self.means.shape[0], "cameras": self.viewmats.shape[0], "size": [self.width, self.height],
                "sh_degree": self.sh_degree, "rasterize_mode": self.rasterize_mode,
                "backgrounds": self.backgrounds is not None}


def random_scene(seed: int, n: int, n_cameras: int, width: int, height: int, sh_degree: int | None = None,
                 backgrounds: bool = False, rasterize_mode: str = "classic") -> Scene:
    """``n`` Gaussians in a 1.6 m cube around the origin (sizes 1-12 cm, some reaching off-screen), seen
    by ``n_cameras`` cameras 3 m away on a ring, looking at the origin."""
    from hogsa.data.rig import look_at

    g = torch.Generator().manual_seed(seed)
    log_scales = math.log(0.01) + math.log(12.0) * torch.rand(n, 3, generator=g)
    if sh_degree is None:
        colors = torch.rand(n, 3, generator=g)
    else:
        colors = 0.3 * torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g)
        colors[:, 0] += 1.0  # a base colour around 0.78 after SH_C0 and + 0.5
    angles = [0.4 * i for i in range(n_cameras)]
    viewmats = torch.stack([torch.tensor(look_at(np.array([3 * math.sin(a), -3 * math.cos(a), 0.5 + 0.2 * i]),
                                                 np.zeros(3)), dtype=torch.float32)
                            for i, a in enumerate(angles)])
    focal = 1.5 * width
    K = torch.tensor([[focal, 0.0, width / 2 + 0.3], [0.0, focal, height / 2 - 0.2], [0.0, 0.0, 1.0]])
    return Scene(means=1.6 * (torch.rand(n, 3, generator=g) - 0.5), quats=torch.randn(n, 4, generator=g),
                 scales=log_scales.exp(), opacities=0.05 + 0.9 * torch.rand(n, generator=g), colors=colors,
                 viewmats=viewmats, Ks=K.expand(n_cameras, 3, 3).clone(), width=width, height=height,
                 sh_degree=sh_degree, backgrounds=torch.rand(n_cameras, 3, generator=g) if backgrounds else None,
                 rasterize_mode=rasterize_mode)


def ellipsoid_scene(n_lat: int, n_lon: int, width: int, height: int) -> Scene:
    """bench/render.py's mesh-bound ellipsoid (two flat Gaussians per face) seen from (0, 0, -3) m."""
    gaussians = mesh_gaussians(*ellipsoid_mesh(n_lat, n_lon))
    return with_camera(gaussians, *ellipsoid_camera(width, height), width, height)


def ellipsoid_camera(width: int, height: int, distance: float = 3.0) -> tuple[Tensor, Tensor]:
    """bench/render.py's camera at (0, 0, -distance) looking at the origin, focal 1.1·height: viewmat
    [4, 4], K [3, 3]."""
    viewmat = torch.eye(4)
    viewmat[2, 3] = distance
    focal = 1.1 * height
    return viewmat, torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


def with_camera(gaussians: dict[str, Tensor], viewmat: Tensor, K: Tensor, width: int, height: int) -> Scene:
    """A one-camera scene of ``gaussians`` (the keys ``GAUSSIAN_INPUTS``, RGB colours)."""
    return Scene(**{k: gaussians[k].float() for k in GAUSSIAN_INPUTS}, viewmats=viewmat.float()[None],
                 Ks=K.float()[None], width=width, height=height)


def scaled_camera(K: Tensor, width: int, size: int) -> Tensor:
    """K [3, 3] of a square ``width``² image rescaled to ``size``² (pixel centres at integer + 0.5)."""
    return K * torch.tensor([size / width, size / width, 1.0])[:, None]


# ------------------------------------------------------------------------------------ rendering
class Backend(NamedTuple):
    """Where ``rasterize`` runs: CPU tensors go to hogsa's rasterizer, CUDA tensors to gsplat."""

    name: str
    device: str  # "cpu" or "cuda"
    tile_size: int | None = None  # None: rasterize's default for the device

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()


def render(scene: Scene, gaussians: dict[str, Tensor], backend: Backend, render_mode: str = "RGB"
           ) -> tuple[Tensor, Tensor]:
    """``rasterize`` of ``gaussians`` (``Scene.gaussians``, on ``backend.device``) in the scene's
    cameras: colours [C, H, W, X] and alphas [C, H, W, 1]."""
    device = backend.device
    backgrounds = None if scene.backgrounds is None else scene.backgrounds.to(device)
    colors, alphas, _ = rasterize(
        gaussians["means"], gaussians["quats"], gaussians["scales"], gaussians["opacities"], gaussians["colors"],
        scene.viewmats.to(device), scene.Ks.to(device), scene.width, scene.height, sh_degree=scene.sh_degree,
        tile_size=backend.tile_size, backgrounds=backgrounds, render_mode=render_mode,
        rasterize_mode=scene.rasterize_mode,
    )
    return colors, alphas


# ------------------------------------------------------------------------------------ comparison
def differences(ours: Tensor, reference: Tensor) -> dict[str, float]:
    """max and mean |ours − reference|, the reference's largest |value| (for scale) and the relative L2
    error ‖ours − reference‖ / ‖reference‖ (0 when both are 0), computed in float64."""
    if ours.shape != reference.shape:
        raise ValueError(f"differences: shapes {list(ours.shape)} and {list(reference.shape)} differ")
    ours, reference = ours.detach().cpu().double(), reference.detach().cpu().double()
    delta = (ours - reference).abs()
    norm = float(reference.norm())
    return {"max_abs": _round(delta.max()), "mean_abs": _round(delta.mean()),
            "ref_max_abs": _round(reference.abs().max()),
            "rel_l2": _round(float(delta.norm()) / norm if norm > 0 else float(delta.norm() > 0))}


def loss_weights(scene: Scene, seed: int) -> dict[str, Tensor]:
    """Fixed random weights w of the loss Σ w·output, one per output element: colours [C, H, W, D],
    alphas and depths [C, H, W, 1] (depths scaled down: they are metres, not [0, 1])."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = scene.viewmats.shape[0], scene.height, scene.width
    return {"colors": torch.randn(c, h, w, 3, generator=g), "alphas": torch.randn(c, h, w, 1, generator=g),
            "depths": 0.1 * torch.randn(c, h, w, 1, generator=g)}


def outputs_and_gradients(scene: Scene, backend: Backend, weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """Colours, alphas and depths ("RGB+D") and the gradients of Σ w·output with respect to the five
    Gaussian inputs (``grad_<name>``), all moved to the CPU."""
    gaussians = scene.gaussians(backend.device, requires_grad=True)
    image, alphas = render(scene, gaussians, backend, render_mode="RGB+D")
    outputs = {"colors": image[..., :-1], "alphas": alphas, "depths": image[..., -1:]}
    loss = sum((outputs[k] * weights[k].to(backend.device)).sum() for k in OUTPUTS)
    loss.backward()
    backend.sync()
    return {**{k: v.detach().cpu() for k, v in outputs.items()},
            **{f"grad_{k}": gaussians[k].grad.cpu() for k in GAUSSIAN_INPUTS}}


def compare_scene(scene: Scene, ours: Backend, reference: Backend, seed: int = 0) -> dict[str, Any]:
    """``differences`` of every output and gradient of ``ours`` against ``reference`` on one scene."""
    weights = loss_weights(scene, seed)
    mine, theirs = outputs_and_gradients(scene, ours, weights), outputs_and_gradients(scene, reference, weights)
    return {**scene.describe(),
            "outputs": {k: differences(mine[k], theirs[k]) for k in OUTPUTS},
            "gradients": {k: differences(mine[f"grad_{k}"], theirs[f"grad_{k}"]) for k in GAUSSIAN_INPUTS}}


def comparison_scenes(hogs: Scene | None, tiny: bool) -> dict[str, Scene]:
    """The compared scenes (module docstring); ``tiny`` shrinks them for a dry run."""
    k = 10 if tiny else 1  # tiny: a tenth of the Gaussians, a fifth of the width and height
    px = 5 if tiny else 1
    scenes = {
        "random_2cams_backgrounds": random_scene(1, 4000 // k, 2, 160 // px, 120 // px, backgrounds=True),
        "random_sh3_antialiased": random_scene(2, 3000 // k, 1, 150 // px, 100 // px, sh_degree=3,
                                               rasterize_mode="antialiased"),
        "ellipsoid": ellipsoid_scene(*((8, 10) if tiny else ELLIPSOIDS["20k"]), 128 // px, 128 // px),
    }
    if hogs is not None:
        scenes["hogs_smoke_group"] = hogs
    return scenes


def compare(scenes: dict[str, Scene], ours: Backend, reference: Backend) -> dict[str, Any]:
    results = {}
    for name, scene in scenes.items():
        results[name] = row = compare_scene(scene, ours, reference)
        worst = max(row["gradients"].values(), key=lambda d: d["rel_l2"])
        log(f"compare {name} ({row['gaussians']} Gaussians, {scene.width}×{scene.height}): colours max |Δ| "
            f"{row['outputs']['colors']['max_abs']:.2e}, alphas {row['outputs']['alphas']['max_abs']:.2e}, "
            f"depths {row['outputs']['depths']['max_abs']:.2e}; gradients' worst relative L2 {worst['rel_l2']:.2e}")
    return results


# --------------------------------------------------------------------------------------------- speed
class Case(NamedTuple):
    """One timed configuration: the ellipsoid with ``label`` Gaussians at width × height."""

    width: int
    height: int
    label: str  # a key of the ellipsoid table ("20k", "200k")

    @property
    def key(self) -> str:
        return f"{self.width}x{self.height}_{self.label}"

    @property
    def pixels(self) -> int:
        return self.width * self.height


def speed_cases(tiny: bool) -> list[Case]:
    """Every (size, Gaussians) pair, smaller images first."""
    sizes = ((32, 32), (48, 40)) if tiny else SIZES
    return [Case(w, h, label) for w, h in sizes for label in ELLIPSOIDS]


def ellipsoids(tiny: bool) -> dict[str, dict[str, Tensor]]:
    """The ellipsoid's Gaussians per label (``mesh_gaussians``), built once."""
    resolutions = {"20k": (8, 10), "200k": (16, 20)} if tiny else ELLIPSOIDS
    return {label: mesh_gaussians(*ellipsoid_mesh(*resolution)) for label, resolution in resolutions.items()}


def time_case(scene: Scene, backend: Backend, repeats: int, budget_s: float) -> dict[str, Any]:
    """One warm-up forward and forward+backward (timed apart as ``warm_up_ms``), then the medians of
    ``repeats`` of each, fewer (at least one) when the warm-up says more would not fit in ``budget_s``."""
    scene = scene.to(backend.device)
    forward, forward_backward = forward_and_backward(
        lambda gaussians: render(scene, gaussians, backend), scene.gaussians(backend.device), backend.sync)
    warm_up = timed(forward, 1)[0] + timed(forward_backward, 1)[0]
    n = max(1, min(repeats, int(budget_s / max(warm_up, 1e-9))))
    fwd, fwd_bwd = timed(forward, n), timed(forward_backward, n)
    return {"gaussians": scene.means.shape[0], "fwd_ms": _ms(statistics.median(fwd)),
            "fwd_bwd_ms": _ms(statistics.median(fwd_bwd)), "fwd_min_ms": _ms(min(fwd)),
            "fwd_bwd_min_ms": _ms(min(fwd_bwd)), "repeats": n, "warm_up_ms": _ms(warm_up)}


def speed_gsplat(gaussians: dict[str, dict[str, Tensor]], backend: Backend, tiny: bool) -> dict[str, Any]:
    """gsplat's times on every case (20 repeats after the warm-up)."""
    results = {}
    for case in speed_cases(tiny):
        scene = with_camera(gaussians[case.label], *ellipsoid_camera(case.width, case.height), case.width, case.height)
        results[case.key] = row = time_case(scene, backend, repeats=3 if tiny else 20, budget_s=60.0)
        log(f"{backend.name} {case.key}: forward {row['fwd_ms']} ms, forward+backward {row['fwd_bwd_ms']} ms")
    return results


def predicted_seconds(case: Case, measured: dict[Case, dict[str, Any]]) -> float | None:
    """Seconds one forward plus one forward+backward of ``case`` should take: the same Gaussians'
    at the largest smaller size measured, times the ratio of pixels (the fragments grow with the image
    area); None when there is none to go by."""
    smaller = [c for c in measured if c.label == case.label and c.pixels < case.pixels]
    if not smaller:
        return None
    base = max(smaller, key=lambda c: c.pixels)
    row = measured[base]
    return (row["fwd_ms"] + row["fwd_bwd_ms"]) / 1000 * case.pixels / base.pixels


def speed_cpu(gaussians: dict[str, dict[str, Tensor]], backend: Backend, tiny: bool, budget_s: float,
              repeats: int = 5, case_budget_s: float = 20.0) -> dict[str, Any]:
    """The CPU rasterizer's times on every case while ``budget_s`` lasts; a case predicted
    (``predicted_seconds``, warm-up plus one repeat) not to fit in what is left is skipped with its reason."""
    start = time.perf_counter()
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "budget_s": round(budget_s, 1)}
    measured: dict[Case, dict[str, Any]] = {}
    for case in sorted(speed_cases(tiny), key=lambda c: (c.pixels, c.label != "20k")):
        left = budget_s - (time.perf_counter() - start)
        predicted = predicted_seconds(case, measured)
        reason = None
        if left <= 0:
            reason = f"the {budget_s:.0f} s CPU budget is spent"
        elif predicted is not None and 2 * predicted > left:
            reason = f"predicted {2 * predicted:.0f} s (warm-up and one repeat) > {left:.0f} s left of {budget_s:.0f} s"
        if reason is not None:
            results[case.key] = {"skipped": reason}
            log(f"{backend.name} {case.key}: skipped, {reason}")
            continue
        scene = with_camera(gaussians[case.label], *ellipsoid_camera(case.width, case.height), case.width, case.height)
        results[case.key] = measured[case] = row = time_case(scene, backend, repeats, min(case_budget_s, left / 2))
        log(f"{backend.name} {case.key}: forward {row['fwd_ms']} ms, forward+backward {row['fwd_bwd_ms']} ms "
            f"({row['repeats']} repeats)")
    return results


# ---------------------------------------------------------------------------------------- training
class SmokeGroup(NamedTuple):
    """The smoke parameter set's first HOGS group and what training it takes."""

    cfg: Any  # HOGSConfig of params.yaml with params/smoke.yaml
    data: Any  # GroupData at the smoke crop
    seed: int
    default_crop: int  # params.yaml's hogs.crop (without the smoke overrides)
    index: Any  # DatasetIndex of the generated embedded data
    hands: dict  # side → HandModel


def smoke_group(workdir: Path) -> SmokeGroup:
    """The smoke parameter set's first HOGS group, its embedded data generated under ``workdir``."""
    from hogsa.config import load_params, section
    from hogsa.data.dataset import DataConfig, index_dataset
    from hogsa.data.groups import load_group, resolve_groups
    from hogsa.data.synth import generate
    from hogsa.hand import HandConfig, hand_models
    from hogsa.hogs.train import HOGSConfig

    params = load_params(ROOT / "params.yaml", ROOT / "params" / "smoke.yaml")
    data_cfg = section(params, "data", DataConfig)
    # only the train split, where the groups come from: subjects are seeded by name, so its sequences
    # are those of the smoke set
    splits = {split: members if split == "train" else [] for split, members in data_cfg.embedded.splits.items()}
    data_cfg = dataclasses.replace(data_cfg, embedded=dataclasses.replace(data_cfg.embedded, splits=splits))
    generate(workdir / "embedded", data_cfg.embedded, params["seed"])
    hands = hand_models(section(params, "hand", HandConfig))
    index = index_dataset(data_cfg, workdir / "embedded").with_hands(hands)
    cfg = section(params, "hogs", HOGSConfig)
    group = resolve_groups(cfg.groups, index)[0]
    default_crop = int(load_params(ROOT / "params.yaml")["hogs"]["crop"])
    return SmokeGroup(cfg, load_group(cfg, index, hands, group), params["seed"], default_crop, index, hands)


def hogs_scene(cfg, data, seed: int, size: int) -> Scene:
    """The initial HOGS model of the group (colours from its training crops) posed at the first
    training crop, its camera rescaled to ``size``²: what ``GaussianScene.snapshot`` exports."""
    from hogsa.hogs.train import build_model, init_colors

    model = build_model("hogs", cfg, data, seed)
    init_colors(model, data.train, cfg.color_init_views, torch.Generator().manual_seed(seed))
    sample = data.train[0]
    snap = model.snapshot(sample.camera, sample.right, sample.left, sample.obj)
    width = int(snap["size"][0])
    return with_camera(snap, snap["viewmat"], scaled_camera(snap["K"], width, size), size, size)


def on_device(sample, device: str):
    """A ``Sample`` with its image and poses on ``device``."""
    return dataclasses.replace(sample, image=sample.image.to(device), right=sample.right.torch(device=device),
                               left=sample.left.torch(device=device), obj=sample.obj.torch(device=device))


def training_speed(cfg, data, seed: int, device: str, warm_up: int, steps: int) -> dict[str, Any]:
    """Iterations per second of HOGS training on ``device``: ``warm_up`` steps, then ``steps`` timed
    (``train_hogs``'s step and deterministic settings; model, poses and crops moved to ``device``)."""
    from hogsa.hogs.train import build_model, build_optimizer, init_colors, pose_corrections, train_step
    from hogsa.training import batch_indices, deterministic_algorithms

    model = build_model("hogs", cfg, data, seed)
    init_colors(model, data.train, cfg.color_init_views, torch.Generator().manual_seed(seed))
    poses = pose_corrections(cfg, data)
    model.to(device)
    model.obj = model.obj.to(device)  # not a module: .to does not reach it
    poses.to(device)
    optimizer = build_optimizer("hogs", cfg, model, poses)
    samples = [on_device(s, device) for s in data.train]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step(i: int) -> dict[str, float]:  # train_hogs's loop body
        batch = [samples[j] for j in batch_indices(i, len(samples), cfg.batch_views, seed)]
        return train_step(cfg, model, poses, optimizer, batch, i)

    with deterministic_algorithms():
        losses = [step(i)["loss"] for i in range(warm_up)]
        sync()
        start = time.perf_counter()
        losses += [step(i)["loss"] for i in range(warm_up, warm_up + steps)]
        sync()
        seconds = time.perf_counter() - start
    with torch.no_grad():
        gaussians = model.posed_gaussians(samples[0].right, samples[0].left, samples[0].obj)
    n = sum(len(g.opacities) for g in gaussians.values())
    k = min(5, len(losses) // 2) or 1  # the loss falls: means of the first and last k steps, a sanity check
    return {"device": device, "crop": cfg.crop, "batch_views": cfg.batch_views, "gaussians": n,
            "warm_up_steps": warm_up, "steps": steps, "seconds": round(seconds, 2),
            "it_per_s": round(steps / seconds, 2), "loss_start": _round(statistics.mean(losses[:k])),
            "loss_end": _round(statistics.mean(losses[-k:]))}


def train(group: SmokeGroup, devices: dict[str, int], warm_up: int, crops: list[int]) -> dict[str, Any]:
    """``training_speed`` at each of ``crops`` on each of ``devices`` (device → timed steps); crops
    other than the smoke set's are cut from the same smoke images."""
    from hogsa.data.groups import load_group

    results: dict[str, Any] = {"group": group.data.name, "train_crops": len(group.data.train)}
    for crop in crops:
        cfg = dataclasses.replace(group.cfg, crop=crop)
        data = group.data if crop == group.cfg.crop else load_group(cfg, group.index, group.hands, group.data.name)
        row = results[f"crop_{crop}"] = {}
        for device, steps in devices.items():
            row[device] = speed = training_speed(cfg, data, group.seed, device, warm_up, steps)
            log(f"train {data.name} crop {crop}² on {device}: {speed['it_per_s']} it/s over {steps} steps "
                f"({speed['gaussians']} Gaussians, loss {speed['loss_start']:.4f} → {speed['loss_end']:.4f})")
        if len(row) == 2 and "cuda" in row:
            row["cuda_over_cpu"] = round(row["cuda"]["it_per_s"] / row["cpu"]["it_per_s"], 1)
    return results


def augment_speed(group: SmokeGroup, devices: dict[str, int], repeats: int) -> dict[str, Any]:
    """ms per image of the augmentation's steps on each device (device → batch size), after a warm-up."""
    from hogsa.augment.render import composite, gaussian_layers, labels, to_uint8
    from hogsa.config import load_params, section
    from hogsa.data.schema import Camera
    from hogsa.hogs.train import build_model, init_colors
    from hogsa.pom.grasps import Grasps, repeated
    from hogsa.srm.styleunet import StyleUNet, StyleUNetConfig

    params = load_params(ROOT / "params.yaml")
    size, image_size = group.default_crop, int(params["augment"]["image_size"])
    model = build_model("hogs", group.cfg, group.data, group.seed)
    init_colors(model, group.data.train, group.cfg.color_init_views, torch.Generator().manual_seed(group.seed))
    srm = StyleUNet(section(params["srm"], "generator", StyleUNetConfig)).eval()
    sequences = {q.name: q for q in group.data.sequences}
    results: dict[str, Any] = {"crop": size, "image_size": image_size}
    for device, batch in devices.items():
        samples = [group.data.train[k % len(group.data.train)] for k in range(batch)]
        cameras = [Camera(K=s.camera.K * np.array([[size / s.camera.width], [size / s.camera.width], [1.0]]),
                          world2cam=s.camera.world2cam, width=size, height=size) for s in samples]
        grasps = Grasps.concatenate([
            Grasps({side: sequences[q.sequence].hands[side].take(np.array([q.frame])) for side in ("right", "left")},
                   sequences[q.sequence].object_pose.take(np.array([q.frame])), repeated(group.data.obj.name, 1),
                   repeated(group.data.name, 1), repeated(f"{q.sequence}:{q.frame}", 1)) for q in samples])
        model.to(device)
        model.obj = model.obj.to(device)
        generator = srm.to(device)
        background = torch.rand(batch, 3, image_size, image_size, generator=torch.Generator().manual_seed(0)).to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        times: dict[str, list[float]] = {"render": [], "srm": [], "composite": []}
        for k in range(repeats + 1):  # the first call warms up (compiles)
            tic = time.perf_counter()
            layers = gaussian_layers(model, grasps, cameras)
            sync()
            rendered = time.perf_counter()
            layers = layers.refined(generator)
            sync()
            refined = time.perf_counter()
            layers = layers.resized(image_size)
            to_uint8(composite(layers, background)), labels(layers).cpu()
            sync()
            done = time.perf_counter()
            if k:
                for name, seconds in zip(times, (rendered - tic, refined - rendered, done - refined)):
                    times[name].append(seconds / batch)
        row = results[device] = {f"{name}_ms_per_image": _ms(statistics.median(v)) for name, v in times.items()}
        row["batch"] = batch
        row["total_ms_per_image"] = round(sum(v for k, v in row.items() if k.endswith("_ms_per_image")), 2)
        log(f"augment on {device}: {row['total_ms_per_image']} ms per image (batch {batch}; render "
            f"{row['render_ms_per_image']}, SRM {row['srm_ms_per_image']}, composite {row['composite_ms_per_image']})")
    return results


# -------------------------------------------------------------------------------- build, environment
def build_gsplat() -> dict[str, Any]:
    """Import gsplat's CUDA backend: it JIT-compiles the kernels into torch's extension folder on first
    use (nvcc, ninja; MAX_JOBS defaults to the CPU count here, gsplat's own default is 10), or loads
    the build found there."""
    from torch.utils.cpp_extension import _get_build_directory

    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 1))
    build_dir = Path(_get_build_directory("gsplat_cuda", verbose=False))
    cached = (build_dir / "gsplat_cuda.so").is_file()
    start = time.perf_counter()
    import gsplat
    from gsplat.cuda._backend import _C

    seconds = time.perf_counter() - start
    if _C is None:
        raise RuntimeError("gsplat found no CUDA toolkit (nvcc) and built nothing; it needs nvcc and ninja")
    log(f"gsplat {gsplat.__version__}: CUDA kernels {'loaded from' if cached else 'built into'} {build_dir} "
        f"in {seconds:.1f} s (MAX_JOBS={os.environ['MAX_JOBS']})")
    return {"gsplat": gsplat.__version__, "seconds": round(seconds, 1), "cached": cached,
            "max_jobs": int(os.environ["MAX_JOBS"]), "torch_cuda_arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST")}


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "hogsa_commit": _git_commit(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                   gpu_memory_gib=round(props.total_memory / 2**30, 1), driver=_nvidia_driver())
    return env


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


# ------------------------------------------------------------------------------------------ driver
def log(line: str) -> None:
    print(line, flush=True)


def _round(x: float | Tensor, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits (readable JSON)."""
    x = float(x)
    return float(f"{x:.{digits - 1}e}") if math.isfinite(x) else x


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 2)


@contextlib.contextmanager
def part(result: dict[str, Any], name: str) -> Iterator[None]:
    """Time one part into ``result["seconds"][name]``; an exception inside is recorded as
    ``result[name] = {"error": ...}`` (with its traceback on stderr) instead of ending the check."""
    start = time.perf_counter()
    try:
        yield
    except Exception as err:  # one part failing must not lose the others' figures
        traceback.print_exc()
        result[name] = {"error": f"{type(err).__name__}: {err}"}
        log(f"{name}: FAILED, {type(err).__name__}: {err}")
    result["seconds"][name] = round(time.perf_counter() - start, 1)


def run_check(args: argparse.Namespace) -> dict[str, Any]:
    """Every part in order (module docstring); the result as one dict."""
    start = time.perf_counter()
    tiny = args.dry_run
    ours = Backend("hogsa_cpu", "cpu")
    reference = Backend("hogsa_cpu_tile16", "cpu", tile_size=16) if tiny else Backend("gsplat_cuda", "cuda")
    result: dict[str, Any] = {"cuda": torch.cuda.is_available(), "dry_run": tiny, "reference": reference.name,
                              "environment": environment(), "seconds": {}}
    log(f"GPU check: {result['environment']}")
    if not tiny:
        with part(result, "build"):
            result["build"] = build_gsplat()
    built = "error" not in result.get("build", {})
    with tempfile.TemporaryDirectory(prefix="hogsa-gpu-check-") as workdir:
        group = None
        with part(result, "smoke_group"):
            group = smoke_group(Path(workdir))
            result["smoke_group"] = {"group": group.data.name, "train_crops": len(group.data.train)}
        with part(result, "compare"):
            if not built:
                raise RuntimeError("skipped: gsplat did not build")
            hogs = None if group is None else hogs_scene(group.cfg, group.data, group.seed, size=32 if tiny else 224)
            result["compare"] = compare(comparison_scenes(hogs, tiny), ours, reference)
        gaussians = ellipsoids(tiny)
        with part(result, "speed_gsplat"):
            if not built:
                raise RuntimeError("skipped: gsplat did not build")
            result["speed_gsplat"] = speed_gsplat(gaussians, reference, tiny)
        with part(result, "train"):
            if group is None:
                raise RuntimeError("skipped: the smoke group could not be made")
            devices = {"cpu": 2} if tiny else {"cuda": args.train_steps, "cpu": args.cpu_train_steps}
            if not built:
                devices.pop("cuda", None)
            crops = [group.cfg.crop] if tiny else sorted({group.cfg.crop, group.default_crop})
            result["train"] = train(group, devices, warm_up=1 if tiny else 5, crops=crops)
        with part(result, "augment"):
            if group is None:
                raise RuntimeError("skipped: the smoke group could not be made")
            devices = {"cpu": 2} if tiny else ({"cuda": 64, "cpu": 8} if built else {"cpu": 8})
            result["augment"] = augment_speed(group, devices, repeats=1 if tiny else 5)
    with part(result, "speed_cpu"):
        left = args.budget_s - (time.perf_counter() - start) - 15.0  # 15 s for what follows the timings
        result["speed_cpu"] = speed_cpu(gaussians, ours, tiny, budget_s=left)
    result["seconds"]["total"] = round(time.perf_counter() - start, 1)
    failed = [name for name, value in result.items() if isinstance(value, dict) and "error" in value]
    result["ok"] = not failed
    if failed:
        result["failed"] = failed
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help=f"where the JSON goes (default "
                        f"{REPORT.relative_to(ROOT)}; a dry run writes only with --out)")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S,
                        help="seconds the whole check may take; the CPU timings get what the rest leaves")
    parser.add_argument("--train-steps", type=int, default=200, help="timed HOGS steps on CUDA, per crop size")
    parser.add_argument("--cpu-train-steps", type=int, default=5, help="timed HOGS steps on the CPU, per crop size")
    parser.add_argument("--dry-run", action="store_true",
                        help="every part at tiny sizes on the CPU, hogsa's rasterizer standing in for gsplat")
    args = parser.parse_args(argv)

    if not torch.cuda.is_available() and not args.dry_run:
        message = (f"CUDA is not available (torch {torch.__version__} sees no GPU): nothing was checked and "
                   f"{REPORT.relative_to(ROOT)} is left as it is. Run `make gpu-check` on a machine with a "
                   "CUDA GPU, nvcc and ninja (README, 'On a GPU').")
        print(json.dumps({"cuda": False, "message": message, "torch": torch.__version__}))
        return 0
    if args.dry_run:
        os.environ.setdefault("HOGSA_NO_COMPILE", "1")  # tiny sizes: compiling would cost more than it saves
    else:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, as train_hogs asks
    result = run_check(args)
    out = args.out or (None if args.dry_run else REPORT)
    if out is not None:
        write_json(out, result)
        log(f"written to {out}")
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
