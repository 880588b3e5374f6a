"""The held-out pose fit of one trained HOGS model: every held-out frame fitted in one render per step
(``hogsa.hogs.poses.fit_corrections``) against one frame after the other (the loop it replaced, kept
here as the reference), with the held-out PSNR each fit reaches. Each variant runs in a fresh process of
its own, as in a hogs-stage worker: its first fit pays the compiled kernels' specialisation to a frozen
model ("cold", what the stage sees), later ones do not ("warm").

Needs the hogs stage's model of ``--group`` (``data/models/hogs/<group>/hogs/model.safetensors``, a
finished run of params.yaml's settings) and the data stage's ``data/index.json``. Both fits start from
zero corrections of the held-out frames; the training frames keep the model's learned ones. Runs with one
torch thread, as a hogs-stage worker does. Prints one JSON object on its last line: per variant the cold
and the median warm seconds (of ``--repeats``) and the held-out PSNR (dB, corrected poses) after it, and
the ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from hogsa.config import load_params, section
from hogsa.data.dataset import DatasetIndex
from hogsa.data.groups import load_group
from hogsa.hand import HandConfig, hand_models
from hogsa.hogs import train
from hogsa.hogs.evaluate import corrected_group, evaluate_held_out
from hogsa.hogs.poses import fit_corrections, frame_name
from hogsa.srm.pairs import model_path
from hogsa.training import frozen, load_checkpoint


def fit_one_frame_at_a_time(model, corrections, samples_by_frame, image_loss, lr, iterations, batch, seed,
                            desc) -> None:
    """The reference: each frame its own Adam and ``iterations`` steps of ``batch`` crops."""
    with frozen(model):
        for frame, samples in samples_by_frame.items():
            name = frame_name(frame)
            optimizer = torch.optim.Adam([{"params": [corrections.angles[name]], "lr": lr["angles"]},
                                          {"params": [corrections.offsets[name]], "lr": lr["offsets"]}])
            draw = random.Random(f"{seed}|{name}")
            for _ in range(iterations):
                picks = draw.sample(list(samples), min(batch, len(samples)))
                pred = model.render_frames([s.camera for s in picks], *corrections.apply_frames(picks)).rgb
                loss = image_loss(pred, torch.stack([s.image for s in picks]))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()


VARIANTS = {"one_frame_at_a_time": fit_one_frame_at_a_time, "all_frames_together": fit_corrections}


def measure(variant: str, group: str, index: Path, models: Path, repeats: int) -> dict:
    """Cold and warm seconds of ``variant``'s held-out fit, and the held-out PSNR after it."""
    torch.set_num_threads(1)
    params = load_params()
    cfg = section(params, "hogs", train.HOGSConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    data = load_group(cfg, DatasetIndex.load(index, hands), hands, group)
    # the weights alone: the checkpoint's code digest names the code that trained it, which a change to
    # the fitting (what this script measures) alters
    model = train.build_model("hogs", cfg, data, params["seed"])
    poses = train.pose_corrections(cfg, data)
    load_checkpoint(model_path(models, group, "hogs"), train.checkpoint_parameters(model, poses))
    model.eval()
    trained_frames = set(train.frame_keys(data.train))
    held_out = [frame_name(f) for f in train.frame_keys(data.held_out) if f not in trained_frames]
    seconds = []
    train.fit_corrections = VARIANTS[variant]
    for _ in range(1 + repeats):
        with torch.no_grad():
            for name in held_out:
                poses.angles[name].zero_()
                poses.offsets[name].zero_()
        tic = time.perf_counter()
        train.fit_held_out_poses(cfg, model, poses, data, params["seed"])
        seconds.append(time.perf_counter() - tic)
    psnr = evaluate_held_out(model, corrected_group(data, poses), cfg, None).as_metrics()["held_out"]["psnr"]
    return {"cold_seconds": seconds[0], "warm_seconds": statistics.median(seconds[1:]),
            "runs": [round(x, 2) for x in seconds], "held_out_psnr": psnr, "held_out_frames": len(held_out)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", default="s01/book")
    parser.add_argument("--index", type=Path, default=Path("data/index.json"))
    parser.add_argument("--models", type=Path, default=Path("data/models/hogs"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="measure this one here (the driver's call)")
    args = parser.parse_args()
    if args.variant:
        return measure(args.variant, args.group, args.index, args.models, args.repeats)
    results = {}
    for variant in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--variant", variant, "--group", args.group, "--index",
                              str(args.index), "--models", str(args.models), "--repeats", str(args.repeats)],
                             check=True, capture_output=True, text=True).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    one, together = results["one_frame_at_a_time"], results["all_frames_together"]
    results["cold_speedup"] = one["cold_seconds"] / together["cold_seconds"]
    results["warm_speedup"] = one["warm_seconds"] / together["warm_seconds"]
    results["psnr_difference_db"] = together["held_out_psnr"] - one["held_out_psnr"]
    results["group"] = args.group
    return results


if __name__ == "__main__":
    print(json.dumps(main()))
