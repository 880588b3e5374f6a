"""SRM refinement speed: images refined per second at 224² by the default StyleUNet (params.yaml ``srm``).

Times the generator's forward pass (no gradient) on batches of random 224² renders with alpha, on the
CPU with the torch threads of this machine (and on CUDA when present); prints the median wall time per
batch, images per second and, on the CPU, the process CPU seconds per image (what the figure would be on
an idle core, as other work on a shared machine slows the wall clock); the last line is one JSON object.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch

from hogsa.config import load_params, section
from hogsa.srm.styleunet import StyleUNet
from hogsa.srm.train import SRMConfig

ROOT = Path(__file__).resolve().parents[1]
SIZE = 224  # the augmented crops' side (paper: 224 × 224)


def time_device(generator: StyleUNet, device: str, batch: int, repeats: int) -> dict:
    generator = generator.to(device).eval()
    rgb = torch.rand(batch, 3, SIZE, SIZE, device=device)
    alpha = torch.rand(batch, 1, SIZE, SIZE, device=device)
    times, cpu_times = [], []
    with torch.no_grad():
        for k in range(repeats + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            tic, cpu_tic = time.perf_counter(), time.process_time()
            generator(rgb, alpha)
            if device == "cuda":
                torch.cuda.synchronize()
            if k:  # the first call warms up
                times.append(time.perf_counter() - tic)
                cpu_times.append(time.process_time() - cpu_tic)
    median = statistics.median(times)
    result = {"batch": batch, "median_batch_s": round(median, 4), "images_per_s": round(batch / median, 2)}
    if device == "cpu":
        result["cpu_s_per_image"] = round(statistics.median(cpu_times) / batch, 4)
    return result


def main(batch: int = 8, repeats: int = 5) -> dict:
    cfg = section(load_params(ROOT / "params.yaml"), "srm", SRMConfig)
    torch.manual_seed(0)
    generator = StyleUNet(cfg.generator)
    result = {"size": SIZE, "generator": cfg.generator.__dict__, "threads": torch.get_num_threads(),
              "parameters": sum(p.numel() for p in generator.parameters()),
              "cpu": time_device(generator, "cpu", batch, repeats)}
    if torch.cuda.is_available():
        result["cuda"] = time_device(generator, "cuda", 4 * batch, 4 * repeats)
    print(f"SRM at {SIZE}²: {result['cpu']['images_per_s']} images/s on the CPU ({result['threads']} threads)"
          + (f", {result['cuda']['images_per_s']} on CUDA" if "cuda" in result else ""))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
