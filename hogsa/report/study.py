"""The study report's text: Tables 1-4 of hogsa beside the paper's, the realism gap, each stage's
time, the report as Markdown and HTML, and the README's Results section.

Pure functions of the parsed metric and timing files (``StudyNumbers``), so that a test can check
every cell against the files it came from; the report stage (``hogsa.report.report``) draws the
figures and writes the files.

The paper's numbers come from ``paper_numbers.yaml`` beside this module, never from code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from hogsa.report.baselines import HIGHER_IS_BETTER, TABLE1_METRICS, gains, spread

PAPER_NUMBERS = "paper_numbers.yaml"
RESULTS_BEGIN = "<!-- results: written by the report stage (hogsa.report.study.results_section); do not edit -->"
RESULTS_END = "<!-- /results -->"

# Table 1's columns in the paper's order: metric key, heading, unit
TABLE1_COLUMNS = (("cdev", "CDev ↓", "mm"), ("mrrpe_rl", "MRRPE r→l ↓", "mm"), ("mrrpe_ro", "MRRPE r→o ↓", "mm"),
                  ("mdev", "MDev ↓", "mm"), ("acc_hand", "ACC h ↓", "m/s²"), ("acc_object", "ACC o ↓", "m/s²"),
                  ("mpjpe", "MPJPE ↓", "mm"), ("aae", "AAE ↓", "°"), ("success_rate", "SR ↑", "%"))
TABLE2_COLUMNS = (("field_error_ho", "field error h→o ↓", "mm"), ("field_error_oh", "field error o→h ↓", "mm"),
                  ("acc_field_ho", "ACC h→o ↓", "m/s²"), ("acc_field_oh", "ACC o→h ↓", "m/s²"))
TABLE3_COLUMNS = (("psnr", "PSNR ↑", "dB"), ("ssim", "SSIM ↑", ""), ("lpips", "LPIPS ↓", ""))

TRAIN_SET_LABELS = {"original": "original crops", "full": "+ HOGSA (full)", "no_srm": "+ HOGSA w/o SRM",
                    "no_pom": "+ HOGSA w/o POM", "3dgs": "+ 3DGS ablation", "oracle": "+ oracle renders"}
RENDER_LABELS = {"hogs": "HOGS w/o SRM", "hogs_srm": "HOGS w SRM", "3dgs": "3DGS w/o SRM",
                 "3dgs_srm": "3DGS w SRM"}
GAP_SETS = ("full", "3dgs", "no_srm")  # compared with the oracle in the realism gap
TABLE3_PLACES = {"psnr": 2, "ssim": 3, "lpips": 4}  # decimals of Table 3's cells, hogsa's and the paper's


@dataclass(frozen=True)
class StudyNumbers:
    """The parsed metric and timing files a report is made of (``read_numbers``)."""

    metrics: dict[str, dict]  # reports/metrics/<name>.json by name: table1, table2, table4, srm, hogs, augment, pom...
    timings: dict[str, dict]  # reports/timings/<stage>.json by stage; the matrix's as "train_baseline/<run>"
    paper: dict  # paper_numbers.yaml
    source: str = "embedded"  # params.yaml data.source: the dataset hogsa's rows are of


def paper_numbers() -> dict:
    """The paper's Tables 1-4 (``paper_numbers.yaml``)."""
    return yaml.safe_load(resources.files("hogsa.report").joinpath(PAPER_NUMBERS).read_text())


def read_numbers(metrics_dir: str | Path, timings_dir: str | Path, source: str = "embedded") -> StudyNumbers:
    """Every ``*.json`` of ``metrics_dir`` and ``timings_dir`` (recursively: the training matrix's runs)."""
    def read(folder: Path) -> dict[str, dict]:
        return {str(p.relative_to(folder).with_suffix("")): json.loads(p.read_text())
                for p in sorted(folder.rglob("*.json"))}
    return StudyNumbers(read(Path(metrics_dir)), read(Path(timings_dir)), paper_numbers(), source)


# --------------------------------------------------------------------------- #
# Cells and tables
# --------------------------------------------------------------------------- #
def hogsa_label(numbers: StudyNumbers) -> str:
    """The label of hogsa's rows: "hogsa, <dataset>"."""
    return f"hogsa, {numbers.source}"


def decimals(unit: str) -> int:
    """Decimals of a cell in ``unit`` (unitless: SSIM; LPIPS has ``TABLE3_PLACES``)."""
    return {"": 3, "m/s²": 2, "dB": 2}.get(unit, 1)


