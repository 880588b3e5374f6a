"""Tests of hogsa.render: the CPU rasterizer against an independent brute-force reference (every
Gaussian at every pixel, gsplat's per-pixel loop), gsplat's pure-PyTorch projection and SH, finite
differences, and tiny hand-built scenes whose answers are worked out by hand.

Most tests run the rasterizer eagerly (HOGSA_NO_COMPILE=1); ``test_compiled_matches_eager`` checks
that the compiled kernels give the same images and gradients.
"""

from __future__ import annotations

import functools
import math
import sys

import pytest
import torch
import torch._inductor.config
import torch.nn.functional as F
from kornia.geometry.conversions import quaternion_to_rotation_matrix

from hogsa import compiled
from hogsa.render import rasterize, rasterizer, tile_composite
from hogsa.render.projection import project_gaussians
from hogsa.render.tiles import intersect_tiles, make_grid
from hogsa.render.sh import eval_sh, rgb_to_sh_dc, sh_colors

try:
    from gsplat.cuda._torch_impl import _fully_fused_projection, _spherical_harmonics
except ImportError:  # gsplat is an optional test dependency
    _fully_fused_projection = _spherical_harmonics = None

needs_gsplat = pytest.mark.skipif(_fully_fused_projection is None, reason="gsplat not installed")


@pytest.fixture(autouse=True)
def eager(monkeypatch):
    monkeypatch.setenv("HOGSA_NO_COMPILE", "1")


# ----------------------------------------------------------------------------------------- scenes


def look_at(eye, target=(0.0, 0.0, 0.0), up=(0.0, -1.0, 0.0)) -> torch.Tensor:
    """World→camera 4×4 (OpenCV: z towards target, y down) for a camera at eye."""
    eye, target, up = (torch.tensor(v, dtype=torch.float64) for v in (eye, target, up))
    z = F.normalize(target - eye, dim=0)
    x = F.normalize(torch.linalg.cross(up, z), dim=0)
    y = torch.linalg.cross(z, x)
    view = torch.eye(4, dtype=torch.float64)
    view[:3, :3] = torch.stack([x, y, z])
    view[:3, 3] = -view[:3, :3] @ eye
    return view


