"""The report stage: the training curves for ``dvc plots`` (``hogsa.report.curves``), the report's own
pictures (``hogsa.report.showcase``), ``reports/report.md`` and ``.html`` with every table and figure
(``hogsa.report.study``), the realism gap's metrics, and the README's Results section.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from hogsa.baselines.run import run_dir
from hogsa.baselines.train import BaselinesConfig
from hogsa.config import section
from hogsa.data.dataset import DatasetIndex
from hogsa.data.groups import GroupData, load_group, resolve_groups
from hogsa.hand import HandConfig, HandModel, hand_models
from hogsa.hogs.train import KINDS, HOGSConfig, TrainedScene, load_trained
from hogsa.io import atomic_write_text, write_json
from hogsa.report import showcase
from hogsa.report.curves import write_curves
from hogsa.report.hogs import group_slug
from hogsa.report.outputs import StageClock, save_and_close
from hogsa.report.paths import ReportPaths
from hogsa.report.reference import mean_prediction_scores
from hogsa.report.study import (
    TRAIN_SET_LABELS,
    read_numbers,
    realism_gap,
    replace_results,
    report_html,
    report_markdown,
    results_section,
)
from hogsa.srm.pairs import model_path


@dataclass(frozen=True)
class ReportConfig:
    """params.yaml ``report``: the report's own pictures and curves."""

    orbit_group: str  # "sXX/<object>": the HOGS model of the 360° orbit
    orbit_frames: int  # views of the orbit (the GIF's frames)
    orbit_size: int  # pixels of each square frame
    orbit_seconds_per_frame: float
    orbit_fov_deg: float
    orbit_elevation_deg: float
    transfer_groups: list[str]  # ["sXX/<object>", "sYY/<object>"]: the first's grasps on the second's model
    predictions_shown: int  # test crops of the predictions figure
    image_inches: float  # each image of a figure's grid
    dpi: int
    curves_every: int  # keep every n-th logged step of a training curve (reports/curves)


TIMED_OUTPUTS = ("reports/report.md", "reports/report.html")  # they print the stages' minutes: no run repeats them
STAGE_ORDER = ("assets", "data", "hogs", "contactnet", "pom", "srm", "augment", "baseline_inputs", "train_baseline",
               "baselines")  # the stages before this one, in dvc.yaml's order
LINKED_FIGURES = {  # the stages' figures the report shows ({group}: the orbit's group; {variant}: each variant's)
    "hogs/held_out_{group}.png": "HOGS and 3DGS held-out crops of {group} beside the ground truth",
    "hogs/orbit_{group}.png": "360° orbit of {group}, HOGS and 3DGS",
    "hogs/novel_poses_{group}.png": "Novel poses of {group}",
    "srm/grid.png": "Fig. 12: renders without and with the SRM",
    "srm/grid_zoom.png": "Fig. 12, detail",
    "srm/psnr_per_group.png": "Held-out PSNR per group, without and with the SRM",
    "pom/tsne.png": "Fig. 7: t-SNE of the training poses and POM's poses",
    "pom/before_after.png": "POM's grasps before and after optimisation",
    "augment/grid.png": "Figs. 3 and 4: augmented samples of every variant",
    "augment/overlay_{variant}.png": "The {variant} samples' labels over their images",
    "baselines/curves.png": "Training curves of the baselines",
    "baselines/predictions.png": "ArcticNet-SF's predicted joints on test crops, per train set",
}


def linked_figures(reports_dir: Path, report_md: Path, group: str, variants: list[str]) -> dict[str, str]:
    """{title: path relative to the report} of the stages' figures under ``reports_dir`` that the report
    shows (``LINKED_FIGURES``); raises naming the first one that is missing."""
    figures = {}
    for pattern, title in LINKED_FIGURES.items():
        for variant in variants if "{variant}" in pattern else [None]:
            path = reports_dir / pattern.format(group=group_slug(group), variant=variant)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: a figure the report shows is missing; run the stage that draws it")
            figures[title.format(group=group, variant=variant)] = os.path.relpath(path, report_md.parent)
    return figures


CURVES = {  # family of runs: the dvclive curve copied (reports/curves/<family>/<run>.csv)
    "hogs": "train/loss", "hogs_held_out": "held_out/psnr", "srm": "train/l1", "srm_held_out": "held_out/psnr",
    "baselines": "train/loss",
}


def curve_sources(paths: ReportPaths, hogs_groups: list[str], cfg: BaselinesConfig) -> dict[str, dict[str, Path]]:
    """{family of ``CURVES``: {run: dvclive folder}}: HOGS and 3DGS per group, the SRM per kind of render,
    the baselines per (task, train set, seed)."""
    models = Path(paths.models_dir)
    hogs = {f"{group_slug(g)}_{kind}": models / group_slug(g) / kind / "live" for g in hogs_groups for kind in KINDS}
    srm = {p.parent.name: p for p in sorted(Path(paths.srm_dir).glob("*/live"))}
    baselines = {f"{task}_{name}_seed{seed}": run_dir(paths.runs_dir, task, name, seed) / "live"
                 for task in cfg.tasks for name in cfg.train_sets for seed in cfg.seeds}
    return {"hogs": hogs, "hogs_held_out": hogs, "srm": srm, "srm_held_out": srm, "baselines": baselines}


class StudyInputs(NamedTuple):
    params: dict
    cfg: ReportConfig
    hogs: HOGSConfig
    baselines: BaselinesConfig
    hands: dict[str, HandModel]
    index: DatasetIndex


