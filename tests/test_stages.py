"""The stage notebooks run end to end on the smoke parameter set (through papermill, as dvc runs them)."""

import json
from pathlib import Path

import pytest
import yaml

from hogsa.cli import main
from hogsa.config import load_params
from hogsa.hogs.train import KINDS
from hogsa.training import checkpoint_metadata
from hogsa.pom.grasps import Grasps
from hogsa.srm.losses import PERCEPTUAL_OFF

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_params(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(load_params(ROOT / "params.yaml", ROOT / "params" / "smoke.yaml")))
    return path


def test_dvc_stages_name_existing_notebooks_and_params():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = load_params(ROOT / "params.yaml")
    for name, stage in stages.items():
        notebook = stage["cmd"].split()[2]
        assert (ROOT / notebook).is_file(), name
        assert notebook in stage["deps"], f"stage {name} must depend on its notebook"
        for key in stage["params"]:
            assert key in params, f"stage {name} reads params key {key!r} that params.yaml lacks"


def test_assets_stage(smoke_params, tmp_path):
    main(["notebook", "notebooks/00_assets.ipynb", str(tmp_path / "00.ipynb"), "-p", "params_file", str(smoke_params),
          "-p", "figure", str(tmp_path / "assets.png"), "-p", "metrics", str(tmp_path / "assets.json")])
    metrics = json.loads((tmp_path / "assets.json").read_text())
    assert metrics["hands"]["right"]["watertight"] and metrics["hands"]["left"]["open_hand"]
    assert {"box", "laptop", "book", "scissors", "bottle", "mug"} <= set(metrics["objects"])
    assert (tmp_path / "assets.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def smoke_data(smoke_params, tmp_path_factory) -> Path:
    """The data stage's outputs on the smoke set (embedded/, index.json, report/, data.json), made once."""
    out = tmp_path_factory.mktemp("data")
    main(["notebook", "notebooks/01_data.ipynb", str(out / "01.ipynb"), "-p", "params_file", str(smoke_params),
          "-p", "embedded_root", str(out / "embedded"), "-p", "index_file", str(out / "index.json"),
          "-p", "report_dir", str(out / "report"), "-p", "metrics", str(out / "data.json")])
    return out


def test_data_stage(smoke_data):
    metrics = json.loads((smoke_data / "data.json").read_text())
    assert metrics["splits"]["train"]["sequences"] == 1 and metrics["splits"]["test"]["images"] == 4 * 8
    assert metrics["joints_on_mask_rate"] > 0.95
    assert 0 < metrics["contact"]["contact_rate"] < 1
    index = json.loads((smoke_data / "index.json").read_text())
    assert index["source"] == "embedded" and index["splits"]["test"] == ["s02/box_grab_01"]
    assert {p.name for p in (smoke_data / "report").iterdir()} == {"contact_histograms.png", "contact_sheet_0.png"}


def hogs_stage(params: Path, index: Path, out: Path) -> None:
    main(["notebook", "notebooks/10_hogs.ipynb", str(out / "10.ipynb"), "-p", "params_file", str(params),
          "-p", "index_file", str(index), "-p", "models_dir", str(out / "models"),
          "-p", "report_dir", str(out / "report"), "-p", "metrics", str(out / "hogs.json")])


@pytest.fixture(scope="module")
def smoke_hogs(smoke_params, smoke_data, tmp_path_factory) -> Path:
    """The hogs stage's outputs on the smoke set (models/, report/, hogs.json), made once."""
    out = tmp_path_factory.mktemp("hogs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOGSA_NO_COMPILE", "1")  # 32² crops: compiling would cost more than it saves
        hogs_stage(smoke_params, smoke_data / "index.json", out)
    return out


def test_hogs_stage(smoke_params, smoke_data, smoke_hogs, monkeypatch):
    metrics = json.loads((smoke_hogs / "hogs.json").read_text())
    for kind in ("hogs", "3dgs"):
        assert 5 < metrics[kind]["psnr"] < 60 and 0 < metrics[kind]["ssim"] <= 1
        assert metrics[kind]["lpips"] == "not computed"
        group = metrics["groups"]["s01/box"][kind]
        assert set(group["corrected_poses"]) == {"held_out", "novel_views", "novel_poses"}
        assert metrics[kind]["psnr_annotated_poses"] == group["annotated_poses"]["held_out"]["psnr"]
        checkpoint = smoke_hogs / "models" / "s01_box" / kind / "model.safetensors"
        assert checkpoint_metadata(checkpoint)["held_out_poses_fitted"] == "true"
    assert (smoke_hogs / "models" / "s01_box" / "hogs" / "scene.safetensors").is_file()
    figures = {p.name for p in (smoke_hogs / "report").iterdir()}
    assert figures == {"held_out_s01_box.png", "orbit_s01_box.png", "novel_poses_s01_box.png"}

    # a second run finds the finished models and only evaluates: the same figures
    stamp = checkpoint.stat().st_mtime_ns
    monkeypatch.setenv("HOGSA_NO_COMPILE", "1")
    hogs_stage(smoke_params, smoke_data / "index.json", smoke_hogs)
    assert checkpoint.stat().st_mtime_ns == stamp
    assert json.loads((smoke_hogs / "hogs.json").read_text()) == metrics


def test_contactnet_and_pom_stages(smoke_params, smoke_data, tmp_path):
    index, model = str(smoke_data / "index.json"), str(tmp_path / "contactnet.safetensors")
    main(["notebook", "notebooks/29_contactnet.ipynb", str(tmp_path / "29.ipynb"), "-p", "params_file", str(smoke_params),
          "-p", "index_file", index, "-p", "model_file", model, "-p", "report_dir", str(tmp_path / "contactnet"),
          "-p", "metrics", str(tmp_path / "contactnet.json")])
    contactnet = json.loads((tmp_path / "contactnet.json").read_text())
    assert contactnet["train_pairs"] == 4 and 0 <= contactnet["contact_map_mae"] <= 1
    main(["notebook", "notebooks/30_pom.ipynb", str(tmp_path / "30.ipynb"), "-p", "params_file", str(smoke_params),
          "-p", "index_file", index, "-p", "model_file", model, "-p", "poses_file", str(tmp_path / "poses.npz"),
          "-p", "report_dir", str(tmp_path / "pom"), "-p", "metrics", str(tmp_path / "pom.json")])
    metrics = json.loads((tmp_path / "pom.json").read_text())
    for key in ("penetration_mm_before", "penetration_mm_after", "contact_rate_before", "contact_rate_after",
                "pass_rate", "coverage_mm_train", "coverage_mm_train_plus_pom"):
        assert isinstance(metrics[key], float), key
    assert metrics["samples"] == 3 and metrics["kept"] + metrics["dropped"] == 3
    assert metrics["coverage_mm_train_plus_pom"] <= metrics["coverage_mm_train"]
    assert len(Grasps.load(tmp_path / "poses.npz")) == metrics["kept"]
    assert {p.name for p in (tmp_path / "pom").iterdir()} == {"plausibility.csv", "loss_terms.png", "before_after.png",
                                                               "tsne.png"}


def test_srm_stage(smoke_params, smoke_data, smoke_hogs, tmp_path, monkeypatch):
    monkeypatch.setenv("HOGSA_NO_COMPILE", "1")
    main(["notebook", "notebooks/20_srm.ipynb", str(tmp_path / "20.ipynb"), "-p", "params_file", str(smoke_params),
          "-p", "index_file", str(smoke_data / "index.json"), "-p", "models_dir", str(smoke_hogs / "models"),
          "-p", "srm_dir", str(tmp_path / "srm"), "-p", "report_dir", str(tmp_path / "report"),
          "-p", "metrics", str(tmp_path / "srm.json")])
    metrics = json.loads((tmp_path / "srm.json").read_text())
    hogs_metrics = json.loads((smoke_hogs / "hogs.json").read_text())
    held_out = hogs_metrics["groups"]["s01/box"]["hogs"]["corrected_poses"]["held_out"]
    for row in ("hogs", "hogs_srm", "3dgs", "3dgs_srm"):
        assert 5 < metrics[row]["psnr"] < 60 and 0 < metrics[row]["ssim"] <= 1, row
        assert metrics[row]["images"] == held_out["images"] and metrics[row]["lpips"] == "not computed"
    # the raw rows are the hogs stage's held-out evaluation of the same models, at the same corrected poses
    assert metrics["hogs"]["psnr"] == pytest.approx(held_out["psnr"], abs=1e-4)
    assert metrics["3dgs"]["psnr"] == pytest.approx(hogs_metrics["3dgs"]["psnr"], abs=1e-4)
    assert metrics["gain_db"]["3dgs"] == pytest.approx(metrics["3dgs_srm"]["psnr"] - metrics["3dgs"]["psnr"])
    assert metrics["perceptual"] == PERCEPTUAL_OFF
    assert set(metrics["groups"]) == {"s01/box"}
    assert all((tmp_path / "srm" / kind / "srm.safetensors").is_file() for kind in KINDS)
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"grid.png", "grid_zoom.png", "psnr_per_group.png"}
