"""What every stage writes beside its results: its figures (saved, then closed) and its clock.

A stage's figures are closed once saved, so that a command-line run holds no figure open and a
notebook shows each one once, where it displays the returned figure.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from hogsa.io import save_figure, write_json


def save_and_close(figure: Figure, path: str | Path, dpi: int | None = None) -> Figure:
    """Save ``figure`` as PNG (``hogsa.io.save_figure``; at ``dpi``, None: at the figure's own) and close it."""
    save_figure(figure, path, dpi=dpi)
    plt.close(figure)
    return figure


class StageClock:
    """Seconds since a stage started (at construction) and of its named parts, for reports/timings."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.parts: dict[str, float] = {}

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as part ``name``."""
        tic = time.perf_counter()
        yield
        self.parts[name] = time.perf_counter() - tic

    def write(self, path: str | Path) -> None:
        """Write ``{"stage_seconds": ..., "<part>_seconds": ...}`` (to 0.1 s) to ``path``. Returns nothing, so
        that a notebook ending with it shows no clock (the executed notebook depends on the results alone)."""
        timings = {"stage_seconds": round(time.perf_counter() - self.start, 1)}
        timings |= {f"{name}_seconds": round(seconds, 1) for name, seconds in self.parts.items()}
        write_json(path, timings)