def trained_hogs(inputs: StudyInputs, models_dir: str | Path, group: str) -> tuple[GroupData, TrainedScene]:
    """The group's data and its finished HOGS model (``load_trained``)."""
    data = load_group(inputs.hogs, inputs.index, inputs.hands, group)
    path = model_path(models_dir, group, "hogs")
    return data, load_trained(inputs.hogs, data, "hogs", path, inputs.params["seed"])


def save_pictures(inputs: StudyInputs, paths: ReportPaths) -> dict[str, Path]:
    """The report's own pictures in ``paths.report_dir``: the orbit GIF (paper Fig. 13 a), pose transfer
    (Fig. 13 b) and the baselines' predicted meshes (Fig. 5); returns {title: path}."""
    cfg, out = inputs.cfg, Path(paths.report_dir)
    out.mkdir(parents=True, exist_ok=True)
    if len(cfg.transfer_groups) != 2:
        raise ValueError(f"params.yaml report.transfer_groups: expected two groups [source, target], "
                         f"got {cfg.transfer_groups}")
    trained = {g: trained_hogs(inputs, paths.models_dir, g) for g in dict.fromkeys([cfg.orbit_group,
                                                                                     *cfg.transfer_groups])}
    data, scene = trained[cfg.orbit_group]
    seq = data.sequences[0]
    frames = showcase.orbit_frames(scene, seq, seq.frames // 2, cfg.orbit_size, cfg.orbit_frames, cfg.orbit_fov_deg,
                                   cfg.orbit_elevation_deg)
    showcase.write_gif(out / "orbit.gif", frames, cfg.orbit_seconds_per_frame)

    source_group, target_group = cfg.transfer_groups
    (source_data, source), (target_data, target) = trained[source_group], trained[target_group]
    figure = showcase.pose_transfer_figure(source, target, source_data.sequences, target_data.sequences[0],
                                           inputs.hogs.crop, cfg.orbit_fov_deg, cfg.orbit_elevation_deg,
                                           cfg.image_inches, (f"{source_group}, its model", f"on {target_group}'s"))
    save_and_close(figure, out / "pose_transfer.png", cfg.dpi)

    pictures = {
        f"Fig. 13 (a): a 360° novel-view orbit of {cfg.orbit_group}'s HOGS model (animated)": out / "orbit.gif",
        f"Fig. 13 (b): pose transfer, {source_group}'s grasps on {target_group}'s HOGS model with its hand shape":
            out / "pose_transfer.png",
    }
    shown = [name for name in ("original", "full") if name in inputs.baselines.train_sets]
    if "arcticnet_sf" in inputs.baselines.tasks and shown:
        object_of = {name: inputs.index.read(name).object_name for name in inputs.index.sequences("test")}
        figure = showcase.predictions_figure(paths.runs_dir, shown, inputs.baselines.seeds[0], inputs.hands,
                                             inputs.index.objects(set(object_of.values())), object_of,
                                             cfg.image_inches, cfg.predictions_shown)
        save_and_close(figure, out / "predictions.png", cfg.dpi)
        title = ("Fig. 5: test crops with the annotated meshes and ArcticNet-SF's predicted ones, trained on "
                 f"{' and '.join(TRAIN_SET_LABELS[name] for name in shown)}")
        pictures = {title: out / "predictions.png"} | pictures
    return pictures


def run(params: dict, paths: ReportPaths) -> dict:
    """The report stage as its notebook runs it: the curves for ``dvc plots``, the report's pictures, the
    image-blind reference, the realism gap, report.md and .html and the README's Results; returns the gap."""
    clock = StageClock()
    hands = hand_models(section(params, "hand", HandConfig))
    inputs = StudyInputs(params, section(params, "report", ReportConfig), section(params, "hogs", HOGSConfig),
                         section(params, "baselines", BaselinesConfig), hands,
                         DatasetIndex.load(paths.index_file, hands))
    curves = curve_sources(paths, resolve_groups(inputs.hogs.groups, inputs.index), inputs.baselines)
    for family, sources in curves.items():
        write_curves(Path(paths.curves_dir) / family, sources, CURVES[family], inputs.cfg.curves_every)
    pictures = save_pictures(inputs, paths)
    write_json(paths.mean_prediction, mean_prediction_scores(paths.inputs_dir, "test", hands, inputs.index))

    numbers = read_numbers(paths.metrics_dir, paths.timings_dir, inputs.index.source)
    runs = {f"train_baseline/{name}" for name in curves["baselines"]}  # this parameter set's matrix
    numbers = dataclasses.replace(numbers, timings={k: v for k, v in numbers.timings.items()
                                                    if not k.startswith("train_baseline/") or k in runs})
    gap = realism_gap(numbers.metrics["table1"])
    write_json(paths.realism_gap, gap)
    report_md = Path(paths.report_md)
    variants = [v for v in TRAIN_SET_LABELS if v in numbers.metrics["augment"]]
    figures = ({title: os.path.relpath(path, report_md.parent) for title, path in pictures.items()}
               | linked_figures(report_md.parent, report_md, inputs.cfg.orbit_group, variants))
    markdown = report_markdown(numbers, figures, list(STAGE_ORDER))
    atomic_write_text(report_md, markdown)
    atomic_write_text(paths.report_html, report_html(markdown))
    readme = Path(paths.readme)
    atomic_write_text(readme, replace_results(readme.read_text(), results_section(numbers), str(readme)))
    clock.write(paths.timings)
    return gap
