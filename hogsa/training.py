"""Resumable, reproducible training, shared by the hogs and srm stages.

- ``batch_indices``: the samples of a step are a function of (seed, step) only, so a resumed run draws
  the batches an uninterrupted one would.
- ``frozen``: a module whose parameters take no gradient for a while (its inputs still do).
- Checkpoints (safetensors): named parameters ``param/<name>``, their Adam state ``adam/<name>/<key>``,
  and string metadata. Part of the metadata is the run's *identity* (settings, seed, data, code): a
  checkpoint is resumed only by the run that wrote it; the rest (the iteration reached, a stage's
  progress flags) is state. Writes are atomic: a checkpoint is whole or absent.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from dvclive import Live
from dvclive.plots import NumpyEncoder
from safetensors import safe_open
from torch import nn
from tqdm.auto import tqdm

from hogsa.io import atomic_write_text, save_safetensors

ITERATION = "iteration"  # metadata key: optimisation steps done


def batch_indices(step: int, n: int, batch: int, seed: int) -> list[int]:
    """The samples of ``step``: ``batch`` distinct indices in [0, n), a function of (seed, step) only."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randperm(n, generator=generator)[: min(batch, n)].tolist()


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """``module``'s trainable parameters take no gradient inside; they are trainable again after."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


@contextlib.contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """``torch.use_deterministic_algorithms`` inside (warning only where an op has no deterministic
    version), the previous setting after; usable as a decorator. On CPU, the backward of indexing
    vertices by faces (``index_put_`` with accumulation) otherwise sums in parallel in a varying order,
    and Adam turns those last-bit differences in near-zero gradients into full steps."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def open_live(folder: str | Path, start: int) -> Live:
    """dvclive curves of a run that starts (or resumes) at step ``start``.

    A fresh run (``start`` 0) clears ``folder``; a resumed one drops the rows at and after ``start``,
    which the killed run logged after its last checkpoint and the resumed run logs again, so the
    curves end up as an uninterrupted run writes them."""
    folder = Path(folder)
    if start == 0:
        shutil.rmtree(folder, ignore_errors=True)
    for tsv in sorted(folder.rglob("*.tsv")):
        header, *rows = tsv.read_text().splitlines(keepends=True)
        width = header.count("\t")
        kept = [row for row in rows if row.endswith("\n") and row.count("\t") == width
                and int(row.split("\t", 1)[0]) < start]
        atomic_write_text(tsv, header + "".join(kept))
    live = AtomicSummaryLive(str(folder), resume=start > 0, dvcyaml=False, save_dvc_exp=False)
    live.step = start
    return live


class AtomicSummaryLive(Live):
    """dvclive's ``Live`` whose summary (``metrics.json``, read back on resume) is replaced atomically:
    a run killed while writing it leaves the previous summary, never an empty or truncated one."""

    def make_summary(self) -> None:
        if self._step is not None:
            self.summary["step"] = self.step
        atomic_write_text(self.metrics_file, json.dumps(self.summary, indent=4, cls=NumpyEncoder) + "\n")


def save_checkpoint(path: str | Path, params: dict[str, nn.Parameter], optimizers: Iterable[torch.optim.Optimizer],
                    metadata: dict[str, str]) -> None:
    """Write ``params`` and the state each holds in any of ``optimizers``, with ``metadata`` (atomic)."""
    states = {}
    for optimizer in optimizers:
        states.update(optimizer.state)
    tensors = {}
    for name, param in params.items():
        tensors[f"param/{name}"] = param.detach().contiguous()
        for key, value in states.get(param, {}).items():
            tensors[f"adam/{name}/{key}"] = value.detach().contiguous()
    save_safetensors(tensors, path, metadata)


def checkpoint_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of the checkpoint at ``path`` (identity and state), without loading its tensors."""
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata())


def load_checkpoint(path: str | Path, params: dict[str, nn.Parameter],
                    optimizers: Iterable[torch.optim.Optimizer] = ()) -> dict[str, str]:
    """Copy the stored tensors into ``params`` (and their Adam state into whichever of ``optimizers``
    optimises each); returns the metadata. Raises naming the file and the parameter when one is missing
    or has another shape."""
    owner = {p: optimizer for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]}
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        missing = [name for name in params if f"param/{name}" not in keys]
        if missing:
            raise ValueError(f"{path}: checkpoint lacks the parameters {missing}")
        with torch.no_grad():
            for name, param in params.items():
                stored = f.get_tensor(f"param/{name}")
                if stored.shape != param.shape:
                    raise ValueError(f"{path}: {name} has shape {tuple(stored.shape)}, expected "
                                     f"{tuple(param.shape)} (settings changed?)")
                param.copy_(stored)
        for name, param in params.items():
            prefix = f"adam/{name}/"
            state = {key[len(prefix):]: f.get_tensor(key) for key in keys if key.startswith(prefix)}
            if state and param in owner:
                owner[param].state[param] = state
        return dict(f.metadata())


def resume(path: str | Path, params: dict[str, nn.Parameter], optimizers: Iterable[torch.optim.Optimizer],
           identity: dict[str, str]) -> dict[str, str]:
    """Load ``path`` when the run that wrote it had this ``identity``, and return its metadata; else (no
    file, or another run's, which it says) leave everything as it is and return ``{}``."""
    path = Path(path)
    if not path.is_file():
        return {}
    stored = checkpoint_metadata(path)
    changed = sorted(k for k in identity if stored.get(k) != identity[k])
    if changed:
        tqdm.write(f"{path}: written with different {', '.join(changed)}; training from scratch")
        return {}
    return load_checkpoint(path, params, optimizers)
