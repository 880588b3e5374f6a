import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hogsa.hogs.binding import LR_KEYS, MeshGaussians, barycentric_weights, bind_gaussians, face_frames
from hogsa.render.sh import SH_C0

# A small, non-planar, asymmetric open mesh: 4 faces around vertex 0; vertex 5 belongs to face 3 only.
VERTS = torch.tensor(
    [[0.0, 0.0, 0.3], [1.0, 0.1, 0.0], [0.2, 1.1, 0.1], [-0.9, 0.3, -0.2], [-0.1, -1.2, 0.2], [0.9, -1.0, 0.5]],
    dtype=torch.float64,
)
FACES = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [1, 0, 5]])


def _model(k=2, **kwargs) -> MeshGaussians:
    return MeshGaussians(FACES, torch.Generator().manual_seed(0), gaussians_per_face=k, **kwargs).double()


def _barycentric(points, tri):
    """Barycentric coordinates [..., 3] of points [..., 3] w.r.t. triangles [..., 3, 3], plus plane distance."""
    e1, e2, d = tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :], points - tri[..., 0, :]
    g = torch.stack([torch.stack([(e1 * e1).sum(-1), (e1 * e2).sum(-1)], -1),
                     torch.stack([(e2 * e1).sum(-1), (e2 * e2).sum(-1)], -1)], -2)
    b23 = torch.linalg.solve(g, torch.stack([(d * e1).sum(-1), (d * e2).sum(-1)], -1))
    normal = torch.nn.functional.normalize(torch.cross(e1, e2, dim=-1), dim=-1)
    return torch.cat([1 - b23.sum(-1, keepdim=True), b23], -1), (d * normal).sum(-1)


def _per_gaussian_triangles(verts, k):
    return verts[FACES].repeat_interleave(k, dim=0)  # [F·k, 3, 3], Gaussian n = f·k + j


def test_gaussians_lie_on_and_inside_their_faces():
    model = _model(k=3)
    g = model.gaussians(VERTS)
    assert g.means.shape == (12, 3) and g.quats.shape == (12, 4) and g.scales.shape == (12, 3)
    assert g.opacities.shape == (12,) and g.sh.shape == (12, 16, 3)
    bary, dist = _barycentric(g.means, _per_gaussian_triangles(VERTS, 3))
    assert dist.abs().max() < 1e-12
    assert (bary > -1e-12).all()
    torch.testing.assert_close(bary.sum(-1), torch.ones(12, dtype=torch.float64))
    torch.testing.assert_close(bary, barycentric_weights(model.bary_logits).reshape(12, 3))


def test_frames_orthonormal_normal_first_second_axis_toward_v1():
    R, ext = face_frames(VERTS, FACES)
    torch.testing.assert_close(R.transpose(-1, -2) @ R, torch.eye(3, dtype=torch.float64).expand(4, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(4, dtype=torch.float64))
    tri = VERTS[FACES]
    v1, v2, v3 = tri.unbind(-2)
    m = tri.mean(-2)
    cross = torch.cross(v2 - v1, v3 - v1, dim=-1)
    torch.testing.assert_close(R[..., 0], cross / cross.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(R[..., 1], (v1 - m) / (v1 - m).norm(dim=-1, keepdim=True))
    # extents: the reference's (|v1 − m|/2, distance of v3 − m from the r2 line /2)
    d3 = v3 - m
    across = d3 - (d3 * R[..., 1]).sum(-1, keepdim=True) * R[..., 1]
    torch.testing.assert_close(ext, torch.stack([(v1 - m).norm(dim=-1), across.norm(dim=-1)], -1) / 2)


def test_hand_computed_frame():
    verts = torch.tensor([[0.0, 0, 0], [3, 0, 0], [0, 3, 0]], dtype=torch.float64)  # m = (1, 1, 0)
    R, ext = face_frames(verts, torch.tensor([[0, 1, 2]]))
    s = 2 ** -0.5
    expected = torch.tensor([[0, -s, s], [0, -s, -s], [1, 0, 0]], dtype=torch.float64)  # columns n, r2, r3
    torch.testing.assert_close(R[0], expected)
    # |v1 − m| = √2; v3 − m = (−1, 2, 0) has component 3/√2 across r2
    torch.testing.assert_close(ext[0], torch.tensor([s, 1.5 * s], dtype=torch.float64))


def test_weights_stay_on_simplex_after_arbitrary_updates():
    logits = torch.randn(50, 2, 3, dtype=torch.float64) * 1e6
    logits[0] = -torch.rand(2, 3, dtype=torch.float64)  # all negative: uniform, not 0/0
    for a in (logits, torch.zeros(3, 2, 3), torch.full((3, 2, 3), 1e30)):
        w = barycentric_weights(a)
        assert torch.isfinite(w).all() and (w > 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones_like(w[..., 0]))
    torch.testing.assert_close(barycentric_weights(logits)[0], torch.full((2, 3), 1 / 3, dtype=torch.float64))

    model = _model()
    opt = torch.optim.SGD(model.param_groups({key: 1e4 for key in LR_KEYS}))
    for _ in range(3):
        g = model.gaussians(VERTS)
        (g.means * torch.randn_like(g.means)).sum().backward()
        opt.step()
        opt.zero_grad()
    w = barycentric_weights(model.bary_logits)
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w[..., 0]))
    bary, dist = _barycentric(model.gaussians(VERTS).means, _per_gaussian_triangles(VERTS, 2))
    assert dist.abs().max() < 1e-9 and (bary > -1e-9).all()


