"""The stage notebooks run end to end on the smoke parameter set (through papermill, as dvc runs them)."""

import json
from pathlib import Path

import pytest
import yaml

from hogsa.cli import main
from hogsa.config import load_params, section
from hogsa.data.dataset import DataConfig, DatasetIndex, index_dataset
from hogsa.data.synth import generate
from hogsa.hand import HandConfig, hand_models
from hogsa.hogs.train import KINDS, HOGSConfig, evaluate, load_group, resolve_groups, train_hogs
from hogsa.srm.losses import PERCEPTUAL_OFF
from hogsa.srm.pairs import load_trained, model_path

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


def test_data_stage(smoke_params, tmp_path):
    main(["notebook", "notebooks/01_data.ipynb", str(tmp_path / "01.ipynb"), "-p", "params_file", str(smoke_params),
          "-p", "embedded_root", str(tmp_path / "embedded"), "-p", "index_file", str(tmp_path / "index.json"),
          "-p", "report_dir", str(tmp_path / "report"), "-p", "metrics", str(tmp_path / "data.json")])
    metrics = json.loads((tmp_path / "data.json").read_text())
    assert metrics["splits"]["train"]["sequences"] == 1 and metrics["splits"]["test"]["images"] == 4 * 8
    assert metrics["joints_on_mask_rate"] > 0.95
    assert 0 < metrics["contact"]["contact_rate"] < 1
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["source"] == "embedded" and index["splits"]["test"] == ["s02/box_grab_01"]
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"contact_histograms.png", "contact_sheet_0.png"}


@pytest.fixture(scope="module")
def smoke_models(smoke_params, tmp_path_factory) -> Path:
    """The smoke dataset (``index.json``, ``embedded/``) and HOGS and 3DGS models of its groups trained
    for the smoke set's few iterations (``models/``), in one folder."""
    root = tmp_path_factory.mktemp("smoke")
    params = load_params(smoke_params)
    cfg, hogs_cfg = section(params, "data", DataConfig), section(params, "hogs", HOGSConfig)
    generate(root / "embedded", cfg.embedded, params["seed"])
    index = index_dataset(cfg, root / "embedded")
    index.save(root / "index.json")
    hands = hand_models(section(params, "hand", HandConfig))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOGSA_NO_COMPILE", "1")  # tiny runs: compiling would cost more than it saves
        for group in resolve_groups(hogs_cfg.groups, index, hands):
            data = load_group(hogs_cfg, index, hands, group)
            for kind in KINDS:
                train_hogs(hogs_cfg, data, kind, model_path(root / "models", group, kind).parent, params["seed"])
    return root


def test_srm_stage(smoke_params, smoke_models, tmp_path, monkeypatch):
    monkeypatch.setenv("HOGSA_NO_COMPILE", "1")
    main(["notebook", "notebooks/20_srm.ipynb", str(tmp_path / "20.ipynb"), "-p", "params_file", str(smoke_params),
          "-p", "index_file", str(smoke_models / "index.json"), "-p", "models_dir", str(smoke_models / "models"),
          "-p", "srm_dir", str(tmp_path / "srm"), "-p", "report_dir", str(tmp_path / "report"),
          "-p", "metrics", str(tmp_path / "srm.json")])
    metrics = json.loads((tmp_path / "srm.json").read_text())
    params = load_params(smoke_params)
    hogs_cfg = section(params, "hogs", HOGSConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    index = DatasetIndex.load(smoke_models / "index.json")
    (group,) = resolve_groups(hogs_cfg.groups, index, hands)
    data = load_group(hogs_cfg, index, hands, group)
    for row in ("hogs", "hogs_srm", "3dgs", "3dgs_srm"):
        assert 5 < metrics[row]["psnr"] < 60 and 0 < metrics[row]["ssim"] <= 1, row
        assert metrics[row]["images"] == len(data.held_out) and metrics[row]["lpips"] == "not computed"
    # the raw rows are the hogs stage's held-out evaluation of the same models
    raw = evaluate(load_trained("hogs", hogs_cfg, data, smoke_models / "models", params["seed"]), data.held_out)
    assert metrics["hogs"]["psnr"] == pytest.approx(raw["psnr"], abs=1e-4)
    assert metrics["gain_db"]["3dgs"] == pytest.approx(metrics["3dgs_srm"]["psnr"] - metrics["3dgs"]["psnr"])
    assert metrics["perceptual"] == PERCEPTUAL_OFF
    assert set(metrics["groups"]) == {group}
    assert all((tmp_path / "srm" / kind / "srm.safetensors").is_file() for kind in KINDS)
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"grid.png", "grid_zoom.png", "psnr_per_group.png"}
