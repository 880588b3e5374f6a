"""Speed of the CPU Gaussian rasterizer (hogsa.render.rasterize) on a mesh-bound scene.

Builds ≈20k flat Gaussians, two per face of a ~10k-face ellipsoid filling much of the view (as mesh-bound
HOGS Gaussians: means on the faces, rotations from the face frames, a thin normal scale), or loads a
scene with ``--scene file.safetensors`` (tensors means [N,3], quats [N,4] wxyz, scales [N,3],
opacities [N], colors [N,3], in a world frame that the default camera at z = -3 looking at the origin
sees), optionally with the camera it was seen from (viewmat [4,4], K [3,3], size [2] = W, H; K is
scaled to each benchmarked size). By default it takes the first trained HOGS scene that the ``hogs``
stage exported (``data/models/hogs/<group>/hogs/scene.safetensors``: a training frame's posed Gaussians
and camera) and falls back to the ellipsoid when there is none. Prints the Gaussian count, the median
forward and forward+backward times at 128² and 224² (warm-up excluded), the first-call time (which
includes torch.compile), the same for a straightforward padded-tile rasterizer (every tile holds as
many slots as its fullest tile; plain autograd) run in this process, and gsplat's times when CUDA is
present. The last line is one JSON object with all figures.

Unless OMP_WAIT_POLICY is set, the script restarts itself with OMP_WAIT_POLICY=PASSIVE: on a 2-core
machine shared with other jobs, libgomp's default spin-waiting turns contention into stalls of up to a
second per call (measured here); passive waiting costs one futex wake-up per parallel region (a few dozen
per call) when the machine is idle.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from hogsa.render import rasterize
from hogsa.render.alpha import ALPHA_THRESHOLD, MAX_ALPHA, TRANSMITTANCE_THRESHOLD
from hogsa.render.projection import project_gaussians
from hogsa.render.rasterizer import CPU_TILE_SIZE
from hogsa.render.tiles import intersect_tiles, make_grid

SIZES = (128, 224)
SCENE_KEYS = ("means", "quats", "scales", "opacities", "colors")
TRAINED_SCENES = "data/models/hogs/*/hogs/scene.safetensors"
View = tuple[torch.Tensor, torch.Tensor, int]  # viewmat [4, 4], K [3, 3], the width K is for


def ellipsoid_mesh(n_lat: int = 64, n_lon: int = 80, radii=(0.8, 1.0, 0.9)) -> tuple[torch.Tensor, torch.Tensor]:
    """Latitude-longitude ellipsoid, poles on the world y axis: vertices [V, 3] (m), faces [F, 3]."""
    theta = torch.linspace(0, math.pi, n_lat + 1, dtype=torch.float64)
    phi = torch.linspace(0, 2 * math.pi, n_lon + 1, dtype=torch.float64)[:-1]
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    unit = torch.stack([t.sin() * p.cos(), t.cos(), t.sin() * p.sin()], dim=-1).reshape(-1, 3)
    vertices = unit * torch.tensor(radii, dtype=torch.float64)
    ring = torch.arange((n_lat + 1) * n_lon).reshape(n_lat + 1, n_lon)
    a, b = ring[:-1], ring[1:]
    a2, b2 = a.roll(-1, dims=1), b.roll(-1, dims=1)
    faces = torch.cat([torch.stack([a, b2, b], -1).reshape(-1, 3), torch.stack([a, a2, b2], -1).reshape(-1, 3)])
    tri = vertices[faces]
    area = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).norm(dim=-1)
    return vertices, faces[area > 1e-9]  # drop the zero-area triangles at the poles


def mesh_gaussians(vertices: torch.Tensor, faces: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Two flat Gaussians per face: means at barycentres (2/3, 1/6, 1/6) and (1/6, 2/3, 1/6), axes
    along the first edge, the in-plane normal and the face normal, scales 0.3·edge, 0.3·edge, 0.01·edge."""
    g = torch.Generator().manual_seed(seed)
    tri = vertices[faces]  # [F, 3, 3]
    bary = torch.tensor([[2 / 3, 1 / 6, 1 / 6], [1 / 6, 2 / 3, 1 / 6]], dtype=tri.dtype)
    means = torch.einsum("pk,fkd->fpd", bary, tri).reshape(-1, 3)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    normal = F.normalize(torch.linalg.cross(e1, e2), dim=-1)
    tangent = F.normalize(e1, dim=-1)
    frame = torch.stack([tangent, torch.linalg.cross(normal, tangent), normal], dim=-1)  # columns
    xyzw = torch.as_tensor(Rotation.from_matrix(frame.numpy()).as_quat())
    quats = torch.cat([xyzw[:, 3:], xyzw[:, :3]], dim=-1).repeat_interleave(2, dim=0)
    edge = 0.5 * (e1.norm(dim=-1) + e2.norm(dim=-1))
    scales = torch.stack([0.3 * edge, 0.3 * edge, 0.01 * edge], dim=-1).repeat_interleave(2, dim=0)
    n = means.shape[0]
    scene = {"means": means, "quats": quats, "scales": scales,
             "opacities": 0.6 + 0.4 * torch.rand(n, generator=g, dtype=tri.dtype),
             "colors": torch.rand(n, 3, generator=g, dtype=tri.dtype)}
    return {k: v.float() for k, v in scene.items()}