def test_rigid_motion_carries_gaussians():
    model = _model()
    Q = torch.as_tensor(Rotation.from_rotvec([0.3, -1.2, 2.0]).as_matrix())
    t = torch.tensor([0.1, -0.4, 2.0], dtype=torch.float64)
    moved = VERTS @ Q.T + t
    g0, g1 = model.gaussians(VERTS), model.gaussians(moved)
    torch.testing.assert_close(g1.means, g0.means @ Q.T + t)
    torch.testing.assert_close(g1.scales, g0.scales)
    torch.testing.assert_close(face_frames(moved, FACES)[0], Q @ face_frames(VERTS, FACES)[0])
    R0 = torch.as_tensor(Rotation.from_quat(g0.quats.roll(-1, -1).detach().numpy()).as_matrix())
    R1 = torch.as_tensor(Rotation.from_quat(g1.quats.roll(-1, -1).detach().numpy()).as_matrix())
    torch.testing.assert_close(R1, Q @ R0)


def test_non_rigid_deformation_moves_only_the_touched_face():
    model = _model()
    moved = VERTS.clone()
    moved[5] *= 1.7  # vertex 5 belongs to face 3 only
    g0, g1 = model.gaussians(VERTS), model.gaussians(moved)
    for a, b in zip(g0[:3], g1[:3]):  # means, quats, scales
        torch.testing.assert_close(a[:6], b[:6])  # faces 0-2: Gaussians 0..5
        assert (a[6:] - b[6:]).abs().max() > 1e-3
    bary0, _ = _barycentric(g0.means, _per_gaussian_triangles(VERTS, 2))
    bary1, dist = _barycentric(g1.means, _per_gaussian_triangles(moved, 2))
    torch.testing.assert_close(bary1, bary0)
    assert dist.abs().max() < 1e-12


def test_batched_vertices_match_unbatched():
    model = _model()
    batch = torch.stack([VERTS, VERTS * 2.0, VERTS + 1.0])[None]  # [1, 3, V, 3]
    g = model.gaussians(batch)
    assert g.means.shape == (1, 3, 8, 3) and g.opacities.shape == (1, 3, 8) and g.sh.shape == (1, 3, 8, 16, 3)
    for i, verts in enumerate([VERTS, VERTS * 2.0, VERTS + 1.0]):
        single = model.gaussians(verts)
        for a, b in zip(single, g):
            torch.testing.assert_close(b[0, i], a)


def test_quaternions_unit_wxyz_match_rotation_matrices():
    verts = torch.randn(30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    faces = torch.randint(0, 30, (200, 3), generator=torch.Generator().manual_seed(2))
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    bary = barycentric_weights(torch.rand(len(faces), 2, 3, dtype=torch.float64))
    _, quats, _ = bind_gaussians(verts, faces, bary, torch.ones(len(faces), 2, 3, dtype=torch.float64), 1e-8)
    torch.testing.assert_close(quats.norm(dim=-1), torch.ones(len(quats), dtype=torch.float64))
    R = face_frames(verts, faces)[0].repeat_interleave(2, dim=0)
    xyzw = quats.roll(-1, dims=-1).numpy()
    np.testing.assert_allclose(Rotation.from_quat(xyzw).as_matrix(), R.numpy(), atol=1e-10)
    ref = Rotation.from_matrix(R.numpy()).as_quat()  # xyzw, equal up to sign
    np.testing.assert_allclose(np.abs((ref * xyzw).sum(-1)), 1.0, atol=1e-10)
    # identity frame ↔ (1, 0, 0, 0): normal +x, v1 − m along +y
    tri = torch.tensor([[0.0, 2.0, 0.0], [0.0, -1.0, 1.0], [0.0, -1.0, -1.0]], dtype=torch.float64)
    one = torch.ones(1, 1, 3, dtype=torch.float64)
    _, q, _ = bind_gaussians(tri, torch.tensor([[0, 1, 2]]), one / 3, one, 1e-8)
    torch.testing.assert_close(q[0], torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64))