def number(value: float | str | None, places: int) -> str:
    """A number to ``places`` decimals; "–" for None or NaN; text (LPIPS "not computed") as it is."""
    if isinstance(value, str):
        return value
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.{places}f}"


def mean_std(cell: dict, places: int) -> str:
    """"m ± s" of a ``{"mean", "std", "seeds"}`` table cell."""
    if math.isnan(cell["mean"]):
        return "–"
    return f"{cell['mean']:.{places}f} ± {cell['std']:.{places}f}"


def in_study_order(by_train_set: dict) -> list[tuple[str, dict]]:
    """The (train set, row) items in ``TRAIN_SET_LABELS``'s order (the JSON files sort their keys), others after."""
    order = list(TRAIN_SET_LABELS)
    return sorted(by_train_set.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))


def seeds_phrase(table: dict) -> str:
    """"3 seeds": how many per-seed values a table's cells hold."""
    seeds = len(next(iter(table.values()))["mpjpe"]["seeds"])
    return f"{seeds} seed" + ("s" if seeds != 1 else "")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table of text cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metric_table(ours: dict, paper: dict, columns: tuple, ours_label: str) -> str:
    """hogsa's rows (mean ± std over seeds, every train set of ``ours``) above the paper's rows (every
    dataset of ``paper``), one column per metric of ``columns``."""
    header = ["source", "train set"] + [f"{title} ({unit})" if unit else title for _, title, unit in columns]
    rows = [[ours_label, TRAIN_SET_LABELS.get(name, name)] + [mean_std(row[key], decimals(unit))
                                                             for key, _, unit in columns]
            for name, row in in_study_order(ours)]
    rows += [[f"paper, {dataset}", row["label"]] + [number(row.get(key), 2) for key, _, _ in columns]
             for dataset, by_set in paper.items() for row in by_set.values()]
    return markdown_table(header, rows)


def table1(numbers: StudyNumbers) -> str:
    """Table 1 with, when the report computed it, the image-blind reference (``mean_prediction.json``)
    as a last hogsa row."""
    text = metric_table(numbers.metrics["table1"], numbers.paper["table1"], TABLE1_COLUMNS, hogsa_label(numbers))
    reference = numbers.metrics.get("mean_prediction")
    if reference is None:
        return text
    lines = text.splitlines()
    row = [hogsa_label(numbers), "training mean, no image"] + [number(reference[key], decimals(unit))
                                                            for key, _, unit in TABLE1_COLUMNS]
    ours = 2 + len(numbers.metrics["table1"])
    return "\n".join(lines[:ours] + ["| " + " | ".join(row) + " |"] + lines[ours:])


def table2(numbers: StudyNumbers) -> str:
    """InterField-SF's field errors and accelerations, hogsa's beside the paper's."""
    return metric_table(numbers.metrics["table2"], numbers.paper["table2"], TABLE2_COLUMNS, hogsa_label(numbers))


def table4(numbers: StudyNumbers) -> str:
    """The ablation of HOGSA's parts (ArcticNet-SF), hogsa's beside the paper's."""
    return metric_table(numbers.metrics["table4"], numbers.paper["table4"], TABLE1_COLUMNS, hogsa_label(numbers))


def better_metrics(table: dict, ours: str, other: str) -> list[str]:
    """The metrics of ``table`` on which ``ours``'s mean over seeds is better than ``other``'s (lower, or
    higher for the success rate); NaN means compare as not better."""
    improvement = gains({ours: table[ours], other: table[other]}, against=other)[ours]
    return [m for m in table[ours] if improvement.get(m, 0.0) > 0]


def comparisons(table: dict, ours: str, others: tuple[str, ...]) -> str:
    """One line per train set of ``others`` present: on how many metrics ``ours`` is better, and which not."""
    lines = []
    for other in others:
        if ours in table and other in table and other != ours:
            better = better_metrics(table, ours, other)
            worse = [m for m in table[ours] if m not in better]
            lines.append(f"- `{ours}` beats `{other}` on {len(better)} of {len(table[ours])} metrics (means over "
                         "seeds)" + (f"; not on {', '.join(worse)}" if worse else ""))
    return "\n".join(lines)


