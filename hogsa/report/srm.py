"""The srm stage: render every group's crops with its trained HOGS and 3DGS models, train (or resume)
one SRM per kind of render, and score raw and refined renders on the held-out crops (paper Table 3,
Fig. 12).

Each score row is the mean over groups of the group's mean over its held-out crops (as the hogs stage
reports), on the whole crop with its black background; ``sharpness`` is the mean absolute Laplacian
(``reference_sharpness`` is the real crops'): a refinement that only smoothed would lower it.
``untuned_groups`` repeats the rows and the gains over the groups outside ``srm.report.tuned_on``, the
ones no SRM setting was chosen on; ``groups`` has every group's rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from hogsa.config import section
from hogsa.data.dataset import DatasetIndex
from hogsa.data.groups import resolve_groups
from hogsa.hand import HandConfig, HandModel, hand_models
from hogsa.hogs.train import KINDS, HOGSConfig
from hogsa.io import write_json
from hogsa.metrics.image import LPIPS
from hogsa.metrics.scores import group_summaries, image_scores, summarize_by_group
from hogsa.report.outputs import StageClock, save_and_close
from hogsa.report.paths import SrmPaths
from hogsa.srm.pairs import RenderPairs, all_pairs
from hogsa.srm.train import SRM, SRMConfig, perceptual_status, refine, train_srm
from hogsa.workers import map_single_threaded

PSNR_ROWS = ("3dgs", "3dgs_srm", "hogs", "hogs_srm")  # bars of the per-group figure, left to right


class SrmInputs(NamedTuple):
    hogs_cfg: HOGSConfig
    cfg: SRMConfig
    seed: int
    hands: dict[str, HandModel]
    index: DatasetIndex
    groups: list[str]  # "sXX/<object>", as the hogs stage trained them
    lpips: LPIPS | None  # None: LPIPS is "not computed"


def read_inputs(params: dict, paths: SrmPaths) -> SrmInputs:
    """The stage's settings (its own and the hogs stage's), hands, index and groups; makes the report folder."""
    hogs_cfg = section(params, "hogs", HOGSConfig)
    cfg = section(params, "srm", SRMConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    index = DatasetIndex.load(paths.index_file, hands)
    groups = resolve_groups(hogs_cfg.groups, index)
    lpips = LPIPS.from_file(hogs_cfg.lpips_weights) if hogs_cfg.lpips_weights else None
    Path(paths.report_dir).mkdir(parents=True, exist_ok=True)
    return SrmInputs(hogs_cfg, cfg, params["seed"], hands, index, groups, lpips)


def render_pairs(inputs: SrmInputs, models_dir: str | Path,
                 clock: StageClock) -> dict[str, tuple[RenderPairs, RenderPairs]]:
    """Per kind: (training pairs, held-out pairs) of all groups, rendered once (timed as ``renders``)."""
    with clock.part("renders"):
        return all_pairs(inputs.hogs_cfg, inputs.index, inputs.hands, inputs.groups, models_dir, inputs.seed)


def train_srms(inputs: SrmInputs, pairs: dict[str, tuple[RenderPairs, RenderPairs]], srm_dir: str | Path,
               clock: StageClock) -> dict[str, SRM]:
    """Per kind, its SRM trained (or resumed, or loaded) in ``srm_dir/<kind>`` on one torch thread, the
    kinds in ``srm.workers`` processes at once (``hogsa.workers``; timed together as ``train``)."""
    jobs = [(inputs.cfg, *pairs[kind], str(Path(srm_dir) / kind), inputs.seed, kind) for kind in KINDS]
    with clock.part("train"):
        return dict(zip(KINDS, map_single_threaded(_train_kind, jobs, inputs.cfg.workers), strict=True))


def _train_kind(job: tuple[SRMConfig, RenderPairs, RenderPairs, str, int, str]) -> SRM:
    """``train_srm`` of job = (settings, training pairs, held-out pairs, folder, seed, kind)."""
    cfg, train, held_out, out_dir, seed, kind = job
    return train_srm(cfg, train, out_dir, seed, kind, held_out)


def score_held_out(inputs: SrmInputs, pairs: dict[str, tuple[RenderPairs, RenderPairs]],
                   srms: dict[str, SRM]) -> tuple[dict[str, Tensor], dict[str, dict[str, list[float]]]]:
    """Per kind the refined held-out renders [N, 3, S, S]; per row (``<kind>``, ``<kind>_srm``) the
    per-crop scores (``hogsa.metrics.scores.image_scores``)."""
    refined, scores = {}, {}
    for kind in KINDS:
        held_out = pairs[kind][1]
        refined[kind] = refine(srms[kind].generator, held_out)
        scores[kind] = image_scores(held_out.rgb, held_out.target, inputs.lpips, with_sharpness=True)
        scores[f"{kind}_srm"] = image_scores(refined[kind], held_out.target, inputs.lpips, with_sharpness=True)
    return refined, scores


def srm_summary(inputs: SrmInputs, pairs: dict[str, tuple[RenderPairs, RenderPairs]],
                scores: dict[str, dict[str, list[float]]]) -> dict:
    """reports/metrics/srm.json (module docstring)."""
    summary: dict = {}
    for kind in KINDS:
        for row in (kind, f"{kind}_srm"):
            summary[row] = summarize_by_group(scores[row], pairs[kind][1].groups).as_metrics()
    held_out = pairs["hogs"][1]
    reference = image_scores(held_out.target, held_out.target, with_sharpness=True)
    summary["reference_sharpness"] = summarize_by_group(reference, held_out.groups).mean.sharpness
    summary["gain_db"] = {kind: summary[f"{kind}_srm"]["psnr"] - summary[kind]["psnr"] for kind in KINDS}
    summary["perceptual"] = perceptual_status(inputs.cfg)
    untuned = [i for i, group in enumerate(held_out.groups) if group not in inputs.cfg.report.tuned_on]
    if untuned:
        summary["untuned_groups"] = {row: summarize_by_group([scores[row][i] for i in untuned],
                                                             [held_out.groups[i] for i in untuned]).as_metrics()
                                     for row in scores}
        summary["untuned_groups"]["gain_db"] = {
            kind: summary["untuned_groups"][f"{kind}_srm"]["psnr"] - summary["untuned_groups"][kind]["psnr"]
            for kind in KINDS}
    per_group = {row: group_summaries(scores[row], held_out.groups) for row in scores}
    summary["groups"] = {group: {row: per_group[row][group].as_metrics() for row in scores} for group in inputs.groups}
    return summary


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #
def grid_columns(pairs: dict[str, tuple[RenderPairs, RenderPairs]], refined: dict[str, Tensor]) -> dict[str, Tensor]:
    """The grids' columns, title → held-out images [N, 3, S, S]: reference, 3DGS, 3DGS+SRM, HOGS, HOGS+SRM."""
    return {"reference": pairs["hogs"][1].target, "3DGS": pairs["3dgs"][1].rgb, "3DGS+SRM": refined["3dgs"],
            "HOGS": pairs["hogs"][1].rgb, "HOGS+SRM": refined["hogs"]}


