"""Training and evaluation of the SRM (paper §3.4): one StyleUNet refines the renders of every group.

Each step draws ``batch_size`` (render, real crop) pairs (``hogsa.srm.pairs``) from a generator seeded
by (seed, step), so a resumed run draws what an uninterrupted one would. Once ``gan_start`` steps of
reconstruction alone have passed (the adversarial terms only help once the refinement is close), each
step first updates the discriminator (logistic loss; every ``r1_every``-th of its steps also the lazy
R1 penalty, weighted (γ/2)·``r1_every``) and then the generator with
λ_1·L1 + λ_VGG·L_VGG (when VGG19 weights are configured) + λ_GAN·softplus(−D(G(x))).
Adam with ``betas`` (StyleGAN2's are (0, 0.99)) at the learning rate of ``lr_schedule``; the
discriminator's learning rate and betas are corrected for the lazy regularisation as StyleGAN2 does
(c = n / (n + 1): lr·c, β^c).

Checkpoints (``hogsa.training``) hold both networks (``generator/<name>``, ``discriminator/<name>``),
both Adam states and, as the run's identity, the configuration, the seed and a digest of the training
pairs: a run resumes where it stopped and starts afresh (saying so) when any of these changed. Curves
go to dvclive. Refined renders are scored as the hogs stage scores its renders (``hogsa.metrics.scores``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from hogsa.code_identity import code_digest
from hogsa.metrics.image import psnr
from hogsa.metrics.scores import image_scores, summarize
from hogsa.srm.discriminator import Discriminator, DiscriminatorConfig
from hogsa.srm.losses import (
    PERCEPTUAL_OFF,
    VGGPerceptual,
    d_logistic_loss,
    g_nonsaturating_loss,
    l1_loss,
    r1_penalty,
)
from hogsa.srm.pairs import RenderPairs
from hogsa.srm.styleunet import StyleUNet, StyleUNetConfig
from hogsa.training import ITERATION, batch_indices, frozen, open_live, resume, save_checkpoint

CHECKPOINT = "srm.safetensors"


@dataclass(frozen=True)
class SRMReportConfig:
    """params.yaml ``srm.report``: the stage's figures (hogsa.report.srm) and its account of tuning."""

    dpi: int
    image_inches: float  # side of each image of the grids
    grid_crops: int  # held-out crops in the grids (rows), spread over the groups and subsets
    zoom: float  # the enlarged grid shows the central 1 / zoom of each crop
    tuned_on: list[str]  # groups whose held-out crops the SRM settings were chosen on; the others are reported apart


@dataclass(frozen=True)
class SRMConfig:
    """params.yaml ``srm`` section."""

    generator: StyleUNetConfig
    discriminator: DiscriminatorConfig
    iterations: int  # paper: 150,000 on a GPU
    batch_size: int
    lr: float  # Adam, both networks (StyleAvatar: 2e-3)
    lr_schedule: str  # "constant", or "cosine": lr·(1 + cos(π·step / iterations)) / 2, down to 0 at the end
    betas: list[float]  # StyleGAN2: [0, 0.99]
    lambda_l1: float  # paper: 5
    lambda_vgg: float  # paper: 0.03 (used only with vgg_weights)
    lambda_gan: float  # paper: 1; 0 trains without the discriminator
    gan_start: int  # steps of reconstruction alone before the adversarial terms join
    r1_gamma: float  # StyleGAN2: 10
    r1_every: int  # lazy R1: every n discriminator steps (StyleGAN2: 16)
    vgg_weights: str | None  # safetensors file of torchvision's VGG19 features; None: L_VGG is off
    eval_every: int  # steps between held-out evaluations logged to dvclive
    checkpoint_every: int
    workers: int  # processes training the kinds of render at once, one torch thread each (hogsa.workers)
    report: SRMReportConfig


@dataclass(frozen=True, eq=False)
class SRM:
    """A trained (or training) SRM: its generator and its discriminator."""

    generator: StyleUNet
    discriminator: Discriminator


