"""The study report's tables, realism gap, times and README section (hogsa.report.study), the training
curves for dvc plots (hogsa.report.curves) and the report's pictures (hogsa.report.showcase)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from hogsa.report.baselines import TABLE1_METRICS, TABLE2_METRICS
from hogsa.report.curves import read_curve, thinned, write_curves
from hogsa.report.showcase import write_gif
from hogsa.report.study import (
    RESULTS_BEGIN,
    RESULTS_END,
    TABLE1_COLUMNS,
    TABLE2_COLUMNS,
    StudyNumbers,
    mean_std,
    metric_table,
    paper_numbers,
    read_numbers,
    realism_gap,
    replace_results,
    report_html,
    results_section,
    stage_minutes,
)


def cell(seeds: list[float]) -> dict:
    return {"mean": float(np.mean(seeds)), "std": float(np.std(seeds, ddof=1)), "seeds": seeds}


def table1_of(values: dict[str, dict[str, list[float]]]) -> dict:
    """A Table-1 dict: every metric of TABLE1_METRICS, the given ones per train set, the rest constant."""
    return {name: {m: cell(per_metric.get(m, [1.0, 1.0])) for m in TABLE1_METRICS}
            for name, per_metric in values.items()}


def test_the_columns_are_the_tables_metrics_and_the_paper_file_has_each_of_them():
    assert len(TABLE1_COLUMNS) == len(TABLE1_METRICS) and {c[0] for c in TABLE1_COLUMNS} == set(TABLE1_METRICS)
    assert {c[0] for c in TABLE2_COLUMNS} == set(TABLE2_METRICS)
    paper = paper_numbers()
    for table, metrics in (("table1", TABLE1_METRICS), ("table4", TABLE1_METRICS), ("table2", TABLE2_METRICS)):
        for rows in paper[table].values():
            for row in rows.values():
                assert set(metrics) <= set(row), (table, row["label"])
    # the paper prints its full model twice, in Tables 1 and 4
    assert paper["table4"]["ARCTIC"]["full"] | {"label": ""} == paper["table1"]["ARCTIC"]["full"] | {"label": ""}
    assert paper["table1"]["ARCTIC"]["full"]["mpjpe"] == 20.96 and paper["table1"]["H2O"]["full"]["aae"] is None


def test_a_table_prints_each_train_sets_mean_and_sample_std_then_the_papers_rows():
    ours = table1_of({"original": {"mpjpe": [110.0, 112.0, 111.5]}, "full": {"mpjpe": [100.0, 104.0, 101.0]}})
    text = metric_table(ours, paper_numbers()["table1"], TABLE1_COLUMNS, "hogsa, embedded")
    lines = text.splitlines()
    assert len(lines) == 2 + 2 + 6  # header, rule, hogsa's 2 rows, the paper's 6
    mpjpe = [c[0] for c in TABLE1_COLUMNS].index("mpjpe") + 2
    original = [c.strip() for c in lines[2].strip("|").split("|")]
    assert original[mpjpe] == f"{np.mean([110, 112, 111.5]):.1f} ± {np.std([110, 112, 111.5], ddof=1):.1f}"
    assert original[mpjpe] == "111.2 ± 1.0"
    paper_full = [c.strip() for c in lines[2 + 2 + 3].strip("|").split("|")]
    assert paper_full[1] == "Arctic+HOGSA" and paper_full[mpjpe] == "20.96"
    h2o = [c.strip() for c in lines[-1].strip("|").split("|")]
    assert h2o[[c[0] for c in TABLE1_COLUMNS].index("aae") + 2] == "–"  # the paper has no AAE on H2O
    assert mean_std({"mean": math.nan, "std": math.nan, "seeds": []}, 1) == "–"


def test_realism_gap_by_hand():
    table = table1_of({
        "original": {"mpjpe": [10.0, 12.0], "success_rate": [1.0, 1.0], "cdev": [5.0, 5.0]},
        "full": {"mpjpe": [8.0, 11.0], "success_rate": [2.0, 2.0], "cdev": [4.0, 4.0]},
        "oracle": {"mpjpe": [6.0, 10.0], "success_rate": [3.0, 5.0], "cdev": [6.0, 5.0]},
    })
    gap = realism_gap(table, ("full",))
    # MPJPE, lower is better: full gains 2 and 1, the oracle 4 and 2
    assert gap["mpjpe"]["full"]["seeds"] == [2.0, 1.0] and gap["mpjpe"]["oracle"]["mean"] == 3.0
    assert gap["mpjpe"]["full_ratio"] == pytest.approx(0.5)
    assert gap["mpjpe"]["full"]["std"] == pytest.approx(np.std([2.0, 1.0], ddof=1))
    # the success rate, higher is better: full gains 1 and 1, the oracle 2 and 4
    assert gap["success_rate"]["full_ratio"] == pytest.approx(1 / 3)
    # an oracle that does not help leaves the ratio undefined
    assert gap["cdev"]["oracle"]["mean"] == -0.5 and gap["cdev"]["full_ratio"] is None


def test_stage_minutes_sum_the_training_matrix_runs():
    timings = {"data": {"stage_seconds": 120.0}, "hogs": {"stage_seconds": 600.0, "train hogs_seconds": 500.0},
               "train_baseline/a": {"train_seconds": 30.0, "eval_seconds": 30.0},
               "train_baseline/b": {"train_seconds": 50.0, "eval_seconds": 10.0}}
    assert stage_minutes(timings) == {"data": 2.0, "hogs": 10.0, "train_baseline": 2.0}


def test_results_section_replaces_only_the_text_between_the_markers():
    numbers = StudyNumbers({"table1": table1_of({"original": {}, "full": {}})}, {}, paper_numbers())
    section = results_section(numbers)
    assert section.startswith(RESULTS_BEGIN) and section.endswith(RESULTS_END)
    readme = f"# title\n\nbefore\n\n{RESULTS_BEGIN}\nold table\n{RESULTS_END}\n\nafter\n"
    new = replace_results(readme, section)
    assert new.startswith("# title\n\nbefore\n\n") and new.endswith("\n\nafter\n") and "old table" not in new
    assert replace_results(new, section) == new
    with pytest.raises(ValueError, match="NOTES.md: no Results section"):
        replace_results("no markers", section, "NOTES.md")


def test_readme_results_are_what_the_report_stage_writes_from_the_committed_metrics():
    metrics = ROOT / "reports" / "metrics"
    if not (metrics / "table1.json").is_file():
        pytest.skip("no committed Table 1: the study has not run the baselines")
    numbers = read_numbers(metrics, ROOT / "reports" / "timings")
    readme = (ROOT / "README.md").read_text()
    begin, end = readme.index(RESULTS_BEGIN), readme.index(RESULTS_END) + len(RESULTS_END)
    assert readme[begin:end] == results_section(numbers), "README's Results differ from reports/metrics: rerun the report"


def test_report_html_has_the_tables_and_images():
    html = report_html("# t\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![orbit](report/orbit.gif)\n")
    assert "<table>" in html and "<td>1</td>" in html and '<img src="report/orbit.gif" alt="orbit"' in html
    assert html.startswith("<!DOCTYPE html>") and html.endswith("</html>\n")


def dvclive_curve(folder: Path, metric: str, rows: list[tuple[int, float]]) -> Path:
    path = folder / "plots" / "metrics" / f"{metric}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    name = metric.rsplit("/", 1)[-1]
    path.write_text(f"timestamp\tstep\t{name}\n" + "".join(f"{1700000000000 + s}\t{s}\t{v}\n" for s, v in rows))
    return path


def test_curves_keep_step_and_value_without_timestamps_every_nth_and_the_last(tmp_path):
    rows = [(s, 1.0 / (s + 1)) for s in range(25)]
    live = tmp_path / "run" / "live"
    dvclive_curve(live, "train/loss", rows)
    assert read_curve(live, "train/loss") == rows
    assert [s for s, _ in thinned(rows, 10)] == [0, 10, 20, 24]
    out = tmp_path / "curves"
    out.mkdir()
    (out / "stale.csv").write_text("step,loss\n")
    written = write_curves(out, {"a": live}, "train/loss", every=10)
    assert written == [out / "a.csv"] and sorted(p.name for p in out.iterdir()) == ["a.csv"]
    text = (out / "a.csv").read_text()
    assert text.splitlines()[0] == "step,loss" and text.splitlines()[-1] == f"24,{1 / 25:.6g}"
    assert "1700000000" not in text
    dvclive_curve(tmp_path / "bad", "train/loss", rows).write_text("timestamp\tstep\tvalue\n1\t0\t1.0\n")
    with pytest.raises(ValueError, match="expected columns 'step' and 'loss'"):
        read_curve(tmp_path / "bad", "train/loss")
    with pytest.raises(FileNotFoundError, match="no dvclive curve 'train/psnr'"):
        read_curve(live, "train/psnr")


def test_orbit_gif_round_trips_its_frames_and_loops(tmp_path):
    import imageio.v3 as iio
    from PIL import Image

    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, (8, 3), dtype=np.uint8)  # few colours: the GIF's palette keeps them exactly
    frames = palette[rng.integers(0, 8, (3, 16, 16))]
    write_gif(tmp_path / "o.gif", frames, 0.1)
    np.testing.assert_array_equal(iio.imread(tmp_path / "o.gif", index=None)[..., :3], frames)
    with Image.open(tmp_path / "o.gif") as gif:
        assert gif.n_frames == 3 and gif.info["loop"] == 0 and gif.info["duration"] == 100
    assert [p.name for p in tmp_path.iterdir()] == ["o.gif"]


def test_read_numbers_reads_the_matrix_timings_by_run(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "t" / "train_baseline").mkdir(parents=True)
    (tmp_path / "m" / "pom.json").write_text(json.dumps({"kept": 3}))
    (tmp_path / "t" / "train_baseline" / "x_seed0.json").write_text(json.dumps({"train_seconds": 1.0}))
    numbers = read_numbers(tmp_path / "m", tmp_path / "t")
    assert numbers.metrics == {"pom": {"kept": 3}}
    assert numbers.timings == {"train_baseline/x_seed0": {"train_seconds": 1.0}}


def test_comparisons_count_the_metrics_a_train_set_wins_by_its_mean():
    from hogsa.report.study import better_metrics, comparisons

    table = table1_of({"original": {"mpjpe": [10.0, 12.0], "success_rate": [5.0, 5.0]},
                       "full": {"mpjpe": [9.0, 12.0], "success_rate": [4.0, 4.0]}})
    assert better_metrics(table, "full", "original") == ["mpjpe"]  # the other metrics tie
    line = comparisons(table, "full", ("original", "oracle"))
    assert line.startswith("- `full` beats `original` on 1 of 9 metrics") and "oracle" not in line
    assert "success_rate" in line


def test_the_image_blind_reference_predicts_the_annotated_training_mean_per_object():
    from hogsa.report.reference import mean_prediction

    def hand(v):
        return np.full((21, 3), v)

    train = {"valid_r": [True, True, False], "valid_l": [True, False, True],
             "joints_r": [hand(1.0), hand(3.0), hand(100.0)], "verts_r": [hand(0.0)] * 3,
             "joints_l": [hand(2.0), hand(100.0), hand(4.0)], "verts_l": [hand(0.0)] * 3,
             "obj_verts": [np.full((5, 3), 1.0), np.full((5, 3), 3.0), np.full((7, 3), 9.0)],
             "obj_angle": [0.2, 0.4, 1.0]}
    pred = mean_prediction(train, np.array(["box", "box", "mug"]), np.array(["mug", "box"]))
    np.testing.assert_array_equal(pred["joints_r"][0], hand(2.0))  # crops 0 and 1; crop 2's right hand is not annotated
    np.testing.assert_array_equal(pred["joints_l"][1], hand(3.0))  # crops 0 and 2
    np.testing.assert_array_equal(pred["obj_verts"][0], np.full((7, 3), 9.0))
    np.testing.assert_array_equal(pred["obj_verts"][1], np.full((5, 3), 2.0))
    assert pred["obj_angle"] == [1.0, pytest.approx(0.3)]
    with pytest.raises(ValueError, match="object 'bottle' of the test crops has no training crop"):
        mean_prediction(train, np.array(["box", "box", "mug"]), np.array(["bottle"]))


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_table3_and_pom_cells_are_their_files_values():
    from hogsa.report.study import pom_table, table3

    kinds = {"hogs": (29.1629, 0.93959, "not computed"), "hogs_srm": (29.1059, 0.90772, 0.01234)}
    srm = {kind: {"images": 384, "psnr": p, "ssim": q, "lpips": r} for kind, (p, q, r) in kinds.items()}
    lines = table3(StudyNumbers({"srm": srm}, {}, paper_numbers(), "arctic")).splitlines()
    assert cells(lines[2]) == ["hogsa, arctic, all groups", "HOGS w/o SRM", "384", "29.16", "0.940", "not computed"]
    assert cells(lines[3])[3:] == ["29.11", "0.908", "0.0123"]
    assert cells(lines[4]) == ["paper, ARCTIC", "w/o SRM", "", "35.07", "0.988", "0.0194"]
    pom = {"kept": 169, "samples": 182, "pass_rate_before": 0.148, "pass_rate": 0.929, "contact_rate_before": 0.739,
           "contact_rate_after": 0.989, "penetration_mm_before": 7.634, "penetration_mm_after": 0.640,
           "volume_cm3_before": 9.97, "volume_cm3_after": 0.209, "coverage_mm_train": 72.28,
           "coverage_mm_train_plus_pom": 58.99}
    text = pom_table(pom)
    assert cells(text.splitlines()[4]) == ["penetration depth (mm)", "7.63", "0.64"]
    assert "169 of 182 samples kept" in text and "72.3 mm" in text and "59.0 mm" in text
