"""The stage notebooks run end to end on the smoke parameter set (through papermill, as dvc runs them)."""

import json
from pathlib import Path

import pytest
import yaml

from hogsa.cli import main
from hogsa.config import load_params

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
def smoke_dataset(smoke_params, tmp_path_factory) -> Path:
    """The smoke embedded dataset and its index (what the data stage writes), for the later stages."""
    from hogsa.config import section
    from hogsa.data.dataset import DataConfig, index_dataset
    from hogsa.data.synth import generate

    folder = tmp_path_factory.mktemp("smoke_data")
    cfg = section(load_params(smoke_params), "data", DataConfig)
    generate(folder / "embedded", cfg.embedded, seed=0)
    index_dataset(cfg, folder / "embedded").save(folder / "index.json")
    return folder


def test_contactnet_and_pom_stages(smoke_params, smoke_dataset, tmp_path):
    index, model = str(smoke_dataset / "index.json"), str(tmp_path / "contactnet.safetensors")
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
    from hogsa.pom.grasps import Grasps
    assert len(Grasps.load(tmp_path / "poses.npz")) == metrics["kept"]
    assert {p.name for p in (tmp_path / "pom").iterdir()} == {"plausibility.csv", "loss_terms.png", "before_after.png",
                                                               "tsne.png"}
