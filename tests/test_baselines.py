"""The baselines' networks: backbones (shapes, torchvision-compatible ResNet-50, weight loading), HMR
heads, 6D rotations, the weak-perspective camera, ArcticNet-SF's parameter round trips, InterField-SF
and its loss."""

import pytest
import torch
from safetensors.torch import save_file

from hogsa.articulated import ObjectPose
from hogsa.baselines.arcticnet import (SIDES, ArcticNetSF, HandParams, ObjectParams, decode_hand, decode_object,
                                       encode_hand, encode_object)
from hogsa.baselines.backbone import load_backbone_weights, resnet
from hogsa.baselines.hmr import (HMRHead, translation_to_weak_perspective,
                                 weak_perspective_to_translation)
from hogsa.baselines.interfield import InterFieldSF, farthest_points, field_loss
from hogsa.baselines.losses import WEIGHTS, Targets, arcticnet_loss
from hogsa.geometry import axis_angle_to_matrix, matrix_to_rotation_6d, rotation_6d_to_matrix
from hogsa.hand import HandModel, HandPose
from hogsa.open_objects import open_object


def test_resnet50_has_torchvisions_parameter_count_and_2048_features():
    backbone = resnet("resnet50")
    # torchvision's resnet50 has 25,557,032 parameters, 2,049,000 of them in the classifier
    assert sum(p.numel() for p in backbone.parameters()) == 25_557_032 - 2_049_000
    assert backbone.out_features == 2048


def test_the_small_backbone_pools_features_of_any_input_size():
    backbone = resnet("small", width=8).eval()
    for size in (64, 96):
        assert backbone(torch.rand(2, 3, size, size)).shape == (2, 64)


def test_weights_round_trip_through_safetensors_and_mismatches_are_named(tmp_path):
    source, target = resnet("small", width=8).eval(), resnet("small", width=8).eval()
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()} | {"fc.weight": torch.zeros(3, 64)}, path)
    load_backbone_weights(target, path)
    images = torch.rand(1, 3, 64, 64)
    assert torch.equal(source(images), target(images))
    with pytest.raises(ValueError, match="backbone.safetensors.*shape differs"):
        load_backbone_weights(resnet("small", width=16), path)
    with pytest.raises(ValueError, match="'small' or 'resnet50'"):
        resnet("vgg")


