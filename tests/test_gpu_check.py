"""bench/gpu_check.py where there is no GPU: it exits 0 saying so and writes nothing; its difference
measure and cost prediction on hand-made cases; and (slow) a dry run of every part at tiny sizes on the
CPU, hogsa's rasterizer standing in for gsplat."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


def test_without_cuda_it_says_so_exits_0_and_writes_nothing(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["cuda"] is False and "CUDA is not available" in result["message"]
    assert not out.exists()


def test_differences_on_a_hand_made_case(gpu_check):
    ours = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    reference = torch.tensor([[1.0, 2.0], [3.0, 2.0]])
    d = gpu_check.differences(ours, reference)
    assert d == {"max_abs": 2.0, "mean_abs": 0.5, "ref_max_abs": 3.0, "rel_l2": round(2 / math.sqrt(18), 4)}
    assert gpu_check.differences(torch.zeros(3), torch.zeros(3))["rel_l2"] == 0.0
    assert gpu_check.differences(torch.ones(3), torch.zeros(3))["rel_l2"] == 1.0
    with pytest.raises(ValueError, match="shapes"):
        gpu_check.differences(torch.zeros(2, 3), torch.zeros(3, 2))


def test_cost_is_predicted_from_the_same_gaussians_at_the_largest_smaller_size(gpu_check):
    Case = gpu_check.Case
    measured = {Case(128, 128, "20k"): {"fwd_ms": 10.0, "fwd_bwd_ms": 30.0},
                Case(224, 224, "20k"): {"fwd_ms": 20.0, "fwd_bwd_ms": 60.0},
                Case(128, 128, "200k"): {"fwd_ms": 40.0, "fwd_bwd_ms": 80.0}}
    predicted = gpu_check.predicted_seconds(Case(1400, 1000, "20k"), measured)
    assert predicted == pytest.approx(0.08 * 1400 * 1000 / 224**2)
    assert gpu_check.predicted_seconds(Case(224, 224, "200k"), measured) == pytest.approx(0.12 * 224**2 / 128**2)
    assert gpu_check.predicted_seconds(Case(128, 128, "20k"), {}) is None


@pytest.mark.slow
def test_dry_run_runs_every_part(gpu_check, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOGSA_NO_COMPILE", "1")
    out = tmp_path / "gpu" / "gpu_check.json"
    assert gpu_check.main(["--dry-run", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.loads(out.read_text()) == printed and printed["ok"] and printed["dry_run"]
    assert set(printed["compare"]) == {"random_2cams_backgrounds", "random_sh3_antialiased", "ellipsoid",
                                       "hogs_smoke_group"}
    for name, row in printed["compare"].items():  # the stand-in differs only in its tile size
        assert set(row["gradients"]) == set(gpu_check.GAUSSIAN_INPUTS), name
        for measure in [*row["outputs"].values(), *row["gradients"].values()]:
            assert measure["ref_max_abs"] > 0 and measure["rel_l2"] < 1e-5, name
    assert len(printed["speed_gsplat"]) == len(printed["speed_cpu"]) - 2 == 4  # + threads, budget_s
    assert printed["train"]["crop_32"]["cpu"]["it_per_s"] > 0
