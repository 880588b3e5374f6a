"""HOGS, its 3DGS ablation and their training on a tiny synthetic scene: the two open hands and a
subdivided 6 cm cube, seen by small cameras (eager rasterizer, no compilation)."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import trimesh
from safetensors.torch import load_file

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.data.crops import box_from_mask, crop_view
from hogsa.data.groups import GroupData, Sample
from hogsa.data.rig import look_at
from hogsa.data.schema import Camera
from hogsa.geometry import axis_angle_to_matrix, project_points
from hogsa.hand import HandModel, HandPose
from hogsa.hogs import train as hogs_train
from hogsa.hogs.binding import barycentric_weights, face_frames
from hogsa.hogs.evaluate import evaluate, evaluate_held_out
from hogsa.hogs.model import (
    HOGS,
    HOGS_LR_KEYS,
    PART_LABELS,
    PARTS,
    GaussianScene,
    concat_poses,
    gaussian_normals,
    merge_parts,
    pose_hand,
    pose_object,
    shaded_colors,
)
from hogsa.hogs.pointcloud import (
    PointCloudGaussians,
    nearest_rotation,
    object_vertex_transforms,
    quaternion_multiply,
)
from hogsa.hogs.poses import PoseCorrections, fit_corrections, frame_name
from hogsa.hogs.train import (
    CHECKPOINT,
    HOGSConfig,
    HOGSLearningRates,
    HOGSReportConfig,
    PointLearningRates,
    PoseLearningRates,
    build_model,
    build_optimizer,
    checkpoint_parameters,
    frame_keys,
    image_loss,
    pose_corrections,
    train_hogs,
    train_step,
)
from hogsa.metrics import psnr
from hogsa.render import rasterize
from hogsa.training import ITERATION, batch_indices, checkpoint_metadata, load_checkpoint

SIZE = (40, 32)  # W, H: not square, so a transposed image would show


@pytest.fixture(autouse=True)
def _eager_rasterizer(monkeypatch):
    monkeypatch.setenv("HOGSA_NO_COMPILE", "1")  # tiny scenes: compiling would cost more than it saves


@pytest.fixture(scope="module")
def hands() -> dict[str, HandModel]:
    return {side: HandModel(side) for side in ("right", "left")}


@pytest.fixture(scope="module")
def cube() -> ArticulatedObject:
    """A 6 cm cube around the origin, subdivided twice; its upper half (z > 0) is the articulated top."""
    mesh = trimesh.creation.box(extents=(0.06, 0.06, 0.06))
    vertices, faces = trimesh.remesh.subdivide(mesh.vertices, mesh.faces)
    vertices, faces = trimesh.remesh.subdivide(vertices, faces)
    vertices = torch.tensor(vertices, dtype=torch.float32)
    faces = torch.tensor(faces, dtype=torch.int64)
    return ArticulatedObject(
        name="cube", vertices=vertices, faces=faces, top_mask=vertices[:, 2] > 0,
        face_uvs=torch.zeros(len(faces), 3, 2), texture=torch.full((1, 1, 3), 128, dtype=torch.uint8),
        articulated=True, diameter=0.06 * 3**0.5,
    )


def _poses(betas_scale: float = 0.0) -> tuple[HandPose, HandPose, ObjectPose]:
    """One-row poses: right hand at +x, left hand at −x (the open hands reach 19 cm inwards from the wrist),
    the cube at the origin turned a little: the three parts apart."""
    generator = torch.Generator().manual_seed(1)

    def hand(x: float) -> HandPose:
        return HandPose(global_orient=torch.tensor([[-1.2, 0.0, 0.0]]),
                        hand_pose=0.1 * torch.rand(1, 45, generator=generator), betas=betas_scale * torch.ones(1, 10),
                        transl=torch.tensor([[x, 0.0, 0.0]]))

    return hand(0.25), hand(-0.25), ObjectPose(torch.tensor([0.3]), torch.tensor([[0.0, 0.0, 0.4]]), torch.zeros(1, 3))


def _camera(azimuth_deg: float = -90.0, size: tuple[int, int] = SIZE, distance: float = 0.7) -> Camera:
    azimuth, elevation = np.radians(azimuth_deg), np.radians(30.0)
    direction = [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
    position = distance * np.array(direction)
    width, height = size
    K = np.array([[1.2 * width, 0, width / 2], [0, 1.2 * width, height / 2], [0, 0, 1.0]])
    return Camera(K=K, world2cam=look_at(position, np.zeros(3)), width=width, height=height)


def part_labels(model: GaussianScene, camera: Camera, right: HandPose, left: HandPose,
                obj: ObjectPose) -> torch.Tensor:  # [H, W] uint8: 0 background, 1 right, 2 left, 3 object
    """The part mask of a render (as the datasets give it): one-hot colours per part, no background; a pixel
    takes the part of largest weight where the accumulated alpha exceeds 0.5."""
    gaussians = model.posed_gaussians(right, left, obj)
    merged = merge_parts(gaussians)
    which = torch.repeat_interleave(torch.arange(len(PARTS)), torch.tensor([len(g.opacities) for g in gaussians.values()]))
    viewmat = torch.as_tensor(camera.world2cam, dtype=torch.float32)[None]
    K = torch.as_tensor(camera.K, dtype=torch.float32)[None]
    weights, alpha, _ = rasterize(merged.means, merged.quats, merged.scales, merged.opacities,
                                  torch.nn.functional.one_hot(which, len(PARTS)).float(), viewmat, K, camera.width,
                                  camera.height)
    labels = torch.tensor(PART_LABELS, dtype=torch.uint8)[weights[0].argmax(dim=-1)]
    return torch.where(alpha[0, ..., 0] > 0.5, labels, 0).to(torch.uint8)


def _hogs(hands, cube, seed: int = 0, sh_degree: int = 1, shading: str = "none") -> HOGS:
    return HOGS(hands, cube, torch.Generator().manual_seed(seed), gaussians_per_face=2,
                sh_degree=sh_degree, init_opacity=0.9, shading=shading)


def _config(**changes) -> HOGSConfig:
    cfg = HOGSConfig(
        groups=["s00/cube"], workers=1, gaussians_per_face=2, sh_degree=1, init_opacity=0.5,
        shading="sh2", crop=32, crop_margin=0.05, held_out_views=[8], held_out_every=5, color_init_views=0,
        iterations=30, batch_views=2,
        lr_hogs=HOGSLearningRates(vertices=1e-4, bary=1e-3, scale=5e-3, opacity=5e-2, sh_dc=2e-2, sh_rest=1e-3,
                                  lighting=2e-2),
        lr_3dgs=PointLearningRates(position=1e-4, rotation=1e-3, scale=5e-3, opacity=5e-2, sh_dc=2e-2, sh_rest=1e-3,
                                   lighting=2e-2),
        refine_poses=True, lr_poses=PoseLearningRates(angles=1e-3, offsets=1e-4), pose_fit_iterations=2,
        lambda_ssim=0.2, lambda_r=0.5, eval_every=1000, checkpoint_every=1000,
        lpips_weights=None,
        report=HOGSReportConfig(dpi=60, image_inches=1.0, held_out_shown=2, orbit_views=4, orbit_fov_deg=40.0,
                                orbit_elevation_deg=25.0, novel_poses_elevation_deg=30.0, object_opening=0.6),
    )
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="module")
def scene(hands, cube) -> GroupData:
    """Four views of a 'true' HOGS, each part in its own colour striped along x: images and part masks as
    the data give them."""
    truth = _hogs(hands, cube, seed=7, sh_degree=1)
    right, left, obj = _poses()
    with torch.no_grad():
        means = truth.posed_gaussians(right, left, obj)
    for part, base in zip(PARTS, ([0.9, 0.3, 0.2], [0.2, 0.8, 0.3], [0.2, 0.3, 0.9])):
        stripes = 0.6 + 0.4 * torch.sin(80.0 * means[part].means[:, :1])  # [N, 1]
        truth.set_colors(part, torch.tensor(base) * stripes, torch.ones(len(stripes), dtype=torch.bool))
    samples = []
    for view, azimuth in enumerate((-90.0, -60.0, -120.0, -75.0), start=1):
        camera = _camera(azimuth)
        with torch.no_grad():
            image = truth.render(camera, right, left, obj).rgb.clamp(0, 1)
            mask = part_labels(truth, camera, right, left, obj)
        samples.append(Sample(image, mask, camera, right, left, obj, "s00/cube_grab_01", view, 0))
    return GroupData("s00/cube", hands, cube, [], samples, samples[:2])


# --------------------------------------------------------------------------- #
# The model
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kind", ["hogs", "3dgs"])
def test_frames_rendered_together_are_the_frames_rendered_alone(hands, cube, kind):
    """render_frames of two frames (other poses, other cameras) in one pass: each frame's render and the
    gradients of both as two render calls give them."""
    def model() -> GaussianScene:
        if kind == "hogs":
            return _hogs(hands, cube, shading="sh2")
        return PointCloudGaussians(hands, cube, sh_degree=1, init_opacity=0.5, shading="sh2")

    first = _poses()
    second = (dataclasses.replace(first[0], hand_pose=first[0].hand_pose + 0.2),
              dataclasses.replace(first[1], transl=first[1].transl + 0.02),
              dataclasses.replace(first[2], articulation=first[2].articulation + 0.4))
    cameras = [_camera(-90.0), _camera(-60.0)]
    together, alone = model(), model()
    alone.load_state_dict(together.state_dict())
    for m in (together, alone):
        m.lighting.data[1:] += 0.1  # a light that varies with the normal
    pred = together.render_frames(cameras, *(concat_poses(rows) for rows in zip(first, second))).rgb
    singles = [alone.render(camera, *poses).rgb for camera, poses in zip(cameras, (first, second))]
    weights = torch.rand(pred.shape, generator=torch.Generator().manual_seed(0))
    (pred * weights).sum().backward()
    sum((single * w).sum() for single, w in zip(singles, weights)).backward()
    for b in range(2):
        torch.testing.assert_close(pred[b], singles[b], atol=1e-5, rtol=1e-4)
    assert pred[0].abs().sum() > 0 and not torch.allclose(pred[0], pred[1], atol=1e-3)
    grads = dict(alone.named_parameters())
    for name, p in together.named_parameters():
        if p.grad is not None or grads[name].grad is not None:
            torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-5, rtol=1e-3, msg=name)


def test_render_shapes_parts_and_depth(hands, cube):
    model = _hogs(hands, cube)
    right, left, obj = _poses()
    camera = _camera()
    with torch.no_grad():
        out = model.render(camera, right, left, obj, background=(0.2, 0.4, 0.6))
        labels = part_labels(model, camera, right, left, obj)
        posed = {part: v[0] for part, v in model.posed_vertices(right, left, obj).items()}
    height, width = SIZE[1], SIZE[0]
    assert out.rgb.shape == (3, height, width) and out.alpha.shape == (height, width)  # networks' layout
    assert out.depth.shape == (height, width)
    assert set(labels.unique().tolist()) == {0, 1, 2, 3}
    # each part is drawn where that part's centre projects (the parts are apart from this view)
    K, world2cam = torch.tensor(camera.K, dtype=torch.float32), torch.tensor(camera.world2cam, dtype=torch.float32)
    for label, part in enumerate(PARTS, start=1):
        uv, z = project_points(posed[part].mean(0, keepdim=True), K, world2cam)
        col, row = uv[0].floor().long().tolist()
        assert labels[row, col] == label, part
        assert 0.3 < float(out.depth[row, col]) < float(z[0]) + 0.03  # the surface in front of the centre
    # the background shows where nothing is
    empty = out.alpha < 1e-3
    assert empty.any() and torch.allclose(out.rgb[:, empty], torch.tensor([[0.2], [0.4], [0.6]]), atol=1e-5)
    assert (labels[empty] == 0).all()


def test_gradients_reach_vertex_offsets_and_every_gaussian_parameter(hands, cube):
    model = _hogs(hands, cube, shading="sh2")
    out = model.render(_camera(), *_poses())
    target = torch.rand_like(out.rgb, generator=torch.Generator().manual_seed(0))
    ((out.rgb - target).abs().mean() + model.regularizer()).backward()
    for name, param in model.trainable_parameters().items():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        if "deltas" in name or "sh_rest" not in name:
            assert param.grad.abs().sum() > 0, name
    groups = model.param_groups(dict.fromkeys(HOGS_LR_KEYS, 1e-3))
    grouped = {id(p) for g in groups for p in g["params"]}
    assert grouped == {id(p) for p in model.trainable_parameters().values()}


def test_shading_starts_neutral_and_uses_the_face_normals(hands, cube):
    poses, camera = _poses(), _camera()
    plain, shaded = _hogs(hands, cube, shading="none"), _hogs(hands, cube, shading="sh2")
    with torch.no_grad():
        assert torch.allclose(plain.render(camera, *poses).rgb, shaded.render(camera, *poses).rgb, atol=1e-5)
        gaussians = shaded.posed_gaussians(*poses)
        posed = {part: v[0] for part, v in shaded.posed_vertices(*poses).items()}
        rotations, _ = face_frames(posed["object"], cube.faces)
        face_normals = rotations[..., 0].repeat_interleave(2, dim=0)  # k = 2 Gaussians per face
        assert torch.allclose(gaussian_normals(gaussians["object"]), face_normals, atol=1e-5)
        # light from +z only: upward faces keep their colour, downward faces (seen from below) go dark
        shaded.lighting.zero_()
        shaded.lighting[0], shaded.lighting[2] = 0.5 / 0.28209479, 0.5 / 0.48860251  # 0.5 + 0.5·n_z
        merged = gaussians["object"]
        up = face_normals[:, 2] > 0.99
        below = torch.tensor([0.0, 0.0, -1.0])  # a camera under the cube sees the downward faces
        colours = shaded_colors(merged, torch.tensor([0.0, 0.0, 1.0]), 1, shaded.lighting)
        albedo = shaded_colors(merged, torch.tensor([0.0, 0.0, 1.0]), 1, plain_lighting())
        assert torch.allclose(colours[up], albedo[up], atol=1e-5)
        dark = shaded_colors(merged, below, 1, shaded.lighting)
        assert torch.allclose(dark[face_normals[:, 2] < -0.99], torch.zeros(1), atol=1e-5)


def plain_lighting() -> torch.Tensor:
    lighting = torch.zeros(9, 3)
    lighting[0] = 1 / 0.28209479177387814
    return lighting


def test_regularizer_is_mean_vertex_distance_to_template(hands, cube):
    model = _hogs(hands, cube)
    assert model.regularizer().item() == 0.0  # exact: the offsets start at exactly 0, and so does their norm
    with torch.no_grad():
        model.deltas["right"][5] = torch.tensor([0.003, 0.004, 0.0])  # 5 mm
        model.deltas["object"][0] = torch.tensor([0.0, 0.0, -0.002])  # 2 mm
    total = sum(model.template(part).shape[0] for part in PARTS)
    assert model.regularizer().item() == pytest.approx(0.007 / total, rel=1e-5)
    # exact: canonical() is template + deltas, the very float32 sum computed here
    assert torch.equal(model.canonical("right")[5], model.template("right")[5] + torch.tensor([0.003, 0.004, 0.0]))


def test_posing_carries_gaussians_with_the_mesh(hands, cube):
    model = _hogs(hands, cube)
    right, left, obj = _poses()
    with torch.no_grad():
        model.deltas["right"].normal_(std=0.001, generator=torch.Generator().manual_seed(0))
        before = model.posed_gaussians(right, left, obj)
        shift = torch.tensor([0.01, -0.02, 0.03])
        moved = model.posed_gaussians(dataclasses.replace(right, transl=right.transl + shift), left,
                                      dataclasses.replace(obj, transl=obj.transl + shift))
        assert torch.allclose(moved["right"].means, before["right"].means + shift, atol=1e-6)
        assert torch.allclose(moved["object"].means, before["object"].means + shift, atol=1e-6)
        assert torch.equal(moved["left"].means, before["left"].means)  # exact: same inputs, same computation
        # the right hand's Gaussians sit at their barycentric points on the skinned TRAINED canonical mesh
        skinned = pose_hand(hands["right"], right, model.canonical("right"))[0]
        surface = model.surfaces["right"]
        expected = torch.einsum("fjc,fcx->fjx", barycentric_weights(surface.bary_logits), skinned[surface.faces])
        assert torch.allclose(before["right"].means, expected.reshape(-1, 3), atol=1e-6)
        # opening the lid moves only the top part's Gaussians
        opened = model.posed_gaussians(right, left, dataclasses.replace(obj, articulation=obj.articulation + 0.5))
        top_faces = cube.top_mask[cube.faces].all(dim=1).repeat_interleave(2)
        bottom_faces = (~cube.top_mask[cube.faces]).all(dim=1).repeat_interleave(2)
        change = (opened["object"].means - before["object"].means).norm(dim=-1)
        assert (change[top_faces] > 1e-3).all() and (change[bottom_faces] < 1e-6).all()


# --------------------------------------------------------------------------- #
# The 3DGS ablation
# --------------------------------------------------------------------------- #
def test_point_gaussians_follow_their_vertex_transform(hands, cube):
    model = PointCloudGaussians(hands, cube, sh_degree=1, init_opacity=0.5)
    right, left, obj = _poses(betas_scale=0.5)
    with torch.no_grad():
        posed = model.posed_gaussians(right, left, obj)
        # zero offsets: the Gaussians are the skinned vertices (the open hand has no pose correctives)
        assert torch.allclose(posed["right"].means, pose_hand(hands["right"], right)[0], atol=1e-6)
        assert torch.allclose(posed["left"].means, pose_hand(hands["left"], left)[0], atol=1e-6)
        assert torch.allclose(posed["object"].means, pose_object(cube, obj)[0], atol=1e-6)
        # an offset is carried by the vertex's transform: rotated with the part, not added as is
        offset = torch.tensor([0.01, 0.0, 0.0])
        model.points["object"].offsets[:] = offset
        shifted = model.posed_gaussians(right, left, obj)["object"].means
        rot = axis_angle_to_matrix(obj.rot)
        hinge = axis_angle_to_matrix(torch.tensor([0.0, 0.0, -1.0]) * obj.articulation)
        top, bottom = cube.top_mask, ~cube.top_mask
        assert torch.allclose(shifted[bottom] - posed["object"].means[bottom], rot @ offset, atol=1e-6)
        assert torch.allclose(shifted[top] - posed["object"].means[top], rot @ hinge @ offset, atol=1e-6)
        # rotations: identity canonical quaternions become the part's rotation
        quats = posed["object"].quats
        expected_top = quaternion_from(rot @ hinge)
        assert torch.allclose(_same_sign(quats[top]), _same_sign(expected_top.expand_as(quats[top])), atol=1e-5)


def test_vertex_transform_helpers():
    generator = torch.Generator().manual_seed(0)
    rotation = axis_angle_to_matrix(torch.randn(5, 3, generator=generator, dtype=torch.float64))
    noisy = rotation * 1.3 + 0.01 * torch.randn(5, 3, 3, generator=generator, dtype=torch.float64)
    nearest = nearest_rotation(noisy)
    eye = torch.eye(3, dtype=torch.float64).expand(5, 3, 3)
    assert torch.allclose(nearest @ nearest.transpose(-1, -2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(nearest), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(nearest, rotation, atol=0.05)
    a, b = quaternion_from(rotation[0]), quaternion_from(rotation[1])
    product = quaternion_from(rotation[0] @ rotation[1])
    assert torch.allclose(_same_sign(quaternion_multiply(a, b)), _same_sign(product), atol=1e-9)


def test_object_vertex_transforms_are_rigid_per_part(cube):
    pose = ObjectPose(torch.tensor([0.7]), torch.tensor([[0.2, -0.1, 0.5]]), torch.tensor([[0.1, 0.2, 0.3]]))
    transforms = object_vertex_transforms(cube, pose)[0]
    homogeneous = torch.cat([cube.vertices, torch.ones(len(cube.vertices), 1)], dim=1)
    moved = torch.einsum("vij,vj->vi", transforms, homogeneous)[:, :3]
    assert torch.allclose(moved, pose_object(cube, pose)[0], atol=1e-6)
    rotations = transforms[:, :3, :3]
    assert torch.allclose(rotations @ rotations.transpose(-1, -2), torch.eye(3).expand_as(rotations), atol=1e-5)


def quaternion_from(matrix: torch.Tensor) -> torch.Tensor:
    from kornia.geometry.conversions import rotation_matrix_to_quaternion

    return rotation_matrix_to_quaternion(matrix.contiguous())


def _same_sign(q: torch.Tensor) -> torch.Tensor:
    return q * torch.where(q[..., :1] < 0, -1.0, 1.0).to(q)


@pytest.mark.parametrize("shading", ["none", "sh2"])
def test_snapshot_rasterizes_to_the_render(hands, cube, shading, tmp_path):
    """bench/render.py's trained scene: what ``snapshot`` hands ``rasterize`` gives the model's own render."""
    model = _hogs(hands, cube, sh_degree=1, shading=shading)
    with torch.no_grad():
        for part in PARTS:
            model.surfaces[part].sh_rest.normal_(std=0.2, generator=torch.Generator().manual_seed(2))
        if shading == "sh2":
            model.lighting[1:].normal_(std=0.3, generator=torch.Generator().manual_seed(3))
    camera, poses = _camera(-70.0), _poses()
    scene = model.snapshot(camera, *poses)
    image, _, _ = rasterize(*(scene[k] for k in ("means", "quats", "scales", "opacities", "colors")),
                            scene["viewmat"][None], scene["K"][None], *scene["size"].tolist())
    with torch.no_grad():
        expected = model.render(camera, *poses).rgb
    assert torch.allclose(image[0], expected.permute(1, 2, 0), atol=1e-5)
    assert scene["size"].tolist() == [camera.width, camera.height]

    trained = hogs_train.TrainedScene(model, PoseCorrections([]))
    sample = Sample(expected, None, camera, *poses, "s00/cube_grab_01", 1, 0)
    hogs_train.export_scene(trained, sample, tmp_path / "scene.safetensors")
    stored = load_file(str(tmp_path / "scene.safetensors"))
    assert set(stored) == set(scene) and all(torch.equal(stored[k], scene[k]) for k in scene)  # a file copy: exact


# --------------------------------------------------------------------------- #
# Pose corrections
# --------------------------------------------------------------------------- #
FRAME = ("s00/cube_grab_01", 0)


def test_zero_corrections_leave_poses_and_a_rotation_turns_the_hand_about_its_wrist(hands, cube):
    right, left, obj = _poses()
    corrections = PoseCorrections([FRAME])
    same = corrections.apply(FRAME, right, left, obj)
    for before, after in zip((right, left, obj), same):
        for field in dataclasses.fields(before):
            assert torch.allclose(getattr(after, field.name), getattr(before, field.name), atol=1e-6), field.name
    assert corrections.apply(("s00/other", 0), right, left, obj) == (right, left, obj)

    with torch.no_grad():
        corrections.angles["s00|cube_grab_01|0"][0:3] = torch.tensor([0.0, 0.0, np.radians(10.0)], dtype=torch.float32)
        corrections.offsets["s00|cube_grab_01|0"][6:9] = torch.tensor([0.01, 0.0, -0.02])
        new_right, new_left, new_obj = corrections.apply(FRAME, right, left, obj)
        wrist = hands["right"](*right).joints[0, 0]
        rotation = axis_angle_to_matrix(torch.tensor([0.0, 0.0, np.radians(10.0)], dtype=torch.float32))
        expected = (pose_hand(hands["right"], right) - wrist) @ rotation.T + wrist
        assert torch.allclose(pose_hand(hands["right"], new_right), expected, atol=1e-5)
        assert torch.allclose(pose_hand(hands["left"], new_left), pose_hand(hands["left"], left), atol=1e-6)
        shifted = pose_object(cube, obj) + torch.tensor([0.01, 0.0, -0.02])
        assert torch.allclose(pose_object(cube, new_obj), shifted, atol=1e-6)
    assert corrections.magnitudes() == pytest.approx({"rotation_deg": 10.0 / 3**0.5, "translation_mm": 22.36 / 3**0.5},
                                                     rel=1e-3)


def test_corrections_take_one_row_poses_only():
    right, left, obj = _poses()
    two_rows = HandPose(*(torch.cat([field, field]) for field in right))
    with pytest.raises(ValueError, match=r"one-row axis-angle \[1, 3\], got \(2, 3\)"):
        PoseCorrections([FRAME]).apply(FRAME, two_rows, left, obj)


def test_adam_leaves_the_frames_absent_from_a_batch_untouched():
    other = ("s00/cube_grab_01", 1)
    corrections = PoseCorrections([FRAME, other])
    optimizer = torch.optim.Adam(corrections.param_groups({"angles": 1e-2, "offsets": 1e-2}))
    right, left, obj = _poses()
    for _ in range(3):
        posed = corrections.apply(FRAME, right, left, obj)
        loss = sum(p.transl.square().sum() + p.global_orient.square().sum() for p in posed[:2])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    assert corrections.angles["s00|cube_grab_01|0"].abs().sum() > 0
    # exact: a frame outside the batch gets no gradient, so Adam must leave its zeros untouched, not merely small
    assert corrections.angles["s00|cube_grab_01|1"].abs().sum() == 0
    assert corrections.offsets["s00|cube_grab_01|1"].abs().sum() == 0


def test_fitting_recovers_a_misannotated_object_pose_with_the_model_frozen(hands, cube):
    """Crops rendered at the true pose, annotation 12 mm off: fitting brings the object back."""
    truth = _hogs(hands, cube, seed=3)
    right, left, obj = _poses()
    with torch.no_grad():
        stripes = 0.5 + 0.4 * torch.sin(150.0 * truth.posed_gaussians(right, left, obj)["object"].means[:, :1])
        truth.set_colors("object", stripes.expand(-1, 3), torch.ones(len(stripes), dtype=torch.bool))
    cameras = [_camera(azimuth, size=(48, 48), distance=0.35) for azimuth in (-90.0, -50.0, -130.0)]
    for camera in cameras:
        camera.K[:2, 2] = 24.0  # the cube in the middle of each view
    with torch.no_grad():
        images = [truth.render(c, right, left, obj).rgb for c in cameras]
    offset = torch.tensor([0.012, 0.0, 0.0])
    annotated = dataclasses.replace(obj, transl=obj.transl + offset)
    samples = [Sample(image, None, c, right, left, annotated, FRAME[0], v, FRAME[1])
               for v, (image, c) in enumerate(zip(images, cameras))]
    corrections = PoseCorrections([FRAME])
    before = {name: p.clone() for name, p in truth.trainable_parameters().items()}
    fit_corrections(truth, corrections, {FRAME: samples}, lambda p, t: image_loss(p, t, 0.2),
                    {"angles": 1e-3, "offsets": 1e-3}, iterations=40, batch=2, seed=0, desc="fit")
    fitted = corrections.apply(FRAME, right, left, annotated)[2]
    assert (fitted.transl - obj.transl).norm() < 0.004  # from 12 mm off to under 4 mm
    assert all(torch.equal(p, before[name]) for name, p in truth.trainable_parameters().items())  # frozen: untouched
    assert all(p.requires_grad for p in truth.trainable_parameters().values())


def test_frames_fitted_together_end_where_each_fitted_alone_does(hands, cube):
    """fit_corrections fits every frame in one render per step; each frame's loss term and Adam state are
    its own, so two frames fitted together match each fitted by itself: the object's correction to 0.03 mm.
    (The hands, barely in these crops, get gradients of rounding size, which Adam's normalised steps turn
    into 0.1 mm of drift that differs with the summation order; they are not compared.)"""
    truth = _hogs(hands, cube, seed=3)
    right, left, obj = _poses()
    cameras = [_camera(azimuth, size=(32, 32), distance=0.35) for azimuth in (-90.0, -50.0, -130.0)]
    for camera in cameras:
        camera.K[:2, 2] = 16.0
    with torch.no_grad():
        images = [truth.render(c, right, left, obj).rgb for c in cameras]
    frames = [FRAME, (FRAME[0], 1)]
    offsets = [torch.tensor([0.010, 0.0, 0.0]), torch.tensor([0.0, -0.008, 0.004])]
    samples = {frame: [Sample(image, None, c, right, left, dataclasses.replace(obj, transl=obj.transl + offset),
                              frame[0], v, frame[1]) for v, (image, c) in enumerate(zip(images, cameras))]
               for frame, offset in zip(frames, offsets)}
    loss = lambda p, t: image_loss(p, t, 0.2)  # noqa: E731
    lr = {"angles": 1e-3, "offsets": 1e-3}
    together = PoseCorrections(frames)
    fit_corrections(truth, together, samples, loss, lr, iterations=12, batch=2, seed=0, desc="fit")
    one_per_call = PoseCorrections(frames)  # crops_per_call = batch: the frames go one call each
    fit_corrections(truth, one_per_call, samples, loss, lr, iterations=12, batch=2, seed=0, desc="fit",
                    crops_per_call=2)
    for frame in frames:
        alone = PoseCorrections(frames)
        fit_corrections(truth, alone, {frame: samples[frame]}, loss, lr, iterations=12, batch=2, seed=0, desc="fit")
        name = frame_name(frame)
        assert together.offsets[name][6:9].norm() > 4e-3  # the object moved back towards its true pose
        torch.testing.assert_close(together.offsets[name][6:9], alone.offsets[name][6:9], atol=3e-5, rtol=0)
        torch.testing.assert_close(together.angles[name][96:100], alone.angles[name][96:100], atol=3e-4, rtol=0)
        assert torch.equal(one_per_call.offsets[name], alone.offsets[name])


# --------------------------------------------------------------------------- #
# Training
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kind", ["hogs", "3dgs"])
def test_short_training_lowers_loss_and_raises_psnr(scene, kind, tmp_path):
    cfg = _config(iterations=20, batch_views=1)
    before = evaluate(build_model(kind, cfg, scene, seed=0), scene.train)
    model = train_hogs(cfg, scene, kind, tmp_path, seed=0).model
    after = evaluate(model, scene.train)
    assert after.mean.psnr > before.mean.psnr + 1.0 and after.mean.ssim > before.mean.ssim
    assert after.mean.lpips is None and after.count == 4
    rows = (tmp_path / "live/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]
    losses = [float(row.split("\t")[-1]) for row in rows]
    assert len(losses) == cfg.iterations and np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_held_out_evaluation_reports_each_non_empty_subset(scene):
    model, cfg = build_model("hogs", _config(), scene, seed=0), _config(held_out_views=[2])
    scores = evaluate_held_out(model, scene, cfg)
    assert scores.novel_views.count == 1 and scores.novel_poses.count == 1 and scores.held_out.count == 2
    # exact: the same crops rendered by the same model and averaged in the same order give the same numbers
    assert scores.held_out == evaluate(model, scene.held_out)
    means = (scores.novel_views.mean.psnr + scores.novel_poses.mean.psnr) / 2
    assert scores.held_out.mean.psnr == pytest.approx(means)
    metrics = scores.as_metrics()  # what the stage writes
    assert set(metrics) == {"held_out", "novel_views", "novel_poses"}
    assert metrics["novel_views"] == {"psnr": scores.novel_views.mean.psnr, "ssim": scores.novel_views.mean.ssim,
                                      "lpips": "not computed", "images": 1}
    no_novel_views = evaluate_held_out(model, scene, _config(held_out_views=[8]))
    assert no_novel_views.novel_views is None and set(no_novel_views.as_metrics()) == {"held_out", "novel_poses"}
    with pytest.raises(ValueError, match="s00/cube: no held-out crops"):
        evaluate_held_out(model, dataclasses.replace(scene, held_out=[]), cfg)


def test_color_init_takes_the_pixels_each_gaussian_covers(scene):
    model = build_model("hogs", _config(), scene, seed=0)
    grey = evaluate(model, scene.train).mean.psnr
    hogs_train.init_colors(model, scene.train, 4, torch.Generator().manual_seed(0))
    assert evaluate(model, scene.train).mean.psnr > grey + 2.0


def test_train_step_updates_the_model_and_the_poses_and_reports_the_loss(scene):
    cfg = _config()
    model, poses = build_model("hogs", cfg, scene, seed=0), pose_corrections(cfg, scene)
    optimizer = build_optimizer("hogs", cfg, model, poses)
    before = {name: p.detach().clone() for name, p in checkpoint_parameters(model, poses).items()}
    batch = scene.train[:2]
    losses = [train_step(cfg, model, poses, optimizer, batch, step)["loss"] for step in range(6)]
    terms = train_step(cfg, model, poses, optimizer, batch, 6)
    assert set(terms) == {"loss", "image", "l_r", "psnr"} and losses[-1] < losses[0]
    assert terms["loss"] == pytest.approx(terms["image"] + cfg.lambda_r * terms["l_r"], rel=1e-5)
    after = checkpoint_parameters(model, poses)
    assert not torch.equal(after["deltas.right"], before["deltas.right"])
    assert not torch.equal(after["poses.angles.s00|cube_grab_01|0"], before["poses.angles.s00|cube_grab_01|0"])


def test_checkpoint_round_trip_and_resume(scene, tmp_path, monkeypatch):
    cfg = _config(iterations=4, checkpoint_every=2, batch_views=1)
    straight = checkpoint_parameters(*train_hogs(cfg, scene, "hogs", tmp_path / "straight", seed=0))
    metadata = checkpoint_metadata(tmp_path / "straight" / CHECKPOINT)
    assert metadata["iteration"] == "4" and metadata["kind"] == "hogs" and metadata["group"] == "s00/cube"
    assert json.loads(metadata["config"])["lr_hogs"]["vertices"] == cfg.lr_hogs.vertices  # JSON round trip: exact

    assert metadata["held_out_poses_fitted"] == "true"
    assert any(name.startswith("poses.") for name in straight)
    # another seed: every parameter must come from the file
    loaded = checkpoint_parameters(build_model("hogs", cfg, scene, seed=1), PoseCorrections(frame_keys(scene.train)))
    assert load_checkpoint(tmp_path / "straight" / CHECKPOINT, loaded)[ITERATION] == "4"
    for name, param in straight.items():
        assert torch.equal(param, loaded[name]), name  # a file copy: exact

    # a run that stops after its step-2 checkpoint, then resumes: same result as the straight run
    real_batch = hogs_train.batch_indices

    def crash_at_step_2(step, *args):
        if step == 2:
            raise KeyboardInterrupt
        return real_batch(step, *args)

    monkeypatch.setattr(hogs_train, "batch_indices", crash_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        train_hogs(cfg, scene, "hogs", tmp_path / "resumed", seed=0)
    assert checkpoint_metadata(tmp_path / "resumed" / CHECKPOINT)["iteration"] == "2"
    monkeypatch.setattr(hogs_train, "batch_indices", real_batch)
    resumed = checkpoint_parameters(*train_hogs(cfg, scene, "hogs", tmp_path / "resumed", seed=0))
    for name, param in straight.items():
        assert torch.equal(param, resumed[name]), name  # resuming is deterministic: the same bytes

    # another configuration does not resume: it trains afresh (and overwrites the checkpoint)
    train_hogs(dataclasses.replace(cfg, iterations=3), scene, "hogs", tmp_path / "resumed", seed=0)
    assert checkpoint_metadata(tmp_path / "resumed" / CHECKPOINT)["iteration"] == "3"


def test_load_trained_returns_the_finished_model_and_refuses_others(scene, tmp_path, monkeypatch):
    cfg = _config(iterations=2, checkpoint_every=1, batch_views=1)
    trained = train_hogs(cfg, scene, "hogs", tmp_path / "done", seed=0)
    loaded = hogs_train.load_trained(cfg, scene, "hogs", tmp_path / "done" / CHECKPOINT, seed=0)
    expected, got = checkpoint_parameters(*trained), checkpoint_parameters(*loaded)
    assert all(torch.equal(expected[name], got[name]) for name in expected)  # loaded from the file: exact
    with pytest.raises(ValueError, match="config"):
        hogs_train.load_trained(dataclasses.replace(cfg, lambda_r=0.1), scene, "hogs", tmp_path / "done" / CHECKPOINT,
                                seed=0)
    with pytest.raises(FileNotFoundError, match="3dgs"):
        hogs_train.load_trained(cfg, scene, "3dgs", tmp_path / "missing.safetensors", seed=0)

    def stop_at_step_1(step, *args):
        if step == 1:
            raise KeyboardInterrupt
        return real_batch(step, *args)

    real_batch = hogs_train.batch_indices
    monkeypatch.setattr(hogs_train, "batch_indices", stop_at_step_1)
    with pytest.raises(KeyboardInterrupt):
        train_hogs(cfg, scene, "hogs", tmp_path / "stopped", seed=0)
    with pytest.raises(ValueError, match="stopped at iteration 1 of 2"):
        hogs_train.load_trained(cfg, scene, "hogs", tmp_path / "stopped" / CHECKPOINT, seed=0)


def test_training_is_deterministic(scene, tmp_path):
    cfg = _config(iterations=2, batch_views=1)
    first = checkpoint_parameters(*train_hogs(cfg, scene, "hogs", tmp_path / "a", seed=0))
    second = checkpoint_parameters(*train_hogs(cfg, scene, "hogs", tmp_path / "b", seed=0))
    assert all(torch.equal(first[name], second[name]) for name in first)  # same seed: the same bytes
    assert not torch.are_deterministic_algorithms_enabled()  # the setting is scoped to training


def test_non_finite_gradients_stop_training_with_their_names(hands, cube):
    model = _hogs(hands, cube)
    for param in model.trainable_parameters().values():
        param.grad = torch.zeros_like(param)
    hogs_train.check_finite_gradients(model.trainable_parameters(), step=3)
    model.surfaces["left"].sh_dc.grad[5, 0, 1] = float("nan")
    with pytest.raises(FloatingPointError, match=r"step 3: .*surfaces\.left\.sh_dc"):
        hogs_train.check_finite_gradients(model.trainable_parameters(), step=3)


def test_batches_depend_on_seed_and_step_only():
    assert batch_indices(5, 10, 3, seed=0) == batch_indices(5, 10, 3, seed=0)
    assert batch_indices(5, 10, 3, seed=0) != batch_indices(6, 10, 3, seed=0)
    assert sorted(batch_indices(0, 4, 9, seed=0)) == [0, 1, 2, 3]


# --------------------------------------------------------------------------- #
# Crops
# --------------------------------------------------------------------------- #
def test_a_crop_of_a_render_matches_the_render_of_the_crop_camera(hands, cube):
    """Cropping + resizing an image and rendering with the crop's camera put things at the same pixels
    (a half-pixel slip in K or in the resampling would move the picture's centroid by ≥ 0.5 px)."""
    model, poses = _hogs(hands, cube), _poses()
    camera = _camera(size=(96, 80), distance=1.1)
    with torch.no_grad():
        full = model.render(camera, *poses)
        full_labels = part_labels(model, camera, *poses)
        box = box_from_mask(full_labels.numpy(), margin=0.1)
        image, labels, cropped = crop_view(full.rgb, full_labels, camera, box, 40)
        direct = model.render(cropped, *poses).rgb
    assert box[2] > 60 and (cropped.width, cropped.height) == (40, 40)
    assert set(labels.unique().tolist()) == {0, 1, 2, 3}
    assert torch.allclose(_centroid(direct), _centroid(image), atol=0.2)
    assert float(psnr(direct[None], image[None])) > 18.0  # Gaussians rendered small are dilated, hence not more


def _centroid(image: torch.Tensor) -> torch.Tensor:  # [3, H, W] → [2] (x, y) pixels, intensity-weighted
    weight = image.sum(0)
    rows, cols = torch.meshgrid(torch.arange(image.shape[1]), torch.arange(image.shape[2]), indexing="ij")
    return torch.stack([(cols * weight).sum(), (rows * weight).sum()]) / weight.sum()
