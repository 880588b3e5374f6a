"""``hogsa <stage>``: the stage's functions without Jupyter, with dvc.yaml's paths as defaults."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
from conftest import ROOT, STAGES

from hogsa.cli import build_parser, main, stage_paths
from hogsa.report.paths import STAGE_PATHS, HogsPaths, dvc_paths, notebook_parameters


def notebook_defaults(stage: str) -> dict[str, str]:
    """The ``name = "value"`` assignments of the stage notebook's parameters cell."""
    notebook = ROOT / STAGES[stage]["cmd"].split()[2]
    cells = json.loads(notebook.read_text())["cells"]
    cell, = (c for c in cells if "parameters" in c["metadata"].get("tags", []))
    namespace: dict = {}
    exec("".join(cell["source"]), namespace)  # noqa: S102 - the study's own notebook
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


@pytest.mark.parametrize("stage", sorted(STAGE_PATHS))
def test_each_stage_takes_the_paths_dvc_passes_its_notebook_with_the_notebooks_defaults(stage):
    passed = notebook_parameters(ROOT / "dvc.yaml", stage)
    fields = [field.name for field in dataclasses.fields(STAGE_PATHS[stage])]
    assert sorted(passed) == sorted(fields)
    assert notebook_defaults(stage) == {"params_file": "params.yaml", **passed}
    options = build_parser().parse_args([stage])
    assert all(getattr(options, name) is None for name in fields)


def test_paths_left_out_are_dvc_yamls_and_given_ones_are_resolved_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    given = {name: None for name in ("index_file", "models_dir", "report_dir", "metrics", "timings")}
    given["metrics"] = "out/hogs.json"
    paths = stage_paths("hogs", given, ROOT)
    assert paths == HogsPaths("data/index.json", "data/models/hogs", "reports/hogs",
                              str(tmp_path / "out" / "hogs.json"), "reports/timings/hogs.json")


def test_a_dvc_yaml_without_a_stage_path_is_refused_naming_it(tmp_path):
    dvc = tmp_path / "dvc.yaml"
    dvc.write_text("stages:\n  assets:\n    cmd: hogsa notebook a.ipynb b.ipynb -p figure f.png -p metrics m.json\n")
    with pytest.raises(KeyError, match=r"stage 'assets' passes no '-p NAME PATH' for \['timings'\]"):
        dvc_paths(dvc, "assets")
    dvc.write_text("stages:\n  assets:\n    cmd: hogsa notebook a.ipynb b.ipynb -x figure f.png\n")
    with pytest.raises(ValueError, match="expected '-p NAME VALUE'"):
        notebook_parameters(dvc, "assets")
    with pytest.raises(KeyError, match="no stage 'hogs'"):
        notebook_parameters(dvc, "hogs")


def test_assets_command_writes_the_bytes_the_notebook_run_writes(smoke_study, smoke_params, tmp_path):
    main(["assets", "--params", str(smoke_params), "--figure", str(tmp_path / "assets.png"),
          "--metrics", str(tmp_path / "assets.json"), "--timings", str(tmp_path / "timings.json")])
    reports = smoke_study / "reports"
    assert (tmp_path / "assets.json").read_bytes() == (reports / "metrics" / "assets.json").read_bytes()
    assert (tmp_path / "assets.png").read_bytes() == (reports / "assets" / "hands_and_objects.png").read_bytes()
    assert json.loads((tmp_path / "timings.json").read_text())["stage_seconds"] > 0


def test_contactnet_command_writes_the_bytes_the_notebook_run_writes(smoke_study, smoke_params, tmp_path):
    main(["contactnet", "--params", str(smoke_params), "--index-file", str(smoke_study / "data" / "index.json"),
          "--model-file", str(tmp_path / "net.safetensors"), "--report-dir", str(tmp_path / "report"),
          "--metrics", str(tmp_path / "contactnet.json"), "--timings", str(tmp_path / "timings.json")])
    expected: dict[str, Path] = {
        "contactnet.json": smoke_study / "reports" / "metrics" / "contactnet.json",
        "net.safetensors": smoke_study / "data" / "models" / "contactnet" / "model.safetensors",
        "report/training.png": smoke_study / "reports" / "contactnet" / "training.png",
        "report/training.csv": smoke_study / "reports" / "contactnet" / "training.csv",
    }
    for written, notebook_run in expected.items():
        assert (tmp_path / written).read_bytes() == notebook_run.read_bytes(), written


def test_a_notebooks_own_omp_wait_policy_reaches_its_kernel_and_only_it(tmp_path, monkeypatch):
    from hogsa.cli import run_notebook

    cells = [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": 'seen = ""', "outputs": [],
              "execution_count": None},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": "import os, pathlib\npathlib.Path(seen).write_text(os.environ.get('OMP_WAIT_POLICY', ''))"}]
    notebook = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    for policy, expected in (("ACTIVE", "ACTIVE"), (None, "PASSIVE")):
        notebook["metadata"]["hogsa"] = {"omp_wait_policy": policy} if policy else {}
        source = tmp_path / f"{policy}.ipynb"
        source.write_text(json.dumps(notebook))
        run_notebook(source, tmp_path / f"{policy}-out.ipynb", {"seen": str(tmp_path / f"{policy}.txt")})
        assert (tmp_path / f"{policy}.txt").read_text() == expected
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
