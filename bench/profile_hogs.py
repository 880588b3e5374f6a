"""Where a HOGS (or 3DGS) training step spends its time: a torch.profiler table by component.

Trains ``--warmup`` steps of ``hogs.train.train_step`` on one group of the dataset the data stage wrote
(``data/index.json``; params.yaml's ``hogs`` and ``hand`` sections), then profiles ``--steps`` more with
each component of the step marked by ``torch.profiler.record_function`` (wrappers installed by this
script; the library is not changed). Every profiled operator is charged to the innermost marked
component that called it; a backward operator is charged to the component whose forward operator
created its autograd node (matched by the profiler's sequence numbers), so "hand skinning" includes its
gradient. What no component claims is "other". Prints the table (ms per step, share) and, as the last
line, one JSON object with it, the median step time measured without the profiler, and the top operators.

Same OMP_WAIT_POLICY restart as bench/render.py.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from torch.profiler import ProfilerActivity, profile, record_function

BACKWARD_PREFIX = "autograd::engine::evaluate_function: "
# (module, attribute, component): what each wrapper marks; methods are patched on their class
MARKED = (
    ("hogsa.hogs.poses", "PoseCorrections.apply", "pose corrections"),
    ("hogsa.hogs.model", "pose_hand", "hand skinning"),
    ("hogsa.hogs.pointcloud", "pose_hand", "hand skinning"),
    ("hogsa.hand", "HandModel.vertex_transforms", "hand skinning"),
    ("hogsa.hogs.model", "pose_object", "object posing"),
    ("hogsa.hogs.pointcloud", "object_vertex_transforms", "object posing"),
    ("hogsa.hogs.binding", "MeshGaussians.gaussians", "Gaussian binding"),
    ("hogsa.hogs.pointcloud", "PointGaussians.posed", "Gaussian binding"),
    ("hogsa.hogs.model", "merge_parts", "Gaussian binding"),
    ("hogsa.hogs.model", "shaded_colors", "colours (SH, shading)"),
    ("hogsa.render.rasterizer", "project_gaussians", "projection"),
    ("hogsa.render.rasterizer", "_pack_visible", "projection"),
    ("hogsa.render.rasterizer", "_features", "colours (SH, shading)"),
    ("hogsa.render.rasterizer", "intersect_tiles", "tile assignment"),
    ("hogsa.render.rasterizer", "build_fragments", "rasterizer: fragments"),
    ("hogsa.render.rasterizer", "composite", "rasterizer: compositing"),
    ("hogsa.render.tile_composite", "tile_composite", "rasterizer: compositing"),
    ("hogsa.hogs.train", "ssim", "SSIM"),
    ("hogsa.hogs.train", "psnr", "loss and logging"),
    ("hogsa.hogs.train", "hogs_loss", "loss and logging"),
    ("hogsa.hogs.train", "check_finite_gradients", "gradient check"),
    ("torch.optim.Adam", "step", "optimizer step"),
    ("torch.optim.Adam", "zero_grad", "optimizer step"),
)


def marked(fn: Callable, label: str) -> Callable:
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with record_function(f"[hogsa] {label}"):
            return fn(*args, **kwargs)
    return run


def install_marks() -> None:
    """Wrap every MARKED function; modules an older checkout lacks are skipped (before/after tables)."""
    import importlib

    for module_name, attribute, label in MARKED:
        if module_name == "torch.optim.Adam":
            owner = torch.optim.Adam
        elif importlib.util.find_spec(module_name) is None:
            continue
        else:
            owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, marked(getattr(owner, name), label))


def component_table(events) -> dict[str, float]:
    """Self CPU µs per component over the profiled events (module docstring)."""
    by_id = {id(e): e for e in events}
    label_of: dict[int, str] = {}

    def label(event) -> str | None:
        key = id(event)
        if key not in label_of:
            parent = event.cpu_parent
            if event.name.startswith("[hogsa] "):
                found = event.name[len("[hogsa] "):]
            else:
                found = label(parent) if parent is not None and id(parent) in by_id else None
            label_of[key] = found
        return label_of[key]

    forward_label: dict[int, str] = {}
    for e in events:  # forward operators that recorded autograd nodes
        if e.sequence_nr >= 0 and not e.name.startswith(BACKWARD_PREFIX) and not e.is_async:
            lab = label(e)
            if lab is not None:
                forward_label.setdefault(e.sequence_nr, lab)

    def charged(event) -> str:
        node = event
        while node is not None:
            if node.name.startswith(BACKWARD_PREFIX):
                return forward_label.get(node.sequence_nr, "backward of unmarked operators")
            node = node.cpu_parent
        return label(event) or "other"

    totals: dict[str, float] = defaultdict(float)
    for e in events:
        totals[charged(e)] += e.self_cpu_time_total
    return dict(totals)


def main() -> dict:
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("hogs", "3dgs"), default="hogs")
    parser.add_argument("--group", default="s01/box")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--index", type=Path, default=Path("data/index.json"))
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--timed", type=int, default=20, help="steps timed without the profiler")
    parser.add_argument("--steps", type=int, default=10, help="steps profiled")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from hogsa.config import section
    from hogsa.data.dataset import DatasetIndex
    from hogsa.data.groups import load_group
    from hogsa.hand import HandConfig, hand_models
    from hogsa.hogs import train

    params = yaml.safe_load(args.params.read_text())
    cfg = section(params, "hogs", train.HOGSConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    data = load_group(cfg, DatasetIndex.load(args.index, hands), hands, args.group)
    model = train.build_model(args.kind, cfg, data, params["seed"])
    poses = train.pose_corrections(cfg, data)
    optimizer = train.build_optimizer(args.kind, cfg, model, poses)
    train.init_colors(model, data.train, cfg.color_init_views, torch.Generator().manual_seed(params["seed"]))

    def step(i: int) -> None:
        batch = [data.train[j] for j in train.batch_indices(i, len(data.train), cfg.batch_views, params["seed"])]
        train.train_step(cfg, model, poses, optimizer, batch, i)

    for i in range(args.warmup):
        step(i)
    times = []
    for i in range(args.warmup, args.warmup + args.timed):
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    install_marks()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(args.warmup + args.timed, args.warmup + args.timed + args.steps):
            step(i)
    events = prof.events()
    totals = component_table(events)
    total = sum(totals.values())
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    table = {name: {"ms_per_step": round(us / 1000 / args.steps, 2), "share": round(us / total, 3)}
             for name, us in rows}
    print(f"{args.kind} {args.group}: median step {1000 * statistics.median(times):.1f} ms without the profiler, "
          f"{total / 1000 / args.steps:.1f} ms of profiled CPU time per step")
    for name, row in table.items():
        print(f"  {name:32s} {row['ms_per_step']:8.2f} ms  {100 * row['share']:5.1f} %")
    top = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    print(top)
    ops = sorted(prof.key_averages(), key=lambda a: -a.self_cpu_time_total)[:15]
    result = {"kind": args.kind, "group": args.group, "threads": torch.get_num_threads(),
              "median_step_ms": round(1000 * statistics.median(times), 1),
              "profiled_ms_per_step": round(total / 1000 / args.steps, 1), "components": table,
              "top_operators": {a.key: {"ms_per_step": round(a.self_cpu_time_total / 1000 / args.steps, 2),
                                        "calls_per_step": a.count / args.steps} for a in ops},
              "operator_calls_per_step": sum(a.count for a in prof.key_averages()) / args.steps}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
