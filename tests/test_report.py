"""The stages' metric assembly, table and clock (hogsa.report), on small hand-made inputs."""

import dataclasses
import json

import numpy as np
import torch
from conftest import ROOT
from safetensors import safe_open

from hogsa.config import load_params, section
from hogsa.hogs.train import HOGSConfig, run_identity
from hogsa.metrics.image import NOT_COMPUTED
from hogsa.pom.contactnet import ContactNet, ContactNetConfig, save_contactnet
from hogsa.pom.generate import GeneratedPoses
from hogsa.report.hogs import GroupResult, hogs_summary, spread
from hogsa.report.outputs import StageClock
from hogsa.report.pom import shown_samples, write_plausibility_table


def _scores(psnr: float, annotated_psnr: float) -> dict:
    held_out = {"psnr": psnr, "ssim": 0.5, "lpips": NOT_COMPUTED, "images": 3}
    annotated = {"psnr": annotated_psnr, "ssim": 0.25, "lpips": NOT_COMPUTED, "images": 3}
    return {"corrected_poses": {"held_out": held_out}, "annotated_poses": {"held_out": annotated},
            "pose_corrections": {"rotation_deg": 0.0, "translation_mm": 0.0}}


def test_hogs_summary_is_the_mean_over_groups_and_passes_not_computed_through():
    results = {group: GroupResult(None, {}, {"hogs": _scores(psnr, psnr - 1), "3dgs": _scores(psnr / 2, 0.0)})
               for group, psnr in (("s01/box", 20.0), ("s02/box", 30.0))}
    summary = hogs_summary(results)
    assert summary["hogs"] == {"psnr": 25.0, "ssim": 0.5, "lpips": NOT_COMPUTED,
                               "psnr_annotated_poses": 24.0, "ssim_annotated_poses": 0.25}
    assert summary["3dgs"]["psnr"] == 12.5
    assert summary["groups"]["s02/box"]["3dgs"] is results["s02/box"].scores["3dgs"]
    assert list(summary) == ["hogs", "3dgs", "groups"]


def test_spread_takes_the_first_the_last_and_evenly_between():
    assert spread(list("abcdefg"), 4) == ["a", "c", "e", "g"]
    assert spread(["a"], 4) == ["a"] * 4
    assert spread([], 4) == []


class _Samples:
    """What the table reads of the optimised grasps: their count and sources."""

    def __init__(self, count: int) -> None:
        self.source = np.array([f"s01/box_grab_01:{k}" for k in range(count)])

    def __len__(self) -> int:
        return len(self.source)


def _poses(passes: list[bool]) -> GeneratedPoses:
    count = len(passes)
    before = {"depth_mm": np.array([1.23456, 0.0, 2.5][:count]), "passes": np.zeros(count, dtype=bool)}
    after = {"depth_mm": np.array([0.5, 0.0004, 1.0][:count]), "passes": np.array(passes)}
    return GeneratedPoses(None, _Samples(count), before, after, {}, 0.0)


def test_plausibility_table_has_a_row_per_sample_flags_as_digits_numbers_to_three_decimals(tmp_path):
    path = tmp_path / "plausibility.csv"
    write_plausibility_table(_poses([True, False]), path)
    assert path.read_text() == ("sample,before_depth_mm,before_passes,after_depth_mm,after_passes\n"
                                "s01/box_grab_01:0,1.235,0,0.500,1\n"
                                "s01/box_grab_01:1,0.000,0,0.000,0\n")
    assert not list(tmp_path.glob(".*"))  # written atomically: no temporary left


def test_shown_samples_are_spread_over_the_passing_ones_else_over_all():
    assert shown_samples(_poses([True, False, True]), 2) == [0, 2]
    assert shown_samples(_poses([False, False, False]), 2) == [0, 1]


def test_stage_clock_writes_the_stage_and_its_parts_in_seconds(tmp_path):
    clock = StageClock()
    with clock.part("train hogs"):
        pass
    clock.parts["optimise"] = 12.34
    assert clock.write(tmp_path / "timings.json") is None  # a notebook's last line shows no clock
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert set(timings) == {"stage_seconds", "train hogs_seconds", "optimise_seconds"}
    assert timings["optimise_seconds"] == 12.3 and 0 <= timings["stage_seconds"] < 5


def test_report_settings_are_not_part_of_what_a_checkpoint_must_match(tmp_path):
    params = load_params(ROOT / "params.yaml")
    cfg = section(params, "hogs", HOGSConfig)
    other = dataclasses.replace(cfg, report=dataclasses.replace(cfg.report, dpi=cfg.report.dpi + 1))
    assert run_identity(cfg, "hogs", "s01/box", 0, {}) == run_identity(other, "hogs", "s01/box", 0, {})
    assert run_identity(cfg, "hogs", "s01/box", 0, {}) != run_identity(
        dataclasses.replace(cfg, crop=cfg.crop + 1), "hogs", "s01/box", 0, {})

    net_cfg = section(params, "contactnet", ContactNetConfig)
    save_contactnet(ContactNet(8), torch.arange(4), net_cfg, tmp_path / "net.safetensors")
    with safe_open(str(tmp_path / "net.safetensors"), framework="pt") as f:
        stored = json.loads(f.metadata()["config"])
    assert "report" not in stored and stored["epochs"] == net_cfg.epochs