def table3(numbers: StudyNumbers) -> str:
    """The renders without and with the SRM on every group's held-out crops (srm.json), hogsa's (all
    groups, then the groups no setting was tuned on) above the paper's."""
    srm = numbers.metrics["srm"]
    header = ["source", "renders", "held-out crops"] + [f"{t} ({u})" if u else t for _, t, u in TABLE3_COLUMNS]
    rows = []
    for scope, values in (("all groups", srm), ("untuned groups", srm.get("untuned_groups"))):
        if not values:
            continue
        for kind in RENDER_LABELS:
            if kind in values:
                rows.append([f"{hogsa_label(numbers)}, {scope}", RENDER_LABELS[kind], str(values[kind]["images"])]
                            + [number(values[kind][key], TABLE3_PLACES[key]) for key, _, _ in TABLE3_COLUMNS])
    for dataset, by_kind in numbers.paper["table3"].items():
        for row in by_kind.values():
            rows.append([f"paper, {dataset}", row["label"], ""] + [number(row[key], TABLE3_PLACES[key])
                                                                   for key, _, _ in TABLE3_COLUMNS])
    return markdown_table(header, rows)


def groups_table(numbers: StudyNumbers) -> str:
    """Held-out PSNR and SSIM per training group: HOGS against the 3DGS ablation (hogs.json, at the
    corrected poses), and each with the SRM (srm.json)."""
    hogs, srm = numbers.metrics["hogs"]["groups"], numbers.metrics["srm"]["groups"]
    header = ["group", "HOGS PSNR (dB)", "3DGS PSNR (dB)", "HOGS − 3DGS (dB)", "HOGS SSIM", "3DGS SSIM",
              "HOGS+SRM PSNR (dB)", "3DGS+SRM PSNR (dB)"]
    rows = []
    for group, kinds in hogs.items():
        h, g = (kinds[k]["corrected_poses"]["held_out"] for k in ("hogs", "3dgs"))
        rows.append([group, number(h["psnr"], 2), number(g["psnr"], 2), f"{h['psnr'] - g['psnr']:+.2f}",
                     number(h["ssim"], 3), number(g["ssim"], 3), number(srm[group]["hogs_srm"]["psnr"], 2),
                     number(srm[group]["3dgs_srm"]["psnr"], 2)])
    return markdown_table(header, rows)


# --------------------------------------------------------------------------- #
# The realism gap
# --------------------------------------------------------------------------- #
def seed_gains(table: dict, train_set: str, metric: str, against: str = "original") -> np.ndarray:
    """[seeds] improvement of ``train_set`` over ``against`` on ``metric``, seed k against seed k
    (positive = better: lower, or higher for the success rate)."""
    sign = 1.0 if metric in HIGHER_IS_BETTER else -1.0
    ours = np.asarray(table[train_set][metric]["seeds"], dtype=np.float64)
    base = np.asarray(table[against][metric]["seeds"], dtype=np.float64)
    return sign * (ours - base)


def realism_gap(table: dict, train_sets: tuple[str, ...] = GAP_SETS) -> dict:
    """Per Table-1 metric: the gain of the oracle and of each of ``train_sets`` over the original crops
    ({"mean", "std" (sample, over seeds), "seeds"}), and each one's ratio to the oracle's mean gain: the
    share of a perfect renderer's benefit it delivers (None when the oracle gains nothing, ≤ 0). Empty
    without an oracle run."""
    if "oracle" not in table or "original" not in table:
        return {}
    out = {}
    for metric in TABLE1_METRICS:
        oracle = seed_gains(table, "oracle", metric)
        row = {"oracle": spread(oracle)}
        for name in train_sets:
            if name in table:
                gains = seed_gains(table, name, metric)
                row[name] = spread(gains)
                row[f"{name}_ratio"] = float(gains.mean() / oracle.mean()) if oracle.mean() > 0 else None
        out[metric] = row
    return out


def realism_gap_table(gap: dict) -> str:
    """``realism_gap``'s gains and ratios, one row per Table-1 metric."""
    if not gap:
        return "No realism gap: it needs the `original` and `oracle` train sets in `baselines.train_sets`."
    names = [n for n in GAP_SETS if n in next(iter(gap.values()))]
    header = ["metric", "oracle gain"] + [h for n in names for h in (f"{n} gain", f"{n} / oracle")]
    rows = []
    for key, title, unit in TABLE1_COLUMNS:
        row = gap[key]
        places = decimals(unit)
        cells = [f"{title.rstrip(' ↓↑')} ({unit})", mean_std(row["oracle"], places)]
        for name in names:
            cells += [mean_std(row[name], places), number(row[f"{name}_ratio"], 2)]
        rows.append(cells)
    return markdown_table(header, rows)


