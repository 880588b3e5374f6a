"""Training curves gathered for ``dvc plots``: each run's dvclive curve (inside the DVC-cached model
folders) copied as a small CSV under ``reports/curves/<family>/<run>.csv``, which git tracks, so that
``dvc plots show`` and ``dvc plots diff <rev> <rev>`` draw every run of every commit without its cache.

A dvclive curve is ``<live>/plots/metrics/<metric>.tsv`` with columns timestamp, step and the metric's
last name; the copy keeps ``step`` and the value (no timestamp: the same run gives the same bytes),
every ``every``-th logged step and the last.
"""

from __future__ import annotations

import csv
from pathlib import Path

from hogsa.io import atomic_write_text


def read_curve(live_dir: str | Path, metric: str) -> list[tuple[int, float]]:
    """(step, value) rows of dvclive curve ``metric`` ("train/loss") of the run logged in ``live_dir``."""
    path = Path(live_dir) / "plots" / "metrics" / f"{metric}.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no dvclive curve {metric!r} in {live_dir}")
    name = metric.rsplit("/", 1)[-1]
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if rows and ("step" not in rows[0] or name not in rows[0]):
        raise ValueError(f"{path}: expected columns 'step' and {name!r}, got {list(rows[0])}")
    return [(int(r["step"]), float(r[name])) for r in rows]


def thinned(rows: list[tuple[int, float]], every: int) -> list[tuple[int, float]]:
    """Every ``every``-th row and the last one."""
    return [row for k, row in enumerate(rows) if k % every == 0 or k == len(rows) - 1]


def curve_csv(rows: list[tuple[int, float]], column: str) -> str:
    return "step," + column + "\n" + "".join(f"{step},{value:.6g}\n" for step, value in rows)


def write_curves(out_dir: str | Path, live_dirs: dict[str, Path], metric: str, every: int = 1) -> list[Path]:
    """``out_dir/<run>.csv`` (columns step and the metric's last name) of each ``{run: live folder}``;
    a folder's stale files are removed first. Returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.csv"):
        stale.unlink()
    column = metric.rsplit("/", 1)[-1]
    written = []
    for run, live in sorted(live_dirs.items()):
        path = out_dir / f"{run}.csv"
        atomic_write_text(path, curve_csv(thinned(read_curve(live, metric), every), column))
        written.append(path)
    return written
