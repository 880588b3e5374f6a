"""The stage notebooks run end to end on the smoke parameter set (through papermill, as dvc runs them)."""

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_stage, stage_outputs

from hogsa.config import load_params
from hogsa.hogs.train import KINDS
from hogsa.pom.grasps import Grasps
from hogsa.srm.losses import PERCEPTUAL_OFF
from hogsa.training import checkpoint_metadata


def metrics(root: Path, stage: str) -> dict:
    return json.loads((root / "reports" / "metrics" / f"{stage}.json").read_text())


def test_dvc_stages_name_existing_notebooks_and_params():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = load_params(ROOT / "params.yaml")
    for name, stage in stages.items():
        notebook = stage["cmd"].split()[2]
        assert (ROOT / notebook).is_file(), name
        assert notebook in stage["deps"], f"stage {name} must depend on its notebook"
        for key in stage["params"]:
            assert key in params, f"stage {name} reads params key {key!r} that params.yaml lacks"


@pytest.mark.parametrize("stage", ["assets", "data", "hogs", "contactnet", "pom", "srm"])
def test_every_stage_writes_its_outputs_and_timings_apart_from_its_metrics(smoke_study, stage):
    for path in stage_outputs(stage, smoke_study):
        assert path.exists(), path
    timings = json.loads((smoke_study / "reports" / "timings" / f"{stage}.json").read_text())
    assert timings["stage_seconds"] > 0
    assert not any("seconds" in key for key in metrics(smoke_study, stage))
    executed, = (p for p in stage_outputs(stage, smoke_study) if p.suffix == ".ipynb")
    notebook = json.loads(executed.read_text())
    assert "start_time" not in notebook["metadata"]["papermill"]
    assert not any(out["output_type"] == "stream" and out["name"] == "stderr"
                   for cell in notebook["cells"] for out in cell.get("outputs", []))


def test_assets_stage(smoke_study):
    summary = metrics(smoke_study, "assets")
    assert summary["hands"]["right"]["watertight"] and summary["hands"]["left"]["open_hand"]
    assert {"box", "laptop", "book", "scissors", "bottle", "mug"} <= set(summary["objects"])
    assert (smoke_study / "reports" / "assets" / "hands_and_objects.png").stat().st_size > 10_000


def test_data_stage(smoke_params, smoke_study):
    summary = metrics(smoke_study, "data")
    embedded = yaml.safe_load(smoke_params.read_text())["data"]["embedded"]
    assert summary["splits"]["train"]["sequences"] == 1 and summary["splits"]["train"]["images"] == embedded["frames"] * 8
    assert summary["splits"]["test"]["images"] == embedded["eval_frames"] * len(embedded["eval_views"])
    assert summary["joints_on_mask_rate"] > 0.95
    assert 0 < summary["contact"]["contact_rate"] < 1
    index = json.loads((smoke_study / "data" / "index.json").read_text())
    assert index["source"] == "embedded" and index["splits"]["test"] == ["s02/box_grab_01"]
    report = smoke_study / "reports" / "data"
    assert {p.name for p in report.iterdir()} == {"contact_histograms.png", "contact_sheet_0.png"}


def test_hogs_stage(smoke_params, smoke_study, monkeypatch):
    summary = metrics(smoke_study, "hogs")
    models = smoke_study / "data" / "models" / "hogs"
    for kind in KINDS:
        assert 5 < summary[kind]["psnr"] < 60 and 0 < summary[kind]["ssim"] <= 1
        assert summary[kind]["lpips"] == "not computed"
        group = summary["groups"]["s01/box"][kind]
        assert set(group["corrected_poses"]) == {"held_out", "novel_views", "novel_poses"}
        # exact: with one group the mean over groups is that group's own number
        assert summary[kind]["psnr_annotated_poses"] == group["annotated_poses"]["held_out"]["psnr"]
        checkpoint = models / "s01_box" / kind / "model.safetensors"
        assert checkpoint_metadata(checkpoint)["held_out_poses_fitted"] == "true"
    assert (models / "s01_box" / "hogs" / "scene.safetensors").is_file()
    figures = {p.name for p in (smoke_study / "reports" / "hogs").iterdir()}
    assert figures == {"held_out_s01_box.png", "orbit_s01_box.png", "novel_poses_s01_box.png"}

    # a second run finds the finished models and only evaluates: the same metrics, to the bit
    stamp = checkpoint.stat().st_mtime_ns
    monkeypatch.setenv("HOGSA_NO_COMPILE", "1")
    run_stage("hogs", smoke_study, smoke_params)
    assert checkpoint.stat().st_mtime_ns == stamp
    assert metrics(smoke_study, "hogs") == summary


