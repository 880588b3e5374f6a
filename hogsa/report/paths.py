"""The files each stage reads and writes, and their values in dvc.yaml.

dvc.yaml is the one place a stage's paths are written: it passes them to the stage's notebook as
papermill parameters (``-p NAME PATH``), and ``hogsa <stage>`` takes them as options whose defaults
are those values. Each stage's paths are a frozen dataclass whose field names are those parameter
names; paths are relative to the study's root (the working directory a stage runs in) or absolute.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class AssetsPaths:
    figure: str  # PNG of both hands and every open object
    metrics: str  # JSON
    timings: str  # JSON


@dataclass(frozen=True)
class DataPaths:
    embedded_root: str  # folder the embedded dataset is generated into
    index_file: str  # JSON index of the dataset (written)
    report_dir: str  # folder of the figures
    metrics: str
    timings: str


@dataclass(frozen=True)
class HogsPaths:
    index_file: str
    models_dir: str  # one folder per group and kind of model (checkpoints, exported scene)
    report_dir: str
    metrics: str
    timings: str


@dataclass(frozen=True)
class ContactNetPaths:
    index_file: str
    model_file: str  # safetensors of the trained net (written)
    report_dir: str
    metrics: str
    timings: str


@dataclass(frozen=True)
class PomPaths:
    index_file: str
    model_file: str  # the contactnet stage's net (read)
    poses_file: str  # npz of the plausible generated grasps (written)
    report_dir: str
    metrics: str
    timings: str


@dataclass(frozen=True)
class SrmPaths:
    index_file: str
    models_dir: str  # the hogs stage's models (read)
    srm_dir: str  # one folder per kind of render (checkpoints)
    report_dir: str
    metrics: str
    timings: str


@dataclass(frozen=True)
class AugmentPaths:
    index_file: str
    poses_file: str  # the pom stage's poses (read)
    models_dir: str  # the hogs stage's models (read)
    srm_dir: str  # the srm stage's SRMs (read)
    out_dir: str  # one folder per variant, in the ARCTIC layout (written)
    crops_dir: str  # the original training images cropped by the same procedure (written)
    report_dir: str
    metrics: str
    timings: str


@dataclass(frozen=True)
class BaselinesPaths:
    index_file: str
    runs_dir: str  # the train_baseline runs: <task>/<train_set>/seed<k>/ (read)
    report_dir: str
    table1: str  # JSON: ArcticNet-SF, every Table-1 metric per train set
    table2: str  # JSON: InterField-SF's field errors and field ACC per train set
    table4: str  # JSON: ArcticNet-SF on full / no_srm / no_pom
    timings: str


@dataclass(frozen=True)
class ReportPaths:
    index_file: str
    models_dir: str  # the hogs stage's models (read)
    srm_dir: str  # the srm stage's models (read: their curves)
    runs_dir: str  # the train_baseline runs (read)
    inputs_dir: str  # the baseline_inputs stage's crops (read: the image-blind reference)
    metrics_dir: str  # every stage's metrics (read)
    timings_dir: str  # every stage's timings (read)
    report_dir: str  # the report's own pictures (written)
    curves_dir: str  # every training curve as CSV, for dvc plots (written)
    report_md: str  # Markdown report (written; its figure links are relative to its folder)
    report_html: str  # the same as one HTML page
    realism_gap: str  # JSON metrics
    mean_prediction: str  # JSON metrics: the training crops' mean predicted for every test crop
    readme: str  # README.md: its Results section is rewritten
    timings: str


StagePaths = (AssetsPaths | DataPaths | HogsPaths | ContactNetPaths | PomPaths | SrmPaths | AugmentPaths
              | BaselinesPaths | ReportPaths)
STAGE_PATHS: dict[str, type[StagePaths]] = {"assets": AssetsPaths, "data": DataPaths, "hogs": HogsPaths,
                                              "contactnet": ContactNetPaths, "pom": PomPaths, "srm": SrmPaths,
                                              "augment": AugmentPaths, "baselines": BaselinesPaths,
                                              "report": ReportPaths}


def notebook_parameters(dvc_file: str | Path, stage: str) -> dict[str, str]:
    """``{name: value}`` of the ``-p NAME VALUE`` words of dvc.yaml's ``hogsa notebook`` command of ``stage``."""
    stages = yaml.safe_load(Path(dvc_file).read_text())["stages"]
    if stage not in stages:
        raise KeyError(f"{dvc_file}: no stage {stage!r}; it has {sorted(stages)}")
    words = stages[stage]["cmd"].split()
    if words[:2] != ["hogsa", "notebook"] or len(words) % 3 != 1:
        raise ValueError(f"{dvc_file}: stage {stage!r}: cmd must be 'hogsa notebook IN OUT' and '-p NAME VALUE' "
                         f"triples, got {stages[stage]['cmd']!r}")
    triples = [words[k:k + 3] for k in range(4, len(words), 3)]
    bad = [" ".join(t) for t in triples if t[0] != "-p"]
    if bad:
        raise ValueError(f"{dvc_file}: stage {stage!r}: expected '-p NAME VALUE', got {bad}")
    return {name: value for _, name, value in triples}


def dvc_paths(dvc_file: str | Path, stage: str) -> dict[str, str]:
    """The paths dvc.yaml passes to ``stage``, by ``STAGE_PATHS[stage]`` field; raises naming a missing one."""
    given = notebook_parameters(dvc_file, stage)
    fields = [field.name for field in dataclasses.fields(STAGE_PATHS[stage])]
    missing = [name for name in fields if name not in given]
    if missing:
        raise KeyError(f"{dvc_file}: stage {stage!r} passes no '-p NAME PATH' for {missing}")
    return {name: given[name] for name in fields}