# --------------------------------------------------------------------------- #
# Times and the augmentation's figures
# --------------------------------------------------------------------------- #
def stage_minutes(timings: dict[str, dict]) -> dict[str, float]:
    """Minutes of each stage (its ``stage_seconds``), in the order the timings were read; the training
    matrix as one entry, ``train_baseline``: the sum of its runs' training and evaluation seconds."""
    minutes = {name: t["stage_seconds"] / 60 for name, t in timings.items() if "stage_seconds" in t}
    runs = [t for name, t in timings.items() if name.startswith("train_baseline/")]
    if runs:
        minutes["train_baseline"] = sum(t["train_seconds"] + t["eval_seconds"] for t in runs) / 60
    return minutes


def times_table(timings: dict[str, dict], order: list[str]) -> str:
    """Each stage's minutes, in ``order`` (dvc.yaml's), and their sum."""
    minutes = stage_minutes(timings)
    rows = [[name, f"{minutes[name]:.1f}"] for name in order if name in minutes]
    rows.append(["**total**", f"**{sum(minutes[name] for name in order if name in minutes):.1f}**"])
    return markdown_table(["stage", "minutes"], rows)


def augmentation_table(numbers: StudyNumbers) -> str:
    """Per variant: images written, dropped, the expansion ratio (augmented / original training crops)
    and the mask agreement of the labels; the seconds per generated image from the stage's timings."""
    augment = numbers.metrics["augment"]
    header = ["variant", "images", "dropped", "expansion", "joints on hand mask", "object vertices on object mask"]
    rows = []
    for name in TRAIN_SET_LABELS:
        if name in augment:
            v = augment[name]
            rows.append([name, str(v["written"]), str(sum(v["dropped"].values())), f"{v['expansion']:.3f}",
                         f"{v['mask_agreement']['joints_on_hand_mask']:.3f}",
                         f"{v['mask_agreement']['object_vertices_on_object_mask']:.3f}"])
    return markdown_table(header, rows)


# --------------------------------------------------------------------------- #
# The README's Results section
# --------------------------------------------------------------------------- #
def results_section(numbers: StudyNumbers, report_link: str = "reports/report.md") -> str:
    """The README's Results section, markers included: Table 1 on the embedded data (mean ± std over
    seeds) and a link to the report."""
    header = ["train set"] + [f"{title} ({unit})" for _, title, unit in TABLE1_COLUMNS]
    rows = [[TRAIN_SET_LABELS.get(name, name)] + [mean_std(row[key], decimals(unit)) for key, _, unit in TABLE1_COLUMNS]
            for name, row in in_study_order(numbers.metrics["table1"])]
    return "\n".join([
        RESULTS_BEGIN,
        f"ArcticNet-SF on the {numbers.source} test split (mean ± sample std over "
        f"{seeds_phrase(numbers.metrics['table1'])}), trained on the original "
        "crops alone and with each augmentation; the paper's numbers, the other tables, the realism gap and the "
        f"figures are in [the study report]({report_link}).",
        "",
        markdown_table(header, rows),
        RESULTS_END,
    ])