def test_contactnet_and_pom_stages(smoke_study, smoke_params):
    contactnet = metrics(smoke_study, "contactnet")
    assert contactnet["train_pairs"] == 4 and 0 <= contactnet["net_mae"] <= 1
    summary = metrics(smoke_study, "pom")
    for key in ("penetration_mm_before", "penetration_mm_after", "contact_rate_before", "contact_rate_after",
                "pass_rate", "coverage_mm_train", "coverage_mm_train_plus_pom"):
        assert isinstance(summary[key], float), key
    per_grasp = load_params(smoke_params)["pom"]["samples_per_grasp"]
    assert summary["samples"] == per_grasp * summary["train_grasps"]
    assert summary["kept"] + summary["dropped"] == summary["samples"]
    assert summary["coverage_mm_train_plus_pom"] <= summary["coverage_mm_train"]
    assert len(Grasps.load(smoke_study / "data" / "pom" / "poses.npz")) == summary["kept"]
    assert {p.name for p in (smoke_study / "reports" / "pom").iterdir()} == {
        "plausibility.csv", "loss_terms.png", "before_after.png", "tsne.png"}


def test_srm_stage(smoke_study):
    summary = metrics(smoke_study, "srm")
    hogs_metrics = metrics(smoke_study, "hogs")
    held_out = hogs_metrics["groups"]["s01/box"]["hogs"]["corrected_poses"]["held_out"]
    for row in ("hogs", "hogs_srm", "3dgs", "3dgs_srm"):
        assert 5 < summary[row]["psnr"] < 60 and 0 < summary[row]["ssim"] <= 1, row
        assert summary[row]["images"] == held_out["images"] and summary[row]["lpips"] == "not computed"
    # the raw rows are the hogs stage's held-out evaluation of the same models, at the same corrected poses
    assert summary["hogs"]["psnr"] == pytest.approx(held_out["psnr"], abs=1e-4)
    assert summary["3dgs"]["psnr"] == pytest.approx(hogs_metrics["3dgs"]["psnr"], abs=1e-4)
    assert summary["gain_db"]["3dgs"] == pytest.approx(summary["3dgs_srm"]["psnr"] - summary["3dgs"]["psnr"])
    assert "untuned_groups" not in summary  # the smoke set's one group is srm.report.tuned_on's
    assert summary["perceptual"] == PERCEPTUAL_OFF
    assert set(summary["groups"]) == {"s01/box"}
    srm_dir = smoke_study / "data" / "models" / "srm"
    assert all((srm_dir / kind / "srm.safetensors").is_file() for kind in KINDS)
    assert {p.name for p in (smoke_study / "reports" / "srm").iterdir()} == {"grid.png", "grid_zoom.png",
                                                                             "psnr_per_group.png"}