def build_srm(cfg: SRMConfig, image_size: int, seed: int) -> SRM:
    """Fresh networks, initialised from ``seed`` (the global RNG is left as it was)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SRM(StyleUNet(cfg.generator), Discriminator(cfg.discriminator, image_size))


def perceptual_loss(cfg: SRMConfig) -> VGGPerceptual | None:
    return VGGPerceptual.from_file(cfg.vgg_weights) if cfg.vgg_weights else None


def perceptual_status(cfg: SRMConfig) -> str:
    """What a report says about L_VGG."""
    return f"on ({cfg.vgg_weights})" if cfg.vgg_weights else PERCEPTUAL_OFF


LR_SCHEDULES = ("constant", "cosine")


def lr_factor(cfg: SRMConfig, step: int) -> float:
    """The learning rate of ``step`` as a fraction of ``cfg.lr`` (``cfg.lr_schedule``)."""
    if cfg.lr_schedule == "constant":
        return 1.0
    if cfg.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / cfg.iterations))
    raise ValueError(f"srm.lr_schedule must be one of {LR_SCHEDULES}, got {cfg.lr_schedule!r}")


def optimizers(cfg: SRMConfig, srm: SRM) -> dict[str, torch.optim.Adam]:
    c = cfg.r1_every / (cfg.r1_every + 1)  # StyleGAN2's lazy-regularisation correction
    beta1, beta2 = cfg.betas
    return {
        "generator": torch.optim.Adam(srm.generator.parameters(), lr=cfg.lr, betas=(beta1, beta2)),
        "discriminator": torch.optim.Adam(srm.discriminator.parameters(), lr=cfg.lr * c,
                                          betas=(beta1**c, beta2**c)),
    }


def train_srm(cfg: SRMConfig, pairs: RenderPairs, out_dir: str | Path, seed: int, name: str,
              held_out: RenderPairs | None = None) -> SRM:
    """Train (or resume, or just load when finished) an SRM on ``pairs`` in ``out_dir``.

    Writes ``out_dir/srm.safetensors`` every ``checkpoint_every`` steps and at the end, and dvclive
    curves under ``out_dir/live`` (held-out PSNR of the refined renders every ``eval_every`` steps when
    ``held_out`` is given). ``name`` labels the progress bar.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image_size = pairs.rgb.shape[-1]
    srm = build_srm(cfg, image_size, seed)
    optims = optimizers(cfg, srm)
    vgg = perceptual_loss(cfg)
    identity = run_identity(cfg, seed, pairs)
    params = checkpoint_parameters(srm)
    start = int(resume(out_dir / CHECKPOINT, params, optims.values(), identity).get(ITERATION, 0))

    live = open_live(out_dir / "live", start)
    steps = tqdm(range(start, cfg.iterations), desc=f"srm {name}", initial=start, total=cfg.iterations)
    base_lrs = [(group, group["lr"]) for optim in optims.values() for group in optim.param_groups]
    for step in steps:
        for group, base in base_lrs:
            group["lr"] = base * lr_factor(cfg, step)
        batch = pairs.take(batch_indices(step, len(pairs), cfg.batch_size, seed))
        terms = {}
        adversarial = cfg.lambda_gan > 0 and step >= cfg.gan_start
        if adversarial:
            terms.update(discriminator_step(cfg, srm, optims["discriminator"], batch, step - cfg.gan_start))
        terms.update(generator_step(cfg, srm, optims["generator"], vgg, batch, adversarial))
        for key, value in terms.items():
            live.log_metric(f"train/{key}", value)
        steps.set_postfix(l1=f"{terms['l1']:.4f}", psnr=f"{terms['psnr']:.2f}")
        done = step + 1
        if held_out is not None and (done % cfg.eval_every == 0 or done == cfg.iterations):
            live.log_metric("held_out/psnr", summarize(image_scores(refine(srm.generator, held_out),
                                                                    held_out.target)).mean.psnr)
        if done % cfg.checkpoint_every == 0 or done == cfg.iterations:
            save_checkpoint(out_dir / CHECKPOINT, params, optims.values(), {**identity, ITERATION: str(done)})
        live.next_step()
    live.end()
    return srm