def test_covariance_flat_along_normal():
    model = _model()
    with torch.no_grad():
        model.log_scale_factors.normal_(0.0, 0.5)
    g = model.gaussians(VERTS)
    R = torch.as_tensor(Rotation.from_quat(g.quats.roll(-1, -1).detach().numpy()).as_matrix())
    cov = R @ torch.diag_embed(g.scales.detach() ** 2) @ R.transpose(-1, -2)
    evals, evecs = torch.linalg.eigh(cov)
    normals = face_frames(VERTS, FACES)[0][..., 0].repeat_interleave(2, dim=0)
    torch.testing.assert_close((evecs[..., 0] * normals).sum(-1).abs(), torch.ones(8, dtype=torch.float64))
    assert (evals[..., 0] < 1e-14).all() and (evals[..., 1] > 1e-4).all()


def test_degenerate_faces_are_finite():
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [1, 1, 1]], dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [3, 3, 3], [0, 1, 3]])  # collinear, coincident, regular
    means, quats, scales = bind_gaussians(verts, faces, torch.full((3, 2, 3), 1 / 3.0, dtype=torch.float64),
                                          torch.ones(3, 2, 3, dtype=torch.float64), 1e-8)
    for x in (means, quats, scales):
        assert torch.isfinite(x).all()
    (means.sum() + quats.sum() + scales.sum()).backward()
    assert torch.isfinite(verts.grad).all()
    # zero-area faces have no extent across. Exact: the integer corners make the cross product exactly 0, so the
    # normal and r3 are 0 vectors and s3 = clamp(0) = 0 with no rounding anywhere
    assert (scales[:4, 2] == 0).all()


def test_gradcheck_face_frames_and_bind_gaussians():
    gen = torch.Generator().manual_seed(3)
    verts = torch.randn(4, 3, dtype=torch.float64, generator=gen).requires_grad_()
    faces = torch.tensor([[0, 1, 2], [2, 1, 3]])
    bary = barycentric_weights(torch.rand(2, 2, 3, dtype=torch.float64, generator=gen)).requires_grad_()
    factors = (torch.rand(2, 2, 3, dtype=torch.float64, generator=gen) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: face_frames(v, faces), (verts,))
    assert torch.autograd.gradcheck(lambda v, b, s: bind_gaussians(v, faces, b, s, 1e-3), (verts, bary, factors))


def test_gradients_reach_vertices_and_every_parameter():
    model = _model(sh_degree=1)
    verts = VERTS.clone().requires_grad_()
    g = model.gaussians(verts)
    loss = sum((x * torch.randn_like(x)).sum() for x in g)
    loss.backward()
    assert verts.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_initialisation_and_param_groups():
    model = MeshGaussians(FACES, torch.Generator().manual_seed(0), init_opacity=0.9, sh_degree=0)
    g = model.gaussians(VERTS.float())
    assert torch.equal(0.5 + SH_C0 * g.sh[:, 0], torch.full((8, 3), 0.5))  # exact: zero coefficients, 0.5 grey
    torch.testing.assert_close(g.opacities, torch.full((8,), 0.9))
    assert g.sh.shape == (8, 1, 3)
    # ρ = 1 at init: scales are exactly (flat_eps, s2, s3)
    ext = face_frames(VERTS.float(), FACES)[1].repeat_interleave(2, dim=0)
    torch.testing.assert_close(g.scales, torch.cat([torch.full((8, 1), 1e-8), ext], -1))
    # same seed → same barycentrics, in [0, 1) before activation
    again = MeshGaussians(FACES, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again.bary_logits, model.bary_logits)
    assert (model.bary_logits >= 0).all() and (model.bary_logits < 1).all()

    lrs = {"bary": 1e-3, "scale": 5e-3, "opacity": 5e-2, "sh_dc": 2.5e-3, "sh_rest": 2.5e-3 / 20}
    groups = model.param_groups(lrs)
    assert [grp["name"] for grp in groups] == list(LR_KEYS)
    assert sum(p.numel() for grp in groups for p in grp["params"]) == sum(p.numel() for p in model.parameters())
    assert {grp["name"]: grp["lr"] for grp in groups} == lrs  # exact: the rates are passed through untouched
    torch.optim.Adam(groups)
    with pytest.raises(ValueError, match="keys"):
        model.param_groups({"bary": 1e-3})
    with pytest.raises(ValueError, match="faces"):
        MeshGaussians(FACES.int(), torch.Generator())