def grid_figure(columns: dict[str, Tensor], groups: tuple[str, ...], picks: list[int], zoom: float,
                image_inches: float) -> Figure:
    """One row per picked crop (labelled with its group), one column per image kind; ``zoom`` > 1 shows
    the centre of each crop enlarged."""
    figsize = (image_inches * len(columns), image_inches * len(picks))
    fig, axes = plt.subplots(len(picks), len(columns), figsize=figsize, squeeze=False)
    for r, i in enumerate(picks):
        for c, (title, images) in enumerate(columns.items()):
            picture = images[i].clamp(0, 1).permute(1, 2, 0).numpy()
            size = picture.shape[0]
            half = int(size / zoom / 2)
            ax = axes[r, c]
            ax.imshow(picture[size // 2 - half: size // 2 + half, size // 2 - half: size // 2 + half],
                      interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
        axes[r, 0].set_ylabel(groups[i], fontsize=7)
    fig.tight_layout(pad=0.2)
    return fig


def save_grids(pairs: dict[str, tuple[RenderPairs, RenderPairs]], refined: dict[str, Tensor], cfg: SRMConfig,
               report_dir: str | Path) -> list[Figure]:
    """grid.png (whole crops) and grid_zoom.png (their centres): ``srm.report.grid_crops`` held-out crops
    spread over all of them."""
    held_out = pairs["hogs"][1]
    count = len(held_out)
    picks = np.linspace(0, count - 1, min(cfg.report.grid_crops, count)).round().astype(int).tolist()
    columns = grid_columns(pairs, refined)
    return [save_and_close(grid_figure(columns, held_out.groups, picks, zoom, cfg.report.image_inches),
                           Path(report_dir) / f"{name}.png", cfg.report.dpi)
            for name, zoom in (("grid", 1.0), ("grid_zoom", cfg.report.zoom))]


def psnr_per_group_figure(summary: dict, groups: list[str]) -> Figure:
    """Bars of each group's held-out PSNR of ``PSNR_ROWS``."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(groups), 2.6))
    for k, row in enumerate(PSNR_ROWS):
        values = [summary["groups"][group][row]["psnr"] for group in groups]
        ax.bar(np.arange(len(groups)) + (k - 1.5) * 0.2, values, width=0.2, label=row)
    ax.set_xticks(np.arange(len(groups)), groups, fontsize=7, rotation=30)
    ax.set_ylabel("held-out PSNR (dB)")
    low = min(summary["groups"][g][r]["psnr"] for g in groups for r in PSNR_ROWS)
    ax.set_ylim(low - 2, None)
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return fig


def save_psnr_per_group(summary: dict, inputs: SrmInputs, report_dir: str | Path) -> Figure:
    """psnr_per_group.png."""
    return save_and_close(psnr_per_group_figure(summary, inputs.groups), Path(report_dir) / "psnr_per_group.png",
                          inputs.cfg.report.dpi)


def run(params: dict, paths: SrmPaths) -> dict:
    """The srm stage as its notebook runs it: models, metrics, figures and timings; returns the metrics."""
    clock = StageClock()
    inputs = read_inputs(params, paths)
    pairs = render_pairs(inputs, paths.models_dir, clock)
    srms = train_srms(inputs, pairs, paths.srm_dir, clock)
    refined, scores = score_held_out(inputs, pairs, srms)
    summary = srm_summary(inputs, pairs, scores)
    write_json(paths.metrics, summary)
    save_grids(pairs, refined, inputs.cfg, paths.report_dir)
    save_psnr_per_group(summary, inputs, paths.report_dir)
    clock.write(paths.timings)
    return summary