def random_scene(seed: int, n: int = 40, n_cameras: int = 2, width: int = 20, height: int = 14,
                 channels: int = 3, dtype=torch.float64) -> dict:
    """Gaussians around the origin seen by cameras on a ring, some partly off-screen."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    eyes = [(2.5 * math.sin(a), 0.3 * i, -2.5 * math.cos(a)) for i, a in enumerate([0.0, 0.7, -1.1][:n_cameras])]
    focal = torch.tensor([18.0, 21.0, 16.0][:n_cameras], dtype=torch.float64)
    Ks = torch.zeros(n_cameras, 3, 3, dtype=torch.float64)
    Ks[:, 0, 0], Ks[:, 1, 1], Ks[:, 2, 2] = focal, focal * 1.1, 1.0
    Ks[:, 0, 2], Ks[:, 1, 2] = width / 2 + 0.3, height / 2 - 0.2
    scene = {
        "means": (rand(n, 3) - 0.5) * 1.6,
        "quats": torch.randn(n, 4, generator=g, dtype=torch.float64),
        "scales": 0.03 + 0.15 * rand(n, 3),
        "opacities": 0.05 + 0.95 * rand(n),
        "colors": rand(n, channels),
        "viewmats": torch.stack([look_at(e) for e in eyes]),
        "Ks": Ks,
        "width": width,
        "height": height,
    }
    return {k: v.to(dtype) if isinstance(v, torch.Tensor) else v for k, v in scene.items()}


# -------------------------------------------------------------------------- brute-force reference


def reference_rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                        near_plane=0.01, far_plane=1e10, eps2d=0.3, backgrounds=None,
                        render_mode="RGB", rasterize_mode="classic"):
    """gsplat's semantics written plainly: project every Gaussian, then run gsplat's per-pixel loop
    over ALL Gaussians sorted by depth at EVERY pixel (no tiles, no boxes). Differentiable."""
    rot = quaternion_to_rotation_matrix(F.normalize(quats, dim=-1))
    cov_world = rot @ torch.diag_embed(scales**2) @ rot.transpose(-1, -2)
    images, alphas = [], []
    for cam in range(viewmats.shape[0]):
        r, t = viewmats[cam, :3, :3], viewmats[cam, :3, 3]
        p = means @ r.T + t
        x, y, z = p.unbind(-1)
        fx, fy, cx, cy = Ks[cam, 0, 0], Ks[cam, 1, 1], Ks[cam, 0, 2], Ks[cam, 1, 2]
        lim_x = ((width - cx) / fx + 0.15 * width / fx, cx / fx + 0.15 * width / fx)
        lim_y = ((height - cy) / fy + 0.15 * height / fy, cy / fy + 0.15 * height / fy)
        tx = z * torch.clamp(x / z, -lim_x[1], lim_x[0])
        ty = z * torch.clamp(y / z, -lim_y[1], lim_y[0])
        jac = torch.zeros(len(z), 2, 3, dtype=means.dtype)
        jac[:, 0, 0], jac[:, 0, 2] = fx / z, -fx * tx / z**2
        jac[:, 1, 1], jac[:, 1, 2] = fy / z, -fy * ty / z**2
        cov2d = jac @ r @ cov_world @ r.T @ jac.transpose(-1, -2)
        det_orig = torch.linalg.det(cov2d)
        cov2d = cov2d + eps2d * torch.eye(2, dtype=means.dtype)
        conic = torch.linalg.inv(cov2d)
        opacity = opacities
        if rasterize_mode == "antialiased":
            opacity = opacities * torch.sqrt((det_orig / torch.linalg.det(cov2d)).clamp(min=0))
        u, v = fx * x / z + cx, fy * y / z + cy
        alive = (z >= near_plane) & (z <= far_plane) & (opacity >= 1 / 255)
        feats = {"RGB": colors, "D": z[:, None], "ED": z[:, None]}.get(render_mode)
        if feats is None:
            feats = torch.cat([colors, z[:, None]], dim=-1)

        py, px = torch.meshgrid(torch.arange(height, dtype=means.dtype) + 0.5,
                                torch.arange(width, dtype=means.dtype) + 0.5, indexing="ij")
        trans = torch.ones(height, width, dtype=means.dtype)
        done = torch.zeros(height, width, dtype=torch.bool)
        accum = torch.zeros(height, width, feats.shape[-1], dtype=means.dtype)
        for i in torch.argsort(z, stable=True).tolist():
            if not alive[i]:
                continue
            d = torch.stack([u[i] - px, v[i] - py], dim=-1)  # [H, W, 2]
            sigma = 0.5 * torch.einsum("hwi,ij,hwj->hw", d, conic[i], d)
            alpha = torch.clamp(opacity[i] * torch.exp(-sigma), max=0.999)
            kept = (sigma >= 0) & (alpha >= 1 / 255) & ~done
            next_trans = trans * (1 - alpha)
            stop = kept & (next_trans <= 1e-4)
            done = done | stop
            blend = kept & ~stop
            accum = accum + torch.where(blend, alpha * trans, 0.0)[..., None] * feats[i]
            trans = torch.where(blend, next_trans, trans)
        alpha_img = 1 - trans[..., None]
        if backgrounds is not None and render_mode not in ("D", "ED"):
            n_bg = backgrounds.shape[-1]
            accum = torch.cat([accum[..., :n_bg] + trans[..., None] * backgrounds[cam], accum[..., n_bg:]], -1)
        if render_mode in ("ED", "RGB+ED"):
            accum = torch.cat([accum[..., :-1], accum[..., -1:] / alpha_img.clamp(min=1e-10)], -1)
        images.append(accum)
        alphas.append(alpha_img)
    return torch.stack(images), torch.stack(alphas)


def scene_args(scene: dict) -> tuple:
    keys = ("means", "quats", "scales", "opacities", "colors", "viewmats", "Ks", "width", "height")
    return tuple(scene[k] for k in keys)


# ------------------------------------------------------------------------ against the reference


@pytest.mark.parametrize(
    "seed, render_mode, rasterize_mode, with_background, dtype",
    [
        (0, "RGB", "classic", False, torch.float64),
        (1, "RGB", "antialiased", True, torch.float64),
        (2, "D", "classic", False, torch.float64),
        (3, "ED", "antialiased", False, torch.float64),
        (4, "RGB+D", "classic", True, torch.float64),
        (5, "RGB+ED", "antialiased", True, torch.float64),
        (6, "RGB+ED", "classic", True, torch.float32),
        (7, "RGB", "antialiased", False, torch.float32),
    ],
)
def test_matches_brute_force_reference(seed, render_mode, rasterize_mode, with_background, dtype):
    scene = random_scene(seed, n_cameras=3 if seed % 2 else 2, dtype=dtype)
    backgrounds = torch.rand(scene["viewmats"].shape[0], 3, dtype=dtype) if with_background else None
    image, alpha, _ = rasterize(*scene_args(scene), backgrounds=backgrounds, render_mode=render_mode,
                                rasterize_mode=rasterize_mode)
    ref_args = [a.double() if isinstance(a, torch.Tensor) else a for a in scene_args(scene)]
    ref_image, ref_alpha = reference_rasterize(
        *ref_args, backgrounds=None if backgrounds is None else backgrounds.double(),
        render_mode=render_mode, rasterize_mode=rasterize_mode,
    )
    assert image.dtype == dtype and image.shape == ref_image.shape
    assert alpha.shape == (scene["viewmats"].shape[0], scene["height"], scene["width"], 1)
    assert (ref_alpha > 0.5).any(), "scene should cover some pixels"
    depth_scale = 3.0 if "D" in render_mode else 1.0  # depths are ~3 m
    torch.testing.assert_close(image.double(), ref_image, atol=1e-4 * depth_scale, rtol=0)
    torch.testing.assert_close(alpha.double(), ref_alpha, atol=1e-4, rtol=0)


@pytest.mark.parametrize("tile_size, max_chunk_elements", [(1, 2**23), (4, 2**23), (16, 2**23), (64, 2**23),
                                                         (4, 64), (16, 256)])
def test_tiles_and_chunks_do_not_change_the_image(monkeypatch, tile_size, max_chunk_elements):
    scene = random_scene(8)
    scene["means"].requires_grad_(True)
    image, _, _ = rasterize(*scene_args(scene))
    (grad,) = torch.autograd.grad(image.sum(), scene["means"])
    monkeypatch.setattr(rasterizer, "MAX_CHUNK_ELEMENTS", max_chunk_elements)
    other, _, _ = rasterize(*scene_args(scene), tile_size=tile_size)
    (other_grad,) = torch.autograd.grad(other.sum(), scene["means"])
    torch.testing.assert_close(other, image, atol=1e-12, rtol=0)
    torch.testing.assert_close(other_grad, grad, atol=1e-10, rtol=0)


def test_empty_view_renders_background_and_backpropagates():
    scene = random_scene(9)
    scene["means"] = scene["means"] - torch.tensor([0.0, 0.0, 50.0], dtype=torch.float64)  # all behind
    scene["viewmats"] = scene["viewmats"][:1].clone()
    scene["viewmats"][0, :3, :3] = torch.eye(3, dtype=torch.float64)
    scene["viewmats"][0, :3, 3] = 0.0
    scene["Ks"] = scene["Ks"][:1]
    means = scene["means"].requires_grad_(True)
    background = torch.tensor([[0.2, 0.4, 0.6]], dtype=torch.float64)
    image, alpha, meta = rasterize(*scene_args(scene), backgrounds=background)
    assert (meta["radii"] == 0).all()
    torch.testing.assert_close(image, background[:, None, None, :].expand_as(image))
    assert (alpha == 0).all()  # exact: every Gaussian is culled, nothing is blended
    image.sum().backward()
    assert (means.grad == 0).all()  # exact: culled Gaussians are not in the graph, their gradient is 0, not small


# --------------------------------------------------------------------------------- gradients


def tiny_scene(seed: int) -> dict:
    """A handful of Gaussians on an 8×8 image, well inside the view."""
    scene = random_scene(seed, n=5, n_cameras=1, width=8, height=8)
    scene["scales"] = 0.1 + 0.1 * scene["scales"]
    scene["means"] = scene["means"] * 0.4
    scene["Ks"][:, :2, :2] *= 0.6
    return scene


@pytest.mark.parametrize("render_mode, rasterize_mode", [("RGB", "classic"), ("RGB+ED", "antialiased")])
def test_gradcheck_against_finite_differences(render_mode, rasterize_mode):
    scene = tiny_scene(10)
    background = torch.rand(1, 3, dtype=torch.float64)
    names = ("means", "quats", "scales", "opacities", "colors")
    inputs = [scene[k].clone().requires_grad_(True) for k in names] + [background.requires_grad_(True)]

    def render(means, quats, scales, opacities, colors, backgrounds):
        image, alpha, _ = rasterize(means, quats, scales, opacities, colors, scene["viewmats"],
                                    scene["Ks"], 8, 8, backgrounds=backgrounds, render_mode=render_mode,
                                    rasterize_mode=rasterize_mode)
        return image, alpha

    assert torch.autograd.gradcheck(render, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("render_mode", ["RGB+D", "ED"])
def test_gradients_match_reference_autograd(render_mode):
    """One shared random upstream gradient through both implementations (float64)."""
    scene = random_scene(11, n_cameras=2)
    names = ("means", "quats", "scales", "opacities", "colors")
    ours = {k: scene[k].clone().requires_grad_(True) for k in names}
    ref = {k: scene[k].clone().requires_grad_(True) for k in names}
    rest = (scene["viewmats"], scene["Ks"], scene["width"], scene["height"])
    image, alpha, _ = rasterize(*ours.values(), *rest, render_mode=render_mode, rasterize_mode="antialiased")
    ref_image, ref_alpha = reference_rasterize(*ref.values(), *rest, render_mode=render_mode,
                                               rasterize_mode="antialiased")
    g = torch.Generator().manual_seed(0)
    up_image = torch.randn(image.shape, generator=g, dtype=torch.float64)
    up_alpha = torch.randn(alpha.shape, generator=g, dtype=torch.float64)
    ((image * up_image).sum() + (alpha * up_alpha).sum()).backward()
    ((ref_image * up_image).sum() + (ref_alpha * up_alpha).sum()).backward()
    for k in names:
        if render_mode == "ED" and k == "colors":
            continue
        torch.testing.assert_close(ours[k].grad, ref[k].grad, atol=1e-8, rtol=1e-6, msg=k)


@pytest.mark.parametrize("colours", ["shared", "per camera", "sh"])
def test_a_batch_renders_each_set_as_its_own_call(colours):
    """B sets of Gaussians, each with its own cameras, in one call: the images, meta and gradients of
    one call per set (float64), with SH, per-camera and plain colours."""
    sets = [random_scene(s, n=30, n_cameras=2) for s in (21, 22, 23)]
    sh_degree = 1 if colours == "sh" else None
    for k, scene in enumerate(sets):
        g = torch.Generator().manual_seed(k)
        if colours == "per camera":
            scene["colors"] = torch.rand(2, 30, 3, generator=g, dtype=torch.float64)
        if colours == "sh":
            scene["colors"] = torch.randn(30, 4, 3, generator=g, dtype=torch.float64) * 0.3
        scene["backgrounds"] = torch.rand(2, 3, generator=g, dtype=torch.float64)
    names = ("means", "quats", "scales", "opacities", "colors", "backgrounds")
    batch = {k: torch.stack([s[k] for s in sets]).requires_grad_(True) for k in names}
    alone = [{k: s[k].clone().requires_grad_(True) for k in names} for s in sets]
    size = (sets[0]["width"], sets[0]["height"])
    cameras = {"viewmats": torch.stack([s["viewmats"] for s in sets]), "Ks": torch.stack([s["Ks"] for s in sets])}
    kwargs = {"sh_degree": sh_degree, "render_mode": "RGB+ED"}
    image, alpha, meta = rasterize(*(batch[k] for k in names[:5]), cameras["viewmats"], cameras["Ks"], *size,
                                   backgrounds=batch["backgrounds"], **kwargs)
    g = torch.Generator().manual_seed(5)
    up_image = torch.randn(image.shape, generator=g, dtype=torch.float64)
    up_alpha = torch.randn(alpha.shape, generator=g, dtype=torch.float64)
    ((image * up_image).sum() + (alpha * up_alpha).sum()).backward()
    for b, (scene, leaves) in enumerate(zip(sets, alone)):
        one_image, one_alpha, one_meta = rasterize(*(leaves[k] for k in names[:5]), scene["viewmats"], scene["Ks"],
                                                   *size, backgrounds=leaves["backgrounds"], **kwargs)
        torch.testing.assert_close(image[b], one_image, atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(alpha[b], one_alpha, atol=1e-12, rtol=1e-10)
        for key in ("radii", "means2d", "depths", "conics", "opacities"):
            torch.testing.assert_close(meta[key][b], one_meta[key], atol=1e-12, rtol=1e-10, msg=key)
        ((one_image * up_image[b]).sum() + (one_alpha * up_alpha[b]).sum()).backward()
        for k in names:
            torch.testing.assert_close(batch[k].grad[b], leaves[k].grad, atol=1e-10, rtol=1e-8, msg=k)


def test_a_batch_needs_a_leading_entry_per_set():
    scene = random_scene(3, n=10, n_cameras=1)
    two = {k: torch.stack([scene[k], scene[k]]) for k in ("means", "quats", "scales", "opacities", "colors")}
    with pytest.raises(ValueError, match="viewmats needs B=2"):
        rasterize(*two.values(), scene["viewmats"], scene["Ks"], scene["width"], scene["height"])


def test_means2d_gradient_is_retained():
    scene = random_scene(12)
    scene["means"].requires_grad_(True)
    image, _, meta = rasterize(*scene_args(scene))
    meta["means2d"].retain_grad()
    image.sum().backward()
    visible = (meta["radii"] > 0).all(-1)
    assert meta["means2d"].grad.shape == meta["means2d"].shape
    assert meta["means2d"].grad[visible].abs().sum() > 0
    assert (meta["means2d"].grad[~visible] == 0).all()  # exact: culled Gaussians take no part in the image


def test_compiled_matches_eager(monkeypatch):
    scene = random_scene(13, n=200, width=40, height=30, dtype=torch.float32)
    scene["scales"] = scene["scales"] * 0.5
    background = torch.rand(2, 3)

    def run(flag):
        monkeypatch.setenv("HOGSA_NO_COMPILE", flag)
        names = ("means", "quats", "scales", "opacities", "colors")
        inputs = {k: scene[k].clone().requires_grad_(True) for k in names}
        image, alpha, _ = rasterize(*inputs.values(), scene["viewmats"], scene["Ks"], 40, 30,
                                    backgrounds=background, render_mode="RGB+ED", rasterize_mode="antialiased")
        g = torch.Generator().manual_seed(1)
        ((image * torch.randn(image.shape, generator=g)).sum() + alpha.sum()).backward()
        return image, alpha, {k: v.grad for k, v in inputs.items()}

    image, alpha, grads = run("1")
    c_image, c_alpha, c_grads = run("0")
    torch.testing.assert_close(c_image, image, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c_alpha, alpha, atol=1e-6, rtol=1e-5)
    for k in grads:
        torch.testing.assert_close(c_grads[k], grads[k], atol=1e-4, rtol=1e-3, msg=k)


def test_compile_failure_falls_back_to_eager(monkeypatch):
    monkeypatch.setenv("HOGSA_NO_COMPILE", "0")
    monkeypatch.setattr(compiled, "_backend_failed", False)
    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", ("/nonexistent/c++",))
    monkeypatch.setattr(torch._inductor.config, "fx_graph_cache", False)

    @compiled.lazily_compiled
    def affine(x):
        return 2 * x + 1

    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        out = affine(torch.ones(3))
    torch.testing.assert_close(out, torch.full((3,), 3.0))
    assert compiled.compile_disabled()


@pytest.mark.parametrize("dtype, tile_size", [(torch.float64, 8), (torch.float32, 16), (torch.float32, 4)])
def test_compiled_compositing_matches_the_pytorch_compositing(monkeypatch, dtype, tile_size):
    """tile_composite.cpp and composite.py: two implementations of one compositing, images and gradients."""
    assert tile_composite.available(), "the C++ compositing kernel did not build"
    scene = random_scene(14, n=300, width=37, height=29, dtype=dtype)
    scene["scales"] = scene["scales"] * 0.6
    background = torch.rand(2, 3, dtype=dtype)

    def run(native: str):
        monkeypatch.setenv("HOGSA_NO_NATIVE", native)
        names = ("means", "quats", "scales", "opacities", "colors")
        inputs = {k: scene[k].clone().requires_grad_(True) for k in names}
        image, alpha, _ = rasterize(*inputs.values(), scene["viewmats"], scene["Ks"], 37, 29, tile_size=tile_size,
                                    backgrounds=background, render_mode="RGB+ED", rasterize_mode="antialiased")
        g = torch.Generator().manual_seed(2)
        ((image * torch.randn(image.shape, generator=g, dtype=dtype)).sum() + (alpha * 0.3).sum()).backward()
        return image, alpha, {k: v.grad for k, v in inputs.items()}

    image, alpha, grads = run("1")
    n_image, n_alpha, n_grads = run("0")
    assert (alpha > 0.9).any() and (alpha < 0.1).any(), "scene should have opaque and empty pixels"
    tol = {"atol": 1e-9, "rtol": 1e-7} if dtype == torch.float64 else {"atol": 2e-5, "rtol": 1e-4}
    torch.testing.assert_close(n_image, image, **tol)
    torch.testing.assert_close(n_alpha, alpha, **tol)
    for k in grads:
        torch.testing.assert_close(n_grads[k], grads[k], atol=1e-7 if dtype == torch.float64 else 2e-3,
                                   rtol=1e-5 if dtype == torch.float64 else 2e-3, msg=k)


def test_compiled_compositing_is_the_same_on_one_thread_and_two():
    """The kernel's tiles run in parallel, but each output is written by one tile in a fixed order."""
    scene = random_scene(15, n=300, width=40, height=30, dtype=torch.float32)
    with torch.no_grad():
        proj = project_gaussians(scene["means"], scene["quats"], scene["scales"], scene["viewmats"], scene["Ks"],
                                 40, 30, opacities=scene["opacities"])
        visible = rasterizer._pack_visible(proj, scene["opacities"].expand(2, -1))
        grid = make_grid(40, 30, 8, 2)
        isect = intersect_tiles(visible.means2d, visible.radii, visible.depths, visible.camera_ids, grid)
    features = scene["colors"].index_select(0, visible.gaussian_ids)
    threads, results = torch.get_num_threads(), []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            inputs = [x.clone().requires_grad_(True) for x in (visible.means2d, visible.conics, visible.opacities,
                                                                 features)]
            accum, alphas = tile_composite.tile_composite(isect, grid, 40, 30, *inputs)
            (accum.square().sum() + alphas.sum()).backward()
            results.append([accum, alphas] + [x.grad for x in inputs])
    finally:
        torch.set_num_threads(threads)
    assert (results[0][1] > 0.5).any()
    for one, two in zip(*results):
        assert torch.equal(one, two)


