"""Grasp optimisation speed: optimised samples per second (the params' iterations, 200 by default)
at batch 1 and at larger batches, on perturbed grasps of the embedded open hand and box.

Uses the params.yaml ``pom`` section; a ContactNet of the configured size with random weights stands
in for the trained one (the speed does not depend on its weights). Prints one line per batch size;
the last line is one JSON object.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hogsa.articulated import ObjectPose
from hogsa.config import load_params, section
from hogsa.hand import HandConfig, HandPose, hand_models
from hogsa.open_objects import open_object
from hogsa.pom.contact import ObjectOccupancy
from hogsa.pom.contactnet import ContactNet, ContactNetConfig, farthest_points, object_surfaces
from hogsa.pom.generate import PomConfig
from hogsa.pom.grasps import Grasps, repeated
from hogsa.pom.optimize import optimize_grasps
from hogsa.pom.perturb import perturb

ROOT = Path(__file__).resolve().parents[1]


def box_grasps(hands, count: int) -> Grasps:
    """``count`` copies of a grasp with both palms flat on the closed box's lid."""
    rest = hands["right"].rest().vertices[0].double().numpy()
    lift = 0.012 - rest[:, 1].min()
    trans = {"right": [-0.06 - rest[:, 0].mean(), lift, 0.035], "left": [-0.16 + rest[:, 0].mean(), lift, -0.035]}
    poses = {side: dataclasses.replace(HandPose.zeros(count), transl=np.tile(trans[side], (count, 1)))
             for side in ("right", "left")}
    object_pose = ObjectPose(np.zeros(count), np.zeros((count, 3)), np.zeros((count, 3)))
    return Grasps(poses, object_pose, repeated("box", count), repeated("bench/box", count), repeated("bench", count))


def main(batches: tuple[int, ...] = (1, 8, 24, 48)) -> dict:
    torch.set_num_threads(1)
    params = load_params(ROOT / "params.yaml")
    cfg = section(params, "pom", PomConfig)
    net_cfg = section(params, "contactnet", ContactNetConfig)
    hands = hand_models(section(params, "hand", HandConfig))
    obj = open_object("box")
    torch.manual_seed(0)
    net = ContactNet(net_cfg.global_features).eval()
    subset = torch.as_tensor(farthest_points(hands["right"].v_template.double().numpy(), net_cfg.hand_points))
    surface = object_surfaces({"box": obj}, cfg.object_points, 0)["box"]
    dense = object_surfaces({"box": obj}, cfg.dense_points, 1)["box"]
    occupancy = ObjectOccupancy(obj, cfg.occupancy_voxel)
    rates = {}
    for batch in batches:
        init = perturb(box_grasps(hands, batch), hands, obj, cfg.perturb, np.random.default_rng(0))
        tic = time.perf_counter()
        optimize_grasps(init, hands, obj, surface, dense, occupancy, net, subset,
                        dataclasses.replace(cfg.optimize, batch_size=batch))
        seconds = time.perf_counter() - tic
        rates[batch] = batch / seconds
        print(f"batch {batch}: {seconds:.1f} s for {batch} samples x {cfg.optimize.iterations} iterations, "
              f"{rates[batch]:.3f} samples/s", file=sys.stderr)
    best = max(rates, key=rates.get)
    result = {"iterations": cfg.optimize.iterations, "threads": 1, "samples_per_s_batch_1": round(rates[batches[0]], 4),
              "best_batch": best, "samples_per_s_best": round(rates[best], 4),
              "samples_per_s": {str(b): round(r, 4) for b, r in rates.items()}}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