def test_baselines_stage_tables_re_score_from_the_saved_predictions(smoke_params, smoke_study):
    """Tables 1, 2 and 4 hold every metric of every train set over the seeds, and re-scoring each run's
    saved test predictions with hogsa.metrics.arctic gives the tables' per-seed values exactly."""
    from hogsa.baselines.evaluate import score_folder
    from hogsa.report.baselines import TABLE1_METRICS, TABLE2_METRICS

    params = yaml.safe_load(smoke_params.read_text())
    cfg, views = params["baselines"], params["data"]["embedded"]["eval_views"]
    tables = {name: json.loads((smoke_study / "reports" / "metrics" / f"{name}.json").read_text())
              for name in ("table1", "table2", "table4")}
    assert set(tables["table1"]) == set(tables["table2"]) == set(cfg["train_sets"])
    assert set(tables["table4"]) == {"full"} and tables["table4"]["full"] == tables["table1"]["full"]
    for name, task, keys in (("table1", "arcticnet_sf", TABLE1_METRICS), ("table2", "interfield_sf", TABLE2_METRICS)):
        for train_set, row in tables[name].items():
            assert set(row) == set(keys)
            for k, seed in enumerate(cfg["seeds"]):
                folder = smoke_study / "data" / "baselines" / task / train_set / f"seed{seed}" / "predictions"
                files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.npz"))
                assert files == [f"s02/box_grab_01/{view}.npz" for view in views]
                scores = score_folder(folder)
                for metric in keys:
                    assert row[metric]["seeds"][k] == scores[metric] or (math.isnan(scores[metric])
                                                                         and math.isnan(row[metric]["seeds"][k]))
    figures = {p.name for p in (smoke_study / "reports" / "baselines").iterdir()}
    assert figures == {"curves.png", "predictions.png"}  # the smoke set has no val split


def test_report_stage_writes_the_report_curves_and_readme_from_the_stages_files(smoke_params, smoke_study):
    """report.md holds every table's heading and each hogsa row of Table 1 as the study's files give it;
    the README copy's Results are results_section of those files; every run's curve is copied; the GIF
    has the configured frames; the image-blind reference scores every Table-1 metric."""
    from PIL import Image

    from hogsa.report.baselines import TABLE1_METRICS
    from hogsa.report.study import (
        TABLE1_COLUMNS,
        TRAIN_SET_LABELS,
        in_study_order,
        mean_std,
        read_numbers,
        results_section,
    )

    TABLE1_METRICS_ORDER = [c[0] for c in TABLE1_COLUMNS]

    params = yaml.safe_load(smoke_params.read_text())
    reports = smoke_study / "reports"
    markdown = (reports / "report.md").read_text()
    for heading in ("## Table 1", "## Table 2", "## Table 3", "## Table 4", "## The realism gap", "## Figures",
                    "## Time of each stage"):
        assert heading in markdown
    table1 = metrics(smoke_study, "table1")
    section = markdown[markdown.index("## Table 1"):markdown.index("## Table 2")]
    lines = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line for line in section.splitlines()
             if line.startswith("| hogsa, embedded |")}
    mpjpe = 2 + TABLE1_METRICS_ORDER.index("mpjpe")
    for name, row in in_study_order(table1):
        line = lines[("hogsa, embedded", TRAIN_SET_LABELS[name])]
        assert [c.strip() for c in line.strip("|").split("|")][mpjpe] == mean_std(row["mpjpe"], 1)
    assert "<table>" in (reports / "report.html").read_text()
    numbers = read_numbers(reports / "metrics", reports / "timings")
    assert results_section(numbers) in (smoke_study / "README.md").read_text()
    assert metrics(smoke_study, "realism_gap") == {}  # the smoke set trains no oracle run
    assert set(metrics(smoke_study, "mean_prediction")) == set(TABLE1_METRICS)
    runs = [f"{task}_{name}_seed{seed}" for task in params["baselines"]["tasks"]
            for name in params["baselines"]["train_sets"] for seed in params["baselines"]["seeds"]]
    assert sorted(p.stem for p in (reports / "curves" / "baselines").iterdir()) == sorted(runs)
    assert sorted(p.stem for p in (reports / "curves" / "hogs").iterdir()) == ["s01_box_3dgs", "s01_box_hogs"]
    with Image.open(reports / "report" / "orbit.gif") as gif:
        assert gif.n_frames == params["report"]["orbit_frames"] and gif.size == (params["report"]["orbit_size"],) * 2
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (reports / link).is_file(), link