def test_failed_kernel_build_falls_back_to_pytorch(monkeypatch):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    tile_composite._extension.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="building tile_composite.cpp failed"):
            assert not tile_composite.available()
        scene = random_scene(16)
        image, _, _ = rasterize(*scene_args(scene))
        ref_image, _ = reference_rasterize(*scene_args(scene))
        torch.testing.assert_close(image, ref_image, atol=1e-4, rtol=0)
    finally:
        tile_composite._extension.cache_clear()


def test_a_build_lock_left_by_a_killed_process_does_not_stall_the_next_one(monkeypatch, tmp_path):
    """torch's build lock is a plain file: a process killed while building leaves it, and torch then waits
    for it forever. hogsa builds under an OS lock of its own and removes such a stale file first."""
    from torch.utils import cpp_extension

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    folder = tile_composite.build_directory()
    folder.mkdir(parents=True)
    (folder / tile_composite.TORCH_BUILD_LOCK).write_text("")  # the killed builder's
    seen = {}

    def load(name, sources, **kwargs):
        seen.update(kwargs, stale_lock=(folder / tile_composite.TORCH_BUILD_LOCK).exists())
        return "extension"

    monkeypatch.setattr(cpp_extension, "load", load)
    tile_composite._extension.cache_clear()
    try:
        assert tile_composite._extension() == "extension"
    finally:
        tile_composite._extension.cache_clear()
    assert seen["build_directory"] == str(folder) and folder.is_relative_to(tmp_path)
    assert not seen["stale_lock"]