def replace_results(readme: str, section: str, where: str = "README.md") -> str:
    """``readme`` with the text from ``RESULTS_BEGIN`` to ``RESULTS_END`` replaced by ``section``."""
    begin, end = readme.find(RESULTS_BEGIN), readme.find(RESULTS_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{where}: no Results section between the markers {RESULTS_BEGIN!r} and {RESULTS_END!r}")
    return readme[:begin] + section + readme[end + len(RESULTS_END):]


def augmentation_comparison(seconds_per_image: float | None, paper: dict) -> str:
    """A sentence: hogsa's seconds per augmented image beside the paper's expansion and speed."""
    ours = (f"hogsa generated {seconds_per_image:.3f} s per augmented image (every variant, the augment stage's "
            "timings, on the machine that ran the study)." if seconds_per_image is not None
            else "The augment stage recorded no time per image.")
    theirs = "; ".join(f"{name}: {v['hogs_models']} HOGS models, {v['augmented_images']:,} images added to "
                       f"{v['original_images']:,} (expansion {v['augmented_images'] / v['original_images']:.2f})"
                       for name, v in paper["datasets"].items())
    return f"{ours} The paper: {paper['seconds_per_image']} s per image on a GPU; {theirs}."


def pom_table(pom: dict) -> str:
    """The plausibility of the generated grasps before and after POM's optimisation (pom.json), and what
    was kept."""
    rows = [["pass rate", f"{pom['pass_rate_before']:.3f}", f"{pom['pass_rate']:.3f}"],
            ["contact rate", f"{pom['contact_rate_before']:.3f}", f"{pom['contact_rate_after']:.3f}"],
            ["penetration depth (mm)", f"{pom['penetration_mm_before']:.2f}", f"{pom['penetration_mm_after']:.2f}"],
            ["hand-in-object volume (cm³)", f"{pom['volume_cm3_before']:.2f}", f"{pom['volume_cm3_after']:.2f}"]]
    kept = (f"{pom['kept']} of {pom['samples']} samples kept; the test poses' coverage (mean distance to the nearest "
            f"training pose) goes from {pom['coverage_mm_train']:.1f} mm with the training poses alone to "
            f"{pom['coverage_mm_train_plus_pom']:.1f} mm with POM's.")
    return markdown_table(["", "before optimisation", "after"], rows) + "\n\n" + kept


def figure(title: str, path: str) -> str:
    """A Markdown image with its title as a caption."""
    return f"![{title}]({path})\n\n*{title}*"


def report_markdown(numbers: StudyNumbers, figures: dict[str, str], stage_order: list[str]) -> str:
    """reports/report.md: the tables, the realism gap, the figures (``{title: path relative to the
    report}``, in order) and the stages' times."""
    m = numbers.metrics
    augment_timing = numbers.timings.get("augment", {})
    per_image = augment_timing.get("generate_seconds_per_image")
    gap = realism_gap(m["table1"])
    sections = [
        "# hogsa: the study report",
        "Written by the report stage (`dvc repro report`, `notebooks/90_report.ipynb`) from the stages' metric files "
        "(`reports/metrics/`) and timings (`reports/timings/`): every number of hogsa below is read from them. The "
        "paper's numbers come from `hogsa/report/paper_numbers.yaml`; they were measured on ARCTIC and H2O with "
        f"ResNet-50 baselines at 224 px. hogsa's rows are of the `{numbers.source}` dataset with this study's "
        "parameters (the default: hogsa's embedded open data, on a CPU, with a small backbone), so the paper's are "
        "a reference, not the same experiment.",
        f"Baselines: mean ± sample std over {seeds_phrase(m['table1'])}, test split, scored by `hogsa.metrics.arctic`.",
        "## Table 1 · ArcticNet-SF",
        table1(numbers),
        comparisons(m["table1"], "full", ("original",)),
        "## Table 2 · InterField-SF",
        table2(numbers),
        "## Table 3 · The super-resolution module (held-out crops of every training group)",
        table3(numbers),
        "HOGS against the 3DGS ablation, per training group (held-out crops, corrected poses):",
        groups_table(numbers),
        "## Table 4 · Ablation of HOGSA's parts (ArcticNet-SF)",
        table4(numbers),
        comparisons(m["table1"], "full", ("no_srm", "no_pom", "3dgs")),
        "## The realism gap",
        "How much of a perfect renderer's benefit each augmentation delivers. The oracle's samples are the same "
        "grasps and cameras as `full`'s, rendered by the embedded dataset's own renderer (no realism gap). A gain "
        "is the improvement over the original crops alone (positive: better), seed k against seed k, mean ± "
        "sample std over seeds; the ratio is the mean gain over the oracle's mean gain, undefined (–) where the "
        "oracle gains nothing.",
        realism_gap_table(gap),
        "## Augmentation",
        augmentation_table(numbers),
        augmentation_comparison(per_image, numbers.paper["augmentation"]),
        "Plausibility of POM's grasps (GraspTTA's filter):",
        pom_table(m["pom"]),
        "## Figures",
        *[figure(title, path) for title, path in figures.items()],
        "## Time of each stage",
        "Minutes on the machine that ran this study (the training matrix: its runs' training and scoring, summed). "
        "The report stage's own time is in `reports/timings/report.json`.",
        times_table(numbers.timings, stage_order),
    ]
    return "\n\n".join(sections) + "\n"


HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hogsa: the study report</title>
<style>
body {{ font-family: sans-serif; max-width: 76em; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.86em; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: right; }}
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) {{ text-align: left; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
{body}</body>
</html>
"""


def report_html(markdown: str) -> str:
    """The report as one HTML page (markdown-it's CommonMark with tables); images stay relative links."""
    from markdown_it import MarkdownIt

    return HTML_PAGE.format(body=MarkdownIt("commonmark").enable("table").render(markdown))