def random_rotations(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return axis_angle_to_matrix(torch.randn(n, 3, generator=generator, dtype=torch.float64))


def test_6d_rotations_round_trip_and_any_6d_vector_is_a_rotation():
    rotations = random_rotations(50, 0)
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(rotations)), rotations, atol=1e-12)
    made = rotation_6d_to_matrix(torch.randn(50, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    assert torch.allclose(made @ made.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(50, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(made), torch.ones(50, dtype=torch.float64))


def test_the_weak_perspective_camera_projects_the_origin_like_the_translation_it_stands_for():
    transl = torch.tensor([[0.05, -0.02, 0.6], [0.0, 0.01, 1.2]], dtype=torch.float64)
    focal = torch.tensor([500.0, 800.0], dtype=torch.float64)
    cam = translation_to_weak_perspective(transl, focal, 224)
    # s is the crop's width over the metric width seen at that depth, in units of half crops
    assert cam[:, 0].tolist() == pytest.approx((2 * focal / (224 * transl[:, 2])).tolist())
    assert torch.allclose(weak_perspective_to_translation(cam, focal, 224), transl)
    tiny = weak_perspective_to_translation(torch.tensor([[0.01, 0.0, 0.0]]), torch.tensor([500.0]), 224)
    assert tiny[0, 2] == pytest.approx(2 * 500 / (224 * 0.1))  # s is clamped at 0.1


def test_an_untrained_hmr_head_returns_its_initial_values_and_refines_them():
    init = {"rot": torch.tensor([0.1, 0.2, 0.3])}
    head = HMRHead(16, init, iterations=3).eval()
    values, cam_init = head(torch.randn(4, 16, generator=torch.Generator().manual_seed(2)))
    assert values["rot"].shape == (4, 3) and values["cam"].shape == cam_init.shape == (4, 3)
    # decoder weights start near zero, biases at |b| <= 1/32 per refinement
    assert torch.allclose(values["rot"], init["rot"].expand(4, 3), atol=3 / 32 + 0.01)
    assert not torch.equal(values["rot"], init["rot"].expand(4, 3))


@pytest.fixture(scope="module")
def hands():
    return {side: HandModel(side).double() for side in ("right", "left")}


def camera_frame_pose(batch: int, seed: int) -> HandPose:
    generator = torch.Generator().manual_seed(seed)
    draw = lambda *shape, scale: torch.randn(*shape, generator=generator, dtype=torch.float64) * scale  # noqa: E731
    transl = draw(batch, 3, scale=0.05) + torch.tensor([0.0, 0.0, 0.7], dtype=torch.float64)
    return HandPose(draw(batch, 3, scale=1.0), draw(batch, 45, scale=0.3), draw(batch, 10, scale=1.0), transl)


def test_a_ground_truth_hand_encoded_then_decoded_is_the_same_mesh(hands):
    focal = torch.tensor([600.0, 900.0, 750.0], dtype=torch.float64)
    for side, hand in hands.items():
        pose = camera_frame_pose(3, 3)
        expected = hand(*pose)
        decoded = decode_hand(encode_hand(pose, hand, focal, 224), hand, focal, 224)
        assert torch.allclose(decoded.vertices, expected.vertices, atol=1e-9), side
        assert torch.allclose(decoded.joints, expected.joints, atol=1e-9), side


def test_the_identity_rotation_decodes_to_the_models_mean_hand(hands):
    hand = hands["right"]
    params = HandParams(torch.eye(3, dtype=torch.float64).expand(1, 16, 3, 3), torch.zeros(1, 10, dtype=torch.float64),
                        torch.tensor([[2.0, 0.01, -0.02]], dtype=torch.float64))
    focal = torch.tensor([448.0], dtype=torch.float64)
    got = decode_hand(params, hand, focal, 224)
    zeros = torch.zeros(1, 3, dtype=torch.float64)
    mean = hand(zeros, hand.hands_mean[None].double(), torch.zeros(1, 10, dtype=torch.float64),
                torch.tensor([[0.01, -0.02, 2 * 448 / (224 * 2.0)]], dtype=torch.float64))
    assert torch.allclose(got.vertices, mean.vertices, atol=1e-12)


def test_an_object_pose_encoded_then_decoded_is_the_same_mesh():
    obj = open_object("box")
    pose = ObjectPose(torch.tensor([0.3, 0.0]), torch.tensor([[0.1, -0.5, 0.2], [1.0, 0.3, 0.0]]),
                      torch.tensor([[0.02, 0.01, 0.6], [-0.03, 0.0, 0.9]]))
    focal = torch.tensor([500.0, 700.0])
    decoded = decode_object(encode_object(pose, focal, 224), obj, focal, 224)
    assert torch.allclose(decoded, obj.pose(*pose), atol=1e-5)


def test_arcticnet_sf_regresses_rotations_and_cameras_for_both_hands_and_the_object():
    model = ArcticNetSF(resnet("small", width=8)).eval()
    hands_out, obj = model(torch.rand(2, 3, 64, 64))
    for params in hands_out.values():
        assert params.rotmats.shape == (2, 16, 3, 3) and params.betas.shape == (2, 10)
        assert params.cam.shape == params.cam_init.shape == (2, 3)
        assert torch.allclose(params.rotmats @ params.rotmats.transpose(-1, -2), torch.eye(3).expand(2, 16, 3, 3),
                              atol=1e-5)
    assert obj.rot.shape == (2, 3) and obj.angle.shape == (2,) and obj.cam.shape == (2, 3)


def test_farthest_points_spread_out_greedily_from_the_first_vertex():
    line = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [10.0, 0, 0], [6.0, 0, 0]])
    assert farthest_points(line, 3).tolist() == [0, 3, 4]  # 6 is 4 from both ends, 2 only 2
    assert farthest_points(line, 9).tolist() == [0, 3, 4, 2, 1]


def test_interfield_sf_predicts_a_distance_per_vertex_of_each_entity():
    points = {side: torch.rand(20, 3) for side in ("right", "left")}
    model = InterFieldSF(resnet("small", width=8), points, hand_vertices=50, object_points=30, object_vertices=70).eval()
    got = model(torch.rand(2, 3, 64, 64), torch.rand(2, 30, 3))
    assert got.dist_ro.shape == got.dist_lo.shape == (2, 50)
    assert got.dist_or.shape == got.dist_ol.shape == (2, 70)
    with pytest.raises(ValueError, match=r"\[B, 30, 3\]"):
        model(torch.rand(2, 3, 64, 64), torch.rand(2, 31, 3))


def test_the_field_loss_down_weights_entries_at_the_clamp_and_masks_invalid_ones():
    gt = torch.tensor([[0.02, 0.1], [0.05, 0.1]])
    pred = torch.tensor([[0.03, 0.08], [0.0, 0.0]])
    weight = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # the second frame is invalid
    expected = 100.0 * (0.01**2 + 0.1 * 0.02**2) / 4
    assert field_loss(pred, gt, weight).item() == pytest.approx(expected)


def loss_inputs(batch: int = 3, seed: int = 0):
    """Hand-made predictions equal to their targets except the right wrist's and a left finger's rotation."""
    gen = torch.Generator().manual_seed(seed)
    K = torch.tensor([[200.0, 0, 32], [0, 200.0, 32], [0, 0, 1]]).expand(batch, 3, 3)
    joints = {s: torch.randn(batch, 21, 3, generator=gen) * 0.05 + torch.tensor([0, 0, 0.6]) for s in SIDES}
    verts = {s: torch.randn(batch, 30, 3, generator=gen) * 0.05 + torch.tensor([0, 0, 0.6]) for s in SIDES}
    gt_hands = {s: HandParams(random_rotations(batch * 16, seed).float().reshape(batch, 16, 3, 3), torch.randn(batch, 10, generator=gen),
                              torch.randn(batch, 3, generator=gen)) for s in SIDES}
    obj = ObjectParams(torch.randn(batch, 3, generator=gen), torch.rand(batch, generator=gen),
                       torch.randn(batch, 3, generator=gen))
    keypoints = torch.randn(batch, 16, 3, generator=gen) * 0.05 + torch.tensor([0, 0, 0.6])
    valid = torch.ones(batch, dtype=torch.bool)
    target = Targets(gt_hands, joints, {s: valid for s in SIDES}, obj, keypoints, valid,
                     {s: [(torch.zeros(0, dtype=torch.long),) * 2] * batch for s in SIDES})
    pred = {s: h._replace(cam_init=h.cam) for s, h in gt_hands.items()}
    turned = pred["right"].rotmats.clone()
    turned[:, 0] = random_rotations(batch, seed + 1).float()
    pred["right"] = pred["right"]._replace(rotmats=turned)
    bent = pred["left"].rotmats.clone()
    bent[:, 5] = random_rotations(batch, seed + 2).float()
    pred["left"] = pred["left"]._replace(rotmats=bent)
    objects = [v for v in torch.zeros(batch, 5, 3)]
    return pred, obj._replace(cam_init=obj.cam), joints, verts, objects, keypoints, target, K


def test_the_root_term_is_the_wrist_rotations_squared_error_and_absent_from_arctics_loss():
    pred, obj, joints, verts, objects, keypoints, target, K = loss_inputs()
    arctic_terms = arcticnet_loss(pred, obj, joints, verts, objects, keypoints, target, K, 64)
    terms = arcticnet_loss(pred, obj, joints, verts, objects, keypoints, target, K, 64, root_weight=7.0)
    assert not any(key.startswith("root") for key in arctic_terms)
    assert {k: v for k, v in terms.items() if not k.startswith("root")} == arctic_terms
    wrist = ((pred["right"].rotmats[:, 0] - target.hands["right"].rotmats[:, 0]) ** 2).mean()
    torch.testing.assert_close(terms["root_right"], 7.0 * wrist)
    assert terms["root_left"] == 0  # only a finger of the left hand differs
    finger = ((pred["left"].rotmats - target.hands["left"].rotmats) ** 2).sum() / pred["left"].rotmats.numel()
    torch.testing.assert_close(terms["pose_left"], WEIGHTS["pose"] * finger)
    zero = {k for k, v in terms.items() if v == 0}
    assert zero >= {"kp2d_right", "kp3d_right", "betas_right", "cam_right", "object_kp2d", "rot", "radian"}