# ------------------------------------------------------------------- hand-built, known answers

WIDTH, HEIGHT = 64, 48
K_HAND = torch.tensor([[[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
EYE = torch.eye(4, dtype=torch.float64)[None]


def splats(centres, colors, opacities, scale=0.02, viewmats=EYE):
    """Isotropic Gaussians at world centres [n, 3]; returns (image, alpha, meta)."""
    centres = torch.tensor(centres, dtype=torch.float64)
    n = len(centres)
    return rasterize(
        centres, torch.tensor([[1.0, 0, 0, 0]] * n, dtype=torch.float64),
        torch.full((n, 3), scale, dtype=torch.float64), torch.tensor(opacities, dtype=torch.float64),
        torch.tensor(colors, dtype=torch.float64), viewmats, K_HAND, WIDTH, HEIGHT,
    )


def brightest(alpha):
    """(row, col) of the largest alpha in a [1, H, W, 1] image."""
    flat = int(alpha[0, ..., 0].argmax())
    return divmod(flat, WIDTH)


def test_single_gaussian_lands_at_K_x_over_z():
    # u = 100·0.21/2 + 32 = 42.5 → column 42; v = 100·(-0.09)/2 + 24 = 19.5 → row 19
    _, alpha, meta = splats([[0.21, -0.09, 2.0]], [[1.0, 1.0, 1.0]], [0.9])
    assert brightest(alpha) == (19, 42)
    torch.testing.assert_close(meta["means2d"][0, 0], torch.tensor([42.5, 19.5], dtype=torch.float64))
    assert float(alpha.max()) == pytest.approx(0.9)  # σ = 0 at the pixel centre


def test_pixel_centres_are_at_half_integers():
    # on the optical axis the mean projects to (32, 24), the corner shared by four pixels whose centres
    # are 0.5 px away on each axis; σ_px = f·s/z = 1 px, so σ = ½·(0.5² + 0.5²)/(1 + eps2d)
    _, alpha, _ = splats([[0.0, 0.0, 2.0]], [[1.0, 1.0, 1.0]], [0.9])
    expected = 0.9 * math.exp(-0.25 / 1.3)
    for row, col in [(23, 31), (23, 32), (24, 31), (24, 32)]:
        assert float(alpha[0, row, col, 0]) == pytest.approx(expected, rel=1e-9)
    assert float(alpha.max()) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("x, y", [(0.3, 0.0), (-0.3, 0.0), (0.0, 0.2), (0.0, -0.2)])
def test_right_is_plus_x_and_down_is_plus_y(x, y):
    _, alpha, _ = splats([[x, y, 2.0]], [[1.0, 1.0, 1.0]], [0.9])
    a = alpha[0, ..., 0]
    right, left = a[:, WIDTH // 2:].sum(), a[:, : WIDTH // 2].sum()
    lower, upper = a[HEIGHT // 2:].sum(), a[: HEIGHT // 2].sum()
    if x:
        assert (right > left) == (x > 0)
    if y:
        assert (lower > upper) == (y > 0)


def test_viewmat_is_world_to_camera():
    # camera 0.2 m to the right of the origin: world→camera translation is -0.2 in x, so a point at
    # the world origin appears 100·(-0.2)/2 = -10 px left of the principal point
    view = EYE.clone()
    view[0, 0, 3] = -0.2
    _, alpha, meta = splats([[0.0, 0.0, 2.0]], [[1.0, 1.0, 1.0]], [0.9], viewmats=view)
    torch.testing.assert_close(meta["means2d"][0, 0], torch.tensor([22.0, 24.0], dtype=torch.float64))
    assert brightest(alpha)[1] in (21, 22)


@pytest.mark.parametrize("red_depth, blue_depth", [(2.0, 3.0), (3.0, 2.0)])
def test_nearer_gaussian_occludes(red_depth, blue_depth):
    image, _, _ = splats(
        [[0.0, 0.0, red_depth], [0.0, 0.0, blue_depth]], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
        [0.99, 0.99], scale=0.05,
    )
    centre = image[0, HEIGHT // 2, WIDTH // 2]
    near, far = (0, 2) if red_depth < blue_depth else (2, 0)
    assert centre[near] > 0.95 and centre[far] < 0.05


def test_background_fills_transmittance():
    # the mean projects onto the centre (32.5, 24.5) of pixel (24, 32): α = opacity = 0.5 there
    f64 = functools.partial(torch.tensor, dtype=torch.float64)
    image, _, _ = rasterize(
        f64([[0.01, 0.01, 2.0]]), f64([[1.0, 0, 0, 0]]), f64([[0.02, 0.02, 0.02]]), f64([0.5]),
        f64([[1.0, 0.0, 0.0]]), EYE, K_HAND, WIDTH, HEIGHT, backgrounds=f64([[0.0, 1.0, 0.0]]),
    )
    torch.testing.assert_close(image[0, 24, 32], torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    torch.testing.assert_close(image[0, 0, 0], torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))


# -------------------------------------------------------------------- projection, SH, gsplat


@needs_gsplat
@pytest.mark.parametrize("antialiased", [False, True])
def test_projection_matches_gsplat_torch_impl(antialiased):
    scene = random_scene(14, n=300, n_cameras=3)
    scene["means"] = scene["means"] * 2.0  # some behind the near plane or off-screen
    ours = project_gaussians(scene["means"], scene["quats"], scene["scales"], scene["viewmats"],
                             scene["Ks"], scene["width"], scene["height"], calc_compensations=antialiased)
    rot = quaternion_to_rotation_matrix(F.normalize(scene["quats"], dim=-1))
    covars = rot @ torch.diag_embed(scene["scales"] ** 2) @ rot.transpose(-1, -2)
    radii, means2d, depths, conics, comps = _fully_fused_projection(
        scene["means"], covars, scene["viewmats"], scene["Ks"], scene["width"], scene["height"],
        calc_compensations=antialiased,
    )
    valid = (radii > 0).all(-1)
    assert 0 < valid.sum() < valid.numel()
    # integer radii, the ceil of the 3σ extents: this seeded scene's nearest extent is 2e-4 px from an integer,
    # far above float64 rounding, so both implementations round it the same way
    assert torch.equal(ours.radii, radii.int())
    torch.testing.assert_close(ours.means2d[valid], means2d[valid])
    torch.testing.assert_close(ours.depths, depths)
    torch.testing.assert_close(ours.conics[valid], conics[valid])
    if antialiased:
        torch.testing.assert_close(ours.compensations[valid], comps[valid])


@needs_gsplat
@pytest.mark.parametrize("degree", [1, 2, 3])
def test_sh_matches_gsplat(degree):
    g = torch.Generator().manual_seed(degree)
    dirs = torch.randn(500, 3, generator=g, dtype=torch.float64)
    coeffs = torch.randn(500, 16, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(eval_sh(degree, dirs, coeffs), _spherical_harmonics(degree, dirs, coeffs))


def test_sh_degree_zero_is_the_plain_colour_path():
    scene = random_scene(15)
    sh0 = rgb_to_sh_dc(scene["colors"])
    plain = rasterize(*scene_args(scene))[0]
    scene["colors"] = sh0[:, None, :]
    via_sh = rasterize(*scene_args(scene), sh_degree=0)[0]
    torch.testing.assert_close(via_sh, plain)


def test_sh_colours_invert_the_dc_coefficients_and_clamp_at_zero():
    rgb = torch.rand(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dirs = torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    dc = rgb_to_sh_dc(rgb)
    torch.testing.assert_close(dc, (rgb - 0.5) / 0.28209479177387814)  # Y_0^0 = 1 / (2√π)
    torch.testing.assert_close(sh_colors(0, dirs, dc[:, None, :]), rgb)  # degree 0: any direction
    higher = torch.cat([dc[:, None, :], torch.zeros(50, 8, 3, dtype=dc.dtype)], dim=1)  # degree 2, no view dependence
    torch.testing.assert_close(sh_colors(2, dirs, higher), rgb)
    assert (sh_colors(0, dirs, torch.full((50, 1, 3), -2.0, dtype=torch.float64)) == 0).all()  # 0.5 − 0.56 < 0


def test_sh_colour_uses_direction_from_camera_centre():
    """sh_degree 3 equals the plain path fed with max(SH(mean - camera centre) + 0.5, 0), per camera."""
    scene = random_scene(16, n_cameras=2)
    coeffs = 0.3 * torch.randn(len(scene["means"]), 16, 3, generator=torch.Generator().manual_seed(0),
                               dtype=torch.float64)
    centres = torch.linalg.inv(scene["viewmats"])[:, :3, 3]
    per_camera = torch.stack([(eval_sh(3, scene["means"] - c, coeffs) + 0.5).clamp(min=0) for c in centres])
    scene["colors"] = per_camera  # [C, N, 3]
    plain = rasterize(*scene_args(scene))[0]
    scene["colors"] = coeffs
    via_sh = rasterize(*scene_args(scene), sh_degree=3)[0]
    torch.testing.assert_close(via_sh, plain)


# ---------------------------------------------------------------------------- API and dispatch


def test_meta_shapes_unpacked_and_packed():
    scene = random_scene(17, n=50, n_cameras=2)
    _, _, meta = rasterize(*scene_args(scene))
    assert meta["radii"].shape == (2, 50, 2) and meta["radii"].dtype == torch.int32
    assert meta["means2d"].shape == (2, 50, 2) and meta["depths"].shape == (2, 50)
    assert meta["conics"].shape == (2, 50, 3) and meta["opacities"].shape == (2, 50)
    assert meta["isect_offsets"].shape == (2, meta["tile_height"], meta["tile_width"])
    _, _, packed = rasterize(*scene_args(scene), packed=True)
    visible = (meta["radii"] > 0).all(-1)
    nnz = int(visible.sum())
    assert packed["means2d"].shape == (nnz, 2) and packed["radii"].shape == (nnz, 2)
    torch.testing.assert_close(packed["means2d"], meta["means2d"][visible])
    torch.testing.assert_close(packed["depths"], meta["depths"][packed["camera_ids"], packed["gaussian_ids"]])


def test_rejects_bad_arguments():
    scene = random_scene(18)
    with pytest.raises(ValueError, match="render_mode"):
        rasterize(*scene_args(scene), render_mode="RGBD")
    with pytest.raises(ValueError, match="rasterize_mode"):
        rasterize(*scene_args(scene), rasterize_mode="fast")
    scene["quats"] = scene["quats"][:, :3]
    with pytest.raises(ValueError, match="quats"):
        rasterize(*scene_args(scene))


def test_rejects_devices_other_than_cpu_and_cuda():
    scene = {k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in random_scene(19).items()}
    with pytest.raises(ValueError, match="meta"):
        rasterize(*scene_args(scene))


def test_missing_gsplat_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gsplat", None)  # makes `import gsplat` raise ImportError
    with pytest.raises(ImportError, match="pip install gsplat"):
        rasterizer._rasterize_gsplat(*scene_args(random_scene(20)), 0.01, 1e10, 0.0, 0.3, None, False, 16,
                                     None, "RGB", "classic")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA absent")
@pytest.mark.parametrize("render_mode", ["RGB", "RGB+ED"])
def test_cuda_dispatches_to_gsplat_and_matches_cpu(render_mode):
    scene = random_scene(21, n=200, width=40, height=30, dtype=torch.float32)
    background = torch.rand(2, 3)
    cpu_image, cpu_alpha, _ = rasterize(*scene_args(scene), backgrounds=background, render_mode=render_mode)
    cuda_args = [a.cuda() if isinstance(a, torch.Tensor) else a for a in scene_args(scene)]
    image, alpha, meta = rasterize(*cuda_args, backgrounds=background.cuda(), render_mode=render_mode)
    assert image.is_cuda and meta["radii"].shape == (2, 200, 2)
    torch.testing.assert_close(image.cpu(), cpu_image, atol=1e-3, rtol=0)
    torch.testing.assert_close(alpha.cpu(), cpu_alpha, atol=1e-3, rtol=0)
