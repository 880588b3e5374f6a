"""Seconds per augmented image, end to end and by step, on the default study's trained models.

Reads the study as the augment stage does (params.yaml, the pom stage's poses, the hogs and srm
stages' models: run ``dvc repro srm pom`` first) and takes the ``full`` variant's family (HOGS + SRM,
which also writes ``no_srm``) on the first ``--groups`` groups.

1. Steps, in this process on one torch thread, per batch of ``augment.batch_size`` samples after a
   warm-up batch (which compiles): render (the batch's one rasterizer call), SRM (one call),
   composite + crop (backgrounds drawn, resize to 224², compositing, labels, uint8) and write (JPEG,
   PNG and the ARCTIC files of every sample of both variants, into a temporary folder). Medians over
   batches, divided by the batch's samples.
2. End to end: the stage's local executor with ``augment.workers`` processes over the groups' shards,
   into a temporary folder; images per second of the ``full`` variant (each sample also writes its
   ``no_srm`` image, which the figure does not count).

With CUDA the steps are timed on the GPU too (synchronised). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hogsa.augment.executors import run_jobs
from hogsa.augment.plan import shards
from hogsa.augment.render import composite, gaussian_layers, labels, to_uint8
from hogsa.augment.shards import AugmentInputs, ShardJob, plan_shard, shard_context, write_sample
from hogsa.config import load_params
from hogsa.data.groups import resolve_groups


def synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step_times(ctx, group: str, batches: int) -> dict[str, float]:
    """Median seconds per image of each step over ``batches`` batches (module doc, 1)."""
    cfg, device = ctx.cfg, ctx.device
    poses = ctx.pose_set("hogs", group)
    planned, _ = plan_shard(ctx, shards("hogs", group, len(poses.ids), len(poses.ids))[0])
    size = cfg.batch_size
    batches = min(batches, len(planned) // size - 1)
    if batches < 1:
        raise SystemExit(f"bench/augment.py: group {group} has {len(planned)} samples, fewer than two batches of {size}")
    model, srm = ctx.model(group, "hogs"), ctx.srm("hogs")
    seq = ctx.group_sequences(group)[0]
    times: dict[str, list[float]] = {"render": [], "srm": [], "composite_crop": [], "write": []}
    with tempfile.TemporaryDirectory() as out:
        for b in range(batches + 1):  # batch 0 warms up
            batch = planned[b * size:(b + 1) * size]
            grasps = poses.grasps.take(np.array([p.pose for p in batch]))
            tic = time.perf_counter()
            raw = gaussian_layers(model, grasps, [p.render_camera for p in batch])
            synchronise(device)
            rendered = time.perf_counter()
            refined = raw.refined(srm)
            synchronise(device)
            refined_at = time.perf_counter()
            outputs = {}
            backgrounds = [ctx.backgrounds.sample(cfg.image_size, ctx.seed, group, poses.ids[p.pose], p.slot)
                           for p in batch]
            background = torch.stack([bg[0] for bg in backgrounds]).to(device)
            for variant, layers in (("full", refined), ("no_srm", raw)):
                layers = layers.resized(cfg.image_size)
                outputs[variant] = (to_uint8(composite(layers, background)), labels(layers).cpu().numpy())
            composited = time.perf_counter()
            for variant, (images, masks) in outputs.items():
                for k, sample in enumerate(batch):
                    write_sample(Path(out) / variant, seq, poses, sample, grasps.take(np.array([k])), images[k],
                                 masks[k], backgrounds[k][1], cfg.jpeg_quality, ctx.hands)
            written = time.perf_counter()
            if b:
                for name, seconds in zip(times, (rendered - tic, refined_at - rendered, composited - refined_at,
                                                 written - composited)):
                    times[name].append(seconds / len(batch))
    return {name: statistics.median(values) for name, values in times.items()}


def end_to_end(params: dict, inputs: AugmentInputs, groups: list[str]) -> dict[str, float]:
    """Images of ``full`` per second with the stage's local executor (module doc, 2)."""
    params = json.loads(json.dumps(params))
    params["augment"]["variants"] = ["full", "no_srm"]
    params_json = json.dumps(params, sort_keys=True)
    with tempfile.TemporaryDirectory() as out:
        inputs = dataclasses.replace(inputs, out_dir=out)
        ctx = shard_context(params_json, inputs)
        jobs = [ShardJob(params_json, inputs, s) for g in groups
                for s in shards("hogs", g, len(ctx.pose_set("hogs", g).ids), ctx.cfg.shard_poses)]
        tic = time.perf_counter()
        run_jobs(jobs, ctx.cfg)
        seconds = time.perf_counter() - tic
        written = sum(len(json.loads(p.read_text())["samples"]) for p in (Path(out) / "full" / "shards").glob("*.json"))
    return {"images": written, "seconds": seconds, "images_per_second": written / seconds,
            "workers": ctx.cfg.workers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=8, help="groups whose shards the end-to-end run takes")
    parser.add_argument("--batches", type=int, default=4, help="timed batches of the step breakdown")
    args = parser.parse_args()
    if "OMP_WAIT_POLICY" not in os.environ:  # as bench/render.py: passive waiting on a shared 2-core machine
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    params = load_params("params.yaml")
    inputs = AugmentInputs("data/index.json", "data/pom/poses.npz", "data/models/hogs", "data/models/srm",
                           "data/augment")
    ctx = shard_context(json.dumps(params, sort_keys=True), inputs)
    groups = resolve_groups(ctx.hogs_cfg.groups, ctx.index)[: args.groups]
    torch.set_num_threads(1)
    steps = step_times(ctx, groups[0], args.batches)
    per_image = sum(steps.values())
    print(f"steps (s/image, one thread, {ctx.device}): " + ", ".join(f"{k} {v:.4f}" for k, v in steps.items()))
    torch.set_num_threads(os.cpu_count() or 1)
    e2e = end_to_end(params, inputs, groups)
    print(f"end to end: {e2e['images']} images in {e2e['seconds']:.1f} s with {e2e['workers']} workers: "
          f"{e2e['images_per_second']:.2f} images/s")
    print(json.dumps({"device": ctx.device, "batch_size": ctx.cfg.batch_size, "steps_seconds_per_image": steps,
                      "one_thread_seconds_per_image": per_image, "end_to_end": e2e, "groups": groups}))


if __name__ == "__main__":
    main()
