"""Ground-truth rendering speed of the embedded dataset at the default parameters.

Renders every view of several frames of one sequence (two hands, the object, the table; supersampling
and shadows as params.yaml says) as the data stage does (each frame's scene built once for its views,
each camera's rays once for all frames) and prints the median per-view time, the median time of a
whole frame (scene build and all 8 views), images per second and frames per second; the last line is
one JSON object.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch

from hogsa.config import load_params, section
from hogsa.data import synth
from hogsa.data.dataset import DataConfig

ROOT = Path(__file__).resolve().parents[1]


def main(sequence: str = "s01/box_grab_01", repeats: int = 3) -> dict:
    torch.set_num_threads(1)  # the generator runs one process per core
    cfg = section(load_params(ROOT / "params.yaml"), "data", DataConfig).embedded
    hands, rig, right_template = synth.open_hand_assets()
    start = time.perf_counter()
    plan, subject, obj = synth.plan_for(sequence, cfg, seed=0)
    plan_seconds = time.perf_counter() - start
    cameras = synth.rig_cameras(cfg, sequence.split("/")[0])
    renderer = synth.SequenceRenderer(cfg, hands, subject.tone, obj, rig, right_template)
    views = cfg.views_of(sequence.split("/")[0])
    for view in views:  # the data stage computes a camera's rays once per sequence
        renderer.view(cameras[view])
    per_view, per_frame = [], []
    for frame in list(range(cfg.frames))[:: max(cfg.frames // repeats, 1)][:repeats]:
        frame_start = time.perf_counter()
        scene = renderer.scene(plan, frame)
        for view in views:
            tic = time.perf_counter()
            renderer.render(scene, cameras[view], noise_seed=0)
            per_view.append(time.perf_counter() - tic)
        per_frame.append(time.perf_counter() - frame_start)
    median, frame_median = statistics.median(per_view), statistics.median(per_frame)
    result = {
        "resolution": cfg.image_size, "supersample": cfg.supersample, "soft_shadow_samples": cfg.soft_shadow_samples,
        "views_timed": len(per_view), "median_view_s": round(median, 4), "median_frame_s": round(frame_median, 3),
        "images_per_s": round(1 / median, 2), "frames_per_s": round(1 / frame_median, 3),
        "frames_per_s_all_workers": round(cfg.workers / frame_median, 3), "plan_s": round(plan_seconds, 2),
    }
    print(f"{sequence}: {median * 1000:.0f} ms per view ({cfg.image_size[0]}x{cfg.image_size[1]} max), "
          f"{frame_median:.2f} s per frame of {len(views)} views, {result['frames_per_s']} frames/s per core, "
          f"plan {plan_seconds:.1f} s")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