def load_scene(path: Path) -> tuple[dict[str, torch.Tensor], View | None]:
    """The scene's tensors, and its camera when the file has one."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    missing = [k for k in SCENE_KEYS if k not in tensors]
    if missing:
        raise KeyError(f"{path}: missing tensors {missing}; expected {list(SCENE_KEYS)}")
    view = None
    if "viewmat" in tensors:
        width, height = tensors["size"].tolist()
        if width != height:
            raise ValueError(f"{path}: size {width}×{height}; the benchmark renders square images")
        view = (tensors["viewmat"].float(), tensors["K"].float(), int(width))
    return {k: tensors[k].float() for k in SCENE_KEYS}, view


def camera(size: int, view: View | None = None, distance: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The scene's camera with K scaled to size², or one square OpenCV camera at (0, 0, -distance)
    looking at the origin: viewmats [1,4,4], Ks [1,3,3]."""
    if view is not None:
        viewmat, K, width = view
        scale = torch.tensor([size / width, size / width, 1.0])[:, None]
        return viewmat[None], (K * scale)[None]
    focal = 1.1 * size
    Ks = torch.tensor([[[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]]])
    viewmats = torch.eye(4)[None]
    viewmats[0, 2, 3] = distance
    return viewmats, Ks


def padded_tile_rasterize(scene: dict, viewmats: torch.Tensor, Ks: torch.Tensor, size: int,
                          tile_size: int = CPU_TILE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """The straightforward baseline: gsplat's rules on [tiles, K_max, tile²] tensors (one camera)."""
    proj = project_gaussians(scene["means"], scene["quats"], scene["scales"], viewmats, Ks, size, size,
                             opacities=scene["opacities"])
    ids = (proj.radii[0] > 0).all(dim=-1).nonzero()[:, 0]
    means2d, conics, depths = proj.means2d[0, ids], proj.conics[0, ids], proj.depths[0, ids]
    grid = make_grid(size, size, tile_size, 1)
    isect = intersect_tiles(means2d, proj.radii[0, ids], depths, torch.zeros_like(ids), grid)
    counts = isect.offsets.diff()
    slot = torch.arange(int(counts.max()))
    filled = slot < counts[:, None]  # [T, K]
    pair = (isect.offsets[:-1, None] + slot).clamp(max=max(len(isect.gaussian_ids) - 1, 0))
    g = torch.where(filled, isect.gaussian_ids[pair], 0)  # [T, K]
    local = torch.arange(tile_size * tile_size)
    tile = torch.arange(grid.n_tiles)
    px = ((tile % grid.tiles_x) * tile_size)[:, None] + local % tile_size + 0.5  # [T, P]
    py = ((tile // grid.tiles_x) * tile_size)[:, None] + local // tile_size + 0.5
    dx, dy = means2d[g, 0, None] - px[:, None], means2d[g, 1, None] - py[:, None]  # [T, K, P]
    a, b, c = (conics[g, i, None] for i in range(3))
    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    alpha = (scene["opacities"][ids][g, None] * torch.exp(-sigma)).clamp(max=MAX_ALPHA)
    alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_THRESHOLD) & filled[..., None], alpha, 0.0)
    survive = torch.cumprod(1 - alpha, dim=1)  # inclusive transmittance
    before = torch.cat([torch.ones_like(survive[:, :1]), survive[:, :-1]], dim=1)
    weights = torch.where(survive > TRANSMITTANCE_THRESHOLD, alpha * before, 0.0)
    colors = torch.einsum("tkp,tkd->tpd", weights, scene["colors"][ids][g])
    alphas = weights.sum(dim=1, keepdim=True).transpose(1, 2)

    def to_image(x):  # [T, P, D] → [1, H, W, D]
        x = x.reshape(grid.tiles_y, grid.tiles_x, tile_size, tile_size, -1).permute(0, 2, 1, 3, 4)
        return x.reshape(1, grid.tiles_y * tile_size, grid.tiles_x * tile_size, -1)[:, :size, :size]

    return to_image(colors), to_image(alphas)


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def forward_and_backward(render: Callable, scene: dict,
                         sync: Callable = lambda: None) -> tuple[Callable, Callable]:
    """Two closures: a forward under no_grad, and a forward + backward of image and alpha sums."""
    params = {k: v.clone().requires_grad_(True) for k, v in scene.items()}

    def forward():
        with torch.no_grad():
            render(params)
        sync()

    def forward_backward():
        image, alpha = render(params)
        (image.sum() + alpha.sum()).backward()
        sync()

    return forward, forward_backward


def measure(render: Callable, scene: dict, repeats: int, warm_up: bool = True,
            sync: Callable = lambda: None) -> dict:
    """Medians (and minima) of forward and forward+backward in ms; with warm_up, the first call (which
    compiles) and one more of each are timed apart and excluded."""
    forward, forward_backward = forward_and_backward(render, scene, sync)
    first = timed(forward_backward, 1)[0] if warm_up else None
    if warm_up:
        timed(forward, 1), timed(forward_backward, 1)
    fwd, fwd_bwd = timed(forward, repeats), timed(forward_backward, repeats)
    def ms(seconds: float) -> float:
        return round(1000 * seconds, 1)

    result = {"fwd_ms": ms(statistics.median(fwd)), "fwd_bwd_ms": ms(statistics.median(fwd_bwd)),
              "fwd_min_ms": ms(min(fwd)), "fwd_bwd_min_ms": ms(min(fwd_bwd))}
    return result if first is None else {"first_call_ms": ms(first), **result}


def render_ours(scene: dict, size: int, view: View | None, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """hogsa.render.rasterize of the scene in its camera at size², (image, alpha)."""
    viewmats, Ks = camera(size, view)
    image, alpha, _ = rasterize(*(scene[k] for k in SCENE_KEYS), viewmats.to(device), Ks.to(device), size, size)
    return image, alpha


def render_baseline(scene: dict, size: int, view: View | None) -> tuple[torch.Tensor, torch.Tensor]:
    return padded_tile_rasterize(scene, *camera(size, view), size)


def bench_size(scene: dict, view: View | None, size: int, repeats: int, baseline_repeats: int) -> dict:
    """All figures at one image size (printed as they come)."""
    cpu = measure(functools.partial(render_ours, size=size, view=view), scene, repeats)
    base = measure(functools.partial(render_baseline, size=size, view=view), scene, baseline_repeats, warm_up=False)
    with torch.no_grad():
        diff = (render_ours(scene, size, view)[0] - render_baseline(scene, size, view)[0]).abs().max().item()
    row = {"cpu": cpu, "padded_tiles": base, "speedup_fwd": round(base["fwd_ms"] / cpu["fwd_ms"], 1),
           "speedup_fwd_bwd": round(base["fwd_bwd_ms"] / cpu["fwd_bwd_ms"], 1), "max_abs_diff": diff}
    print(f"{size}²: forward {cpu['fwd_ms']} ms, forward+backward {cpu['fwd_bwd_ms']} ms (medians; first call "
          f"{cpu['first_call_ms']} ms); padded tiles {base['fwd_ms']} / {base['fwd_bwd_ms']} ms → "
          f"{row['speedup_fwd']}× / {row['speedup_fwd_bwd']}×; max |Δ| {diff:.1e}")
    if torch.cuda.is_available():
        cuda_scene = {k: v.cuda() for k, v in scene.items()}
        cuda_view = None if view is None else (view[0].cuda(), view[1].cuda(), view[2])
        render = functools.partial(render_ours, size=size, view=cuda_view, device="cuda")
        row["gsplat_cuda"] = measure(render, cuda_scene, repeats, sync=torch.cuda.synchronize)
        print(f"{size}²: gsplat on CUDA {row['gsplat_cuda']['fwd_ms']} / {row['gsplat_cuda']['fwd_bwd_ms']} ms")
    return row


def main() -> dict:
    if "OMP_WAIT_POLICY" not in os.environ:  # libgomp reads it once, when torch loads it
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", type=Path, help="safetensors file with means/quats/scales/opacities/colors "
                        f"(default: the first of {TRAINED_SCENES}, else an ellipsoid)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--baseline-repeats", type=int, default=2, help="the baseline takes seconds per call")
    args = parser.parse_args()

    path = args.scene or next(iter(sorted(Path.cwd().glob(TRAINED_SCENES))), None)
    scene, view = load_scene(path) if path else (mesh_gaussians(*ellipsoid_mesh()), None)
    n = scene["means"].shape[0]
    result = {"gaussians": n, "threads": torch.get_num_threads(), "scene": str(path or "ellipsoid"),
              "omp_wait_policy": os.environ["OMP_WAIT_POLICY"]}
    print(f"{n} Gaussians ({result['scene']}), {torch.get_num_threads()} threads")
    for size in SIZES:
        result[f"{size}"] = bench_size(scene, view, size, args.repeats, args.baseline_repeats)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