def generator_step(cfg: SRMConfig, srm: SRM, optimizer: torch.optim.Optimizer, vgg: VGGPerceptual | None,
                   batch: RenderPairs, adversarial: bool) -> dict[str, float]:
    """One update of G on λ_1·L1 (+ λ_VGG·L_VGG with ``vgg``) (+ λ_GAN·softplus(−D(G(x))) when
    ``adversarial``); returns the terms and the batch's PSNR (of the refinements before the step)."""
    refined = srm.generator(batch.rgb, batch.alpha)
    l1 = l1_loss(refined, batch.target)
    loss = cfg.lambda_l1 * l1
    terms = {"l1": l1.item()}
    if vgg is not None:
        l_vgg = vgg(refined, batch.target)
        loss = loss + cfg.lambda_vgg * l_vgg
        terms["vgg"] = l_vgg.item()
    if adversarial:
        with frozen(srm.discriminator):
            g_adv = g_nonsaturating_loss(srm.discriminator(refined))
        loss = loss + cfg.lambda_gan * g_adv
        terms["g_adv"] = g_adv.item()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    terms["psnr"] = float(psnr(refined.detach().clamp(0, 1), batch.target).mean())
    return terms


def discriminator_step(cfg: SRMConfig, srm: SRM, optimizer: torch.optim.Optimizer, batch: RenderPairs,
                       d_step: int) -> dict[str, float]:
    """One logistic-loss update of D on real crops vs. refined renders, plus the lazy R1 update."""
    with torch.no_grad():
        fake = srm.generator(batch.rgb, batch.alpha)
    d_loss = d_logistic_loss(srm.discriminator(batch.target), srm.discriminator(fake))
    optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    optimizer.step()
    terms = {"d_loss": d_loss.item()}
    if d_step % cfg.r1_every == 0:
        r1 = r1_penalty(srm.discriminator, batch.target)
        optimizer.zero_grad(set_to_none=True)
        (cfg.r1_gamma / 2 * r1 * cfg.r1_every).backward()
        optimizer.step()
        terms["r1"] = r1.item()
    return terms


# --------------------------------------------------------------------------- #
# Checkpoints
# --------------------------------------------------------------------------- #
def run_identity(cfg: SRMConfig, seed: int, pairs: RenderPairs) -> dict[str, str]:
    """What a checkpoint must match to be resumed: training settings, seed, the training pairs and the code."""
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("eval_every", "checkpoint_every", "workers", "report")}
    return {"config": json.dumps(settings, sort_keys=True), "seed": str(seed), "pairs": pairs.digest(),
            "code": code_digest(__name__)}


def checkpoint_parameters(srm: SRM) -> dict[str, nn.Parameter]:
    """What a checkpoint holds: ``generator/<name>`` and ``discriminator/<name>``."""
    return {f"{network}/{name}": param for network, module in
            (("generator", srm.generator), ("discriminator", srm.discriminator))
            for name, param in module.named_parameters()}


# --------------------------------------------------------------------------- #
# Evaluation
# --------------------------------------------------------------------------- #
@torch.no_grad()
def refine(generator: StyleUNet, pairs: RenderPairs, batch_size: int = 16) -> Tensor:  # [N, 3, S, S] in [0, 1]
    """The generator's refinement of every render in ``pairs``, clamped to [0, 1]."""
    outputs = [generator(pairs.rgb[i:i + batch_size], pairs.alpha[i:i + batch_size]).clamp(0, 1)
               for i in range(0, len(pairs), batch_size)]
    return torch.cat(outputs)
