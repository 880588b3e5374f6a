"""POM: grasp sets, perturbation, ContactNet, optimisation, plausibility filter and diversity metrics."""

import dataclasses

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hogsa.articulated import ObjectPose
from hogsa.data.contact import ObjectDistance
from hogsa.data.schema import SIDES
from hogsa.hand import HandConfig, HandPose, hand_models, hand_vertices, rest_wrists
from hogsa.metrics.diversity import coverage, grasp_descriptors, mean_pairwise_distance, pose_distances
from hogsa.open_objects import open_object
from hogsa.pom.contact import (
    ObjectOccupancy,
    inside_depth,
    kd_trees,
    object_contact_map,
    penetration_loss,
    shell_neighbours,
    vertex_normals,
)
from hogsa.pom.contactnet import (
    ContactNet,
    ContactNetConfig,
    ContactNetReportConfig,
    augmentation_transforms,
    augmented,
    contact_examples,
    contact_scores,
    contact_weight,
    mirror_symmetric,
    predict,
    farthest_points,
    load_contactnet,
    object_surfaces,
    save_contactnet,
    train_contactnet,
)
from hogsa.pom.generate import PomConfig, PomReportConfig, generate_poses
from hogsa.pom.grasps import Grasps, grasp_joints, load_records, repeated
from hogsa.pom.optimize import (
    LossVertexIds,
    ObjectSolid,
    OptimizeConfig,
    boxes_within,
    contact_prior,
    grasp_losses,
    optimize_grasps,
)
from hogsa.pom.perturb import PerturbConfig, perturb
from hogsa.pom.plausibility import PlausibilityConfig, failure_counts, filter_grasps, plausibility_records

PERTURB = PerturbConfig(max_rotation_deg=20.0, push_fraction=0.05, max_offset=0.06, articulation_range=[0.01, 0.2],
                        max_articulation=2.0, holder_distance=0.005)
OPTIMIZE = OptimizeConfig(iterations=40, resolve_iterations=0, resolve_lr_factor=0.2, lambda_contact=1.0, lambda_hand_centric=1.0, lambda_penetration=17.0,
                          lambda_hand_hand=17.0, lr_pose=0.005, lr_transl=0.001, lr_shape=0.0005,
                          hand_centric_radius=0.02, hand_shell=0.02, hand_vertices=300, batch_size=8)
PLAUSIBILITY = PlausibilityConfig(max_volume=4e-6, contact_distance=0.005, max_hand_hand_volume=1e-6, voxel=0.005,
                                  object_samples=1000)


@pytest.fixture(scope="module")
def hands():
    return hand_models(HandConfig(None, 0))


def palm_down_on_box(hands, count: int, depth: float, object_name: str = "box") -> Grasps:
    """Grasps of the closed box (lid on +y up to 12 mm) whose right palm lies flat on the lid, ``depth``
    m into it, the right hand at ``count`` places along the lid; the left hand 30 cm away."""
    rest = {side: hands[side].rest().vertices[0].double().numpy() for side in hands}
    palm_low = rest["right"][:, 1].min()  # the palm faces -y
    xs = np.linspace(0.05, 0.09, count)
    right_trans = np.stack([xs, np.full(count, 0.012 - depth - palm_low), np.zeros(count)], axis=1)
    right_trans[:, 0] += -0.11 - rest["right"][:, 0].mean()  # centre the hand over the lid
    left_trans = np.tile([0.0, 0.3, 0.3], (count, 1))
    poses = {side: dataclasses.replace(HandPose.zeros(count), transl=transl)
             for side, transl in (("right", right_trans), ("left", left_trans))}
    object_pose = ObjectPose(np.zeros(count), np.zeros((count, 3)), np.zeros((count, 3)))
    return Grasps(poses, object_pose, repeated(object_name, count), repeated(f"s01/{object_name}", count),
                  np.array([f"s01/{object_name}_grab_01:{k}" for k in range(count)]))


def test_grasps_save_load_round_trip_and_bad_file(hands, tmp_path):
    grasps = palm_down_on_box(hands, 3, 0.002)
    grasps.save(tmp_path / "poses.npz")
    back = Grasps.load(tmp_path / "poses.npz")
    # exact: the .npz stores the float64 arrays as they are, so they come back bit for bit
    for side in ("right", "left"):
        assert all(np.array_equal(a, b) and b.dtype == np.float64 for a, b in zip(grasps.hands[side], back.hands[side]))
    assert all(np.array_equal(a, b) for a, b in zip(grasps.object_pose, back.object_pose))
    assert list(back.group) == list(grasps.group) and list(back.source) == list(grasps.source)
    with np.load(tmp_path / "poses.npz") as stored:
        assert {"right_global_orient", "left_transl", "object_rot", "object_articulation"} <= set(stored)
        arrays = dict(stored)
    np.savez(tmp_path / "bad.npz", articulation=np.zeros(3))
    with pytest.raises(ValueError, match="bad.npz: fields .*right_global_orient"):
        Grasps.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "short.npz", **{**arrays, "left_betas": np.zeros((2, 10))})
    with pytest.raises(ValueError, match=r"short.npz: keys 'left_\*': HandPose: field 'betas' has shape \(2, 10\), "
                                         r"expected \(3, 10\)"):
        Grasps.load(tmp_path / "short.npz")
    two_rows = {f"right_{field}": value[:2] for field, value in zip(("global_orient", "hand_pose", "betas", "transl"),
                                                                   grasps.hands["right"])}
    np.savez(tmp_path / "rows.npz", **{**arrays, **two_rows})
    with pytest.raises(ValueError, match=r"rows.npz: Grasps: field 'hands.right' must be a HandPose of 3 rows"):
        Grasps.load(tmp_path / "rows.npz")


def test_grasps_keep_their_record_columns_beside_them(hands, tmp_path):
    grasps = palm_down_on_box(hands, 3, 0.002)
    records = {"passes": np.array([True, False, True]), "right_gap_mm": np.array([0.5, -1.0, 2.25])}
    grasps.save(tmp_path / "poses.npz", records)
    back = load_records(tmp_path / "poses.npz")
    assert set(back) == set(records) and all(np.array_equal(back[k], v) for k, v in records.items())
    assert back["passes"].dtype == bool
    assert len(Grasps.load(tmp_path / "poses.npz")) == 3
    grasps.save(tmp_path / "bare.npz")
    assert load_records(tmp_path / "bare.npz") == {}
    with pytest.raises(ValueError, match="record column 'passes' has shape"):
        grasps.save(tmp_path / "x.npz", {"passes": np.ones(2, bool)})


def test_grasps_take_and_concatenate_keep_handsand_object_rows_together(hands):
    grasps = Grasps.concatenate([palm_down_on_box(hands, 3, 0.002), palm_down_on_box(hands, 2, 0.004, "bottle")])
    assert len(grasps) == 5 and list(grasps.object_name) == ["box"] * 3 + ["bottle"] * 2
    picked = grasps.take(np.array([4, 0]))
    assert list(picked.object_name) == ["bottle", "box"] and list(picked.source) == [grasps.source[4], grasps.source[0]]
    assert np.array_equal(picked.hands["right"].transl, grasps.hands["right"].transl[[4, 0]])
    assert np.array_equal(picked.object_pose.rot, grasps.object_pose.rot[[4, 0]])
    with pytest.raises(ValueError, match=r"'hands.left' must be a HandPose of 5 rows"):
        Grasps({**grasps.hands, "left": grasps.hands["left"].take(np.arange(4))}, grasps.object_pose,
               grasps.object_name, grasps.group, grasps.source)


def test_perturbation_rotates_about_the_object_pushes_5_percent_and_is_seeded(hands):
    grasps = palm_down_on_box(hands, 6, 0.0, "bottle")
    obj = open_object("bottle")
    no_offset = dataclasses.replace(PERTURB, max_offset=0.0)
    out = perturb(grasps, hands, obj, no_offset, np.random.default_rng(1))
    centre = obj.vertices.double().numpy().mean(axis=0)
    for side in ("right", "left"):
        j0 = rest_wrists(hands[side], grasps.hands[side].betas)
        before = np.linalg.norm(j0 + grasps.hands[side].transl - centre, axis=1)
        after = np.linalg.norm(j0 + out.hands[side].transl - centre, axis=1)
        assert np.allclose(after, 1.05 * before)  # rotation about the centre keeps it; the push adds 5 %
        turn = (Rotation.from_rotvec(out.hands[side].global_orient)
                * Rotation.from_rotvec(grasps.hands[side].global_orient).inv())
        angles = np.degrees(np.abs(turn.as_euler("ZYX")))
        assert (angles <= 20.0 + 1e-6).all() and angles.max() > 5.0
        # a rigid motion: the hand's shape and pose are untouched, its vertices keep their distances
        assert np.array_equal(out.hands[side].hand_pose, grasps.hands[side].hand_pose)
        v0, v1 = (hand_vertices(hands[side], g.hands[side])[0] for g in (grasps, out))
        assert np.allclose(np.linalg.norm(v0[1:] - v0[0], axis=1), np.linalg.norm(v1[1:] - v1[0], axis=1), atol=1e-5)
    again = perturb(grasps, hands, obj, no_offset, np.random.default_rng(1))
    other = perturb(grasps, hands, obj, no_offset, np.random.default_rng(2))
    assert np.array_equal(again.hands["right"].transl, out.hands["right"].transl)  # same seed: same bytes
    assert not np.allclose(other.hands["right"].transl, out.hands["right"].transl)


def test_perturbation_offset_moves_handsand_object_together(hands):
    grasps = palm_down_on_box(hands, 5, 0.0, "bottle")
    only_offset = dataclasses.replace(PERTURB, max_rotation_deg=0.0, push_fraction=0.0)
    out = perturb(grasps, hands, open_object("bottle"), only_offset, np.random.default_rng(0))
    shift = out.object_pose.transl - grasps.object_pose.transl
    assert (np.linalg.norm(shift, axis=1) <= 0.06).all() and np.linalg.norm(shift, axis=1).max() > 0.005
    for side in ("right", "left"):
        assert np.allclose(out.hands[side].transl - grasps.hands[side].transl, shift)


def test_articulation_change_is_in_range_and_a_lid_holder_turns_with_the_lid(hands):
    grasps = palm_down_on_box(hands, 6, 0.001)  # the right palm lies on the lid: it holds the top part
    obj = open_object("box")
    only_articulation = dataclasses.replace(PERTURB, max_rotation_deg=0.0, push_fraction=0.0, max_offset=0.0)
    out = perturb(grasps, hands, obj, only_articulation, np.random.default_rng(0))
    change = out.object_pose.articulation - grasps.object_pose.articulation
    assert ((change >= 0.01 * np.pi - 1e-9) & (change <= 0.2 * np.pi + 1e-9)).all()  # from a closed lid: opens
    distance = ObjectDistance(obj)
    for k in range(len(out)):  # the holder keeps its grasp on the moved lid
        before = distance(hand_vertices(hands["right"], grasps.hands["right"].take(k))[0],
                          *(field[k] for field in grasps.object_pose))
        after = distance(hand_vertices(hands["right"], out.hands["right"].take(k))[0],
                         *(field[k] for field in out.object_pose))
        assert np.abs(after - before).max() < 2e-3
    # far away: not moved. Computed, not copied: the wrist goes through identity motions about the hinge and the
    # object's centre, (w - p) + p - j0, with scipy rotations, which need not round back to the same bits on every
    # platform (float64 rounding at 0.3 m is ~1e-16 m); a swing with the lid would move it by centimetres
    np.testing.assert_allclose(out.hands["left"].transl, grasps.hands["left"].transl, rtol=0, atol=1e-9)


def test_contact_prior_of_the_open_hand_faces_the_palm_side(hands):
    for side, hand in hands.items():
        prior = contact_prior(hand)
        verts = hand.v_template.double()
        assert 100 < len(prior) < len(verts) // 2
        assert verts[prior, 1].mean() < verts[:, 1].mean()  # the palm faces -y


@pytest.fixture(scope="module")
def tiny_net(hands):
    cfg = ContactNetConfig(object_points=96, hand_points=48, global_features=32, epochs=25, batch_size=4,
                           learning_rate=3e-3, jitter=0.0, augment=False, contact_distance=0.005,
                           report=ContactNetReportConfig(dpi=60))
    grasps = palm_down_on_box(hands, 4, 0.001)
    surfaces = object_surfaces({"box": open_object("box")}, cfg.object_points, seed=0)
    pairs = contact_examples(grasps, hands, surfaces)
    subset = torch.as_tensor(farthest_points(hands["right"].v_template.double().numpy(), cfg.hand_points))
    net, epochs = train_contactnet(pairs, subset, cfg, seed=0, val=pairs)
    return net, subset, cfg, epochs, pairs


def test_contactnet_fits_its_training_pairs_and_round_trips_through_safetensors(tiny_net, tmp_path):
    net, subset, cfg, epochs, pairs = tiny_net
    assert epochs[-1].train_loss < 0.5 * epochs[0].train_loss
    # the validation scores are those of the returned net (the pairs themselves here, jitter 0)
    np.testing.assert_equal(tuple(epochs[-1].val), tuple(contact_scores(
        predict(net, pairs.object_points, pairs.hand_points[:, subset]), pairs.target)))
    save_contactnet(net, subset, cfg, tmp_path / "cn.safetensors")
    back, back_subset = load_contactnet(tmp_path / "cn.safetensors")
    assert torch.equal(back_subset, subset)  # vertex indices: exact
    x, h = pairs.object_points[:2], pairs.hand_points[:2, subset]
    assert torch.allclose(back(x, h), net(x, h))
    with pytest.raises(FileNotFoundError, match="contactnet stage"):
        load_contactnet(tmp_path / "missing.safetensors")


def test_contact_scores_of_a_hand_made_map():
    target = torch.tensor([[1.0, 0.9, 0.8, 0.1, 0.0, 0.0]])
    predicted = torch.tensor([[0.6, 0.2, 0.9, 0.7, 0.0, 0.1]])
    scores = contact_scores(predicted, target)
    # contact in the target: points 0-2; predicted: 0, 2, 3 -> 2 hits of 3 called and of 3 true
    assert scores.precision == pytest.approx(2 / 3) and scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(2 / 3)
    assert scores.mae == pytest.approx((0.4 + 0.7 + 0.1 + 0.6 + 0.0 + 0.1) / 6)
    assert scores.mae_contact_points == pytest.approx((0.4 + 0.7 + 0.1) / 3)
    zero = contact_scores(torch.zeros_like(target), target)
    assert np.isnan(zero.precision) and zero.recall == 0.0 and zero.f1 == 0.0
    # 3 of 6 points in contact: they weigh as much as the other 3
    assert contact_weight(target) == 1.0 and contact_weight(torch.tensor([[1.0, 0.0, 0.0, 0.0]])) == 3.0
    assert contact_weight(torch.zeros(2, 5)) == 1.0


def test_augmentation_is_an_isometry_that_keeps_the_contact_map(hands):
    obj = open_object("box")
    assert mirror_symmetric(obj)  # every open object is symmetric under z -> -z (the plane across the hinge)
    shifted = dataclasses.replace(obj, vertices=obj.vertices + torch.tensor([0.0, 0.0, 0.01]))
    assert not mirror_symmetric(shifted)
    pairs = contact_examples(palm_down_on_box(hands, 6, 0.001), hands,
                             object_surfaces({"box": obj}, 200, seed=0))
    transform = augmentation_transforms(pairs.up_axis, pairs.mirrorable, torch.Generator().manual_seed(0))
    assert torch.allclose(transform @ transform.transpose(1, 2), torch.eye(3).expand(len(transform), 3, 3), atol=1e-6)
    dets = torch.linalg.det(transform)
    assert (dets < 0).any() and (dets > 0).any()  # mirrored and plain pairs in one draw
    assert torch.allclose(transform[:, :, 1], torch.tensor([0.0, 1.0, 0.0]).expand(len(transform), 3))  # up stays up
    none = augmentation_transforms(pairs.up_axis, torch.zeros_like(pairs.mirrorable), torch.Generator().manual_seed(0))
    assert (torch.linalg.det(none) > 0).all()
    cfg = ContactNetConfig(object_points=200, hand_points=48, global_features=32, epochs=1, batch_size=4,
                           learning_rate=1e-3, jitter=0.0, augment=True, contact_distance=0.005,
                           report=ContactNetReportConfig(dpi=60))
    points, hand = augmented(pairs.object_points, pairs.hand_points, pairs.up_axis, pairs.mirrorable, cfg,
                             torch.Generator().manual_seed(1))
    assert not torch.allclose(points, pairs.object_points, atol=1e-3)
    assert torch.allclose(object_contact_map(points, hand), pairs.target, atol=1e-5)


def test_contactnet_split_head_is_one_linear_map_of_code_and_local_features():
    torch.manual_seed(0)
    net = ContactNet(16).eval()
    points, hand = torch.randn(2, 30, 3) * 0.05, torch.randn(2, 20, 3) * 0.05
    local, object_code = net.object_encoder(points * 10.0)
    _, hand_code = net.hand_encoder(hand * 10.0)
    code = net.mix(torch.cat([object_code, hand_code], dim=-1))
    features = torch.cat([code[:, :, None].expand(-1, -1, 30), local], dim=1)  # [B, G + 64, N] as the reference
    weight = torch.cat([net.head_code.weight, net.head_local.weight[:, :, 0]], dim=1)
    first = torch.einsum("oc,bcn->bon", weight, features) + net.head_code.bias[None, :, None]
    assert torch.allclose(net.head(first)[:, 0], net.logits(points, hand), atol=1e-5)


def test_farthest_points_spread_over_the_set():
    points = np.random.default_rng(0).random((500, 3))
    chosen = farthest_points(points, 50)
    assert len(set(chosen.tolist())) == 50
    spread = np.linalg.norm(points[:, None] - points[chosen][None], axis=-1).min(axis=1).max()
    random = np.linalg.norm(points[:, None] - points[:50][None], axis=-1).min(axis=1).max()
    assert spread < random


def test_optimisation_lifts_a_palm_out_of_the_lid_and_keeps_contact(hands, tiny_net):
    net, subset = tiny_net[:2]
    obj = open_object("box")
    init = palm_down_on_box(hands, 2, 0.006)
    # 512 samples as the default set: with fewer, a hand lifted off the lid's edge can have none within the
    # hand-centric radius, and nothing pulls it back. No consistency term: the tiny net learnt from maps
    # with almost no contact (max ~0.1) and its map, normalised by its maximum, is noise
    surfaces = object_surfaces({"box": obj}, 512, seed=0)["box"]
    dense = object_surfaces({"box": obj}, 4000, seed=1)["box"]
    result = optimize_grasps(init, hands, obj, surfaces, dense, ObjectOccupancy(obj, 0.003), net, subset,
                             dataclasses.replace(OPTIMIZE, iterations=100, lambda_contact=0.0))
    distance = ObjectDistance(obj)
    before = plausibility_records(init, hands, obj, distance, PLAUSIBILITY)
    after = plausibility_records(result.grasps, hands, obj, distance, PLAUSIBILITY)
    assert (before["right_hand_depth_mm"] > 5.0).all()
    assert (after["right_hand_depth_mm"] < 0.5 * before["right_hand_depth_mm"]).all()
    assert after["right_contact"].all(), after["right_gap_mm"]
    assert result.terms["penetration"][-1] < 0.2 * result.terms["penetration"][0]
    # samples are independent: one optimised alone ends where it ends in the batch
    alone = optimize_grasps(init.take(np.array([1])), hands, obj, surfaces, dense, ObjectOccupancy(obj, 0.003), net,
                            subset, dataclasses.replace(OPTIMIZE, iterations=5))
    pair = optimize_grasps(init, hands, obj, surfaces, dense, ObjectOccupancy(obj, 0.003), net, subset,
                           dataclasses.replace(OPTIMIZE, iterations=5))
    assert np.allclose(alone.grasps.hands["right"].transl[0], pair.grasps.hands["right"].transl[1], atol=1e-6)


def test_hand_hand_term_skips_only_handstoo_far_apart_to_touch(hands):
    a = torch.zeros(3, 4, 3)
    a[:, 1:, 0] = 0.01  # a 1 cm wide set at the origin
    b = a + torch.tensor([[[0.025, 0, 0]], [[0.035, 0, 0]], [[0.0, 0.0, -0.031]]])  # 1.5, 2.5, 3.1 cm apart
    assert boxes_within(a, b, 0.02).tolist() == [True, False, False]
    # the term a batch computes equals the term of every sample computed in full
    poses = {side: HandPose(*(torch.zeros(2, n) for n in (3, 45, 10, 3))) for side in SIDES}
    poses["left"] = HandPose(poses["left"].global_orient, poses["left"].hand_pose, poses["left"].betas,
                             torch.tensor([[0.0, 0.01, 0.0], [0.5, 0.0, 0.0]]))  # overlapping, then 50 cm apart
    verts = {s: hands[s](*poses[s]).vertices for s in SIDES}
    normals = {s: vertex_normals(verts[s], hands[s].faces) for s in SIDES}
    full = (penetration_loss(inside_depth(verts["right"], verts["left"], normals["left"], 0.02))
            + penetration_loss(inside_depth(verts["left"], verts["right"], normals["right"], 0.02)))
    assert full[0] > 0 and full[1] == 0
    ids = LossVertexIds({s: torch.arange(len(hands[s].v_template)) for s in SIDES},
                        {s: contact_prior(hands[s]) for s in SIDES})
    obj = open_object("box")
    pose = ObjectPose(torch.zeros(2), torch.zeros(2, 3), torch.tensor([[0.0, -0.3, 0.0]] * 2))
    surface = object_surfaces({"box": obj}, 64, seed=0)["box"]
    points, _ = surface.pose(*pose)
    dense, _ = object_surfaces({"box": obj}, 256, seed=1)["box"].pose(*pose)
    solid = ObjectSolid(ObjectOccupancy(obj, 0.005), pose, dense, kd_trees(dense))
    losses = grasp_losses(poses, hands, points, solid, {s: torch.zeros(2, 64) for s in SIDES}, ids, OPTIMIZE)
    torch.testing.assert_close(losses["hand_hand"], full)


def test_shell_neighbours_match_brute_force():
    generator = torch.Generator().manual_seed(0)
    points, targets = torch.rand(2, 300, 3, generator=generator), torch.rand(2, 50, 3, generator=generator)
    index, found = shell_neighbours(points, targets, 0.1)
    distance = torch.cdist(points, targets)
    assert torch.equal(found, distance.min(-1).values <= 0.1) and 0 < found.float().mean() < 1
    assert torch.equal(index[found], distance.argmin(-1)[found]) and (index[~found] == 0).all()


def test_a_resolve_step_pushes_a_hand_out_of_the_lid(hands, tiny_net):
    net, subset = tiny_net[:2]
    obj = open_object("box")
    init = palm_down_on_box(hands, 1, 0.0025)
    surfaces, dense = (object_surfaces({"box": obj}, n, seed=k)["box"] for k, n in ((0, 512), (1, 4000)))
    cfg = dataclasses.replace(OPTIMIZE, iterations=0, resolve_iterations=20, resolve_lr_factor=0.15)
    result = optimize_grasps(init, hands, obj, surfaces, dense, ObjectOccupancy(obj, 0.003), net, subset, cfg)
    before, after = (plausibility_records(g, hands, obj, ObjectDistance(obj), PLAUSIBILITY)
                     for g in (init, result.grasps))
    assert before["right_hand_depth_mm"][0] > 2.0 and after["right_hand_depth_mm"][0] < 1.0
    assert after["right_contact"][0], after["right_gap_mm"]  # steps of 0.15 mm at most: out of the lid, not away
    assert np.isnan(result.terms["contact"]).all() and result.terms["penetration"][-1] < result.terms["penetration"][0]


def test_generated_poses_do_not_depend_on_the_number_of_worker_processes(hands, tiny_net):
    net, subset = tiny_net[:2]
    train = Grasps.concatenate([palm_down_on_box(hands, 2, 0.001, name) for name in ("box", "laptop")])
    objects = {name: open_object(name) for name in ("laptop", "box")}
    cfg = PomConfig(samples_per_grasp=2, workers=1, object_points=64, dense_points=500, occupancy_voxel=0.005,
                    contact_distance=0.005, perturb=PERTURB,
                    optimize=dataclasses.replace(OPTIMIZE, iterations=3, resolve_iterations=2),
                    plausibility=dataclasses.replace(PLAUSIBILITY, object_samples=200, voxel=0.01),
                    report=PomReportConfig(dpi=60, renders=1, render_size=64))
    alone = generate_poses(train, hands, objects, net, subset, cfg, seed=0)
    together = generate_poses(train, hands, objects, net, subset, dataclasses.replace(cfg, workers=2), seed=0)
    assert len(alone.optimised) == 8 and list(alone.optimised.object_name) == ["box"] * 4 + ["laptop"] * 4
    for side in SIDES:
        for field in ("global_orient", "hand_pose", "betas", "transl"):
            np.testing.assert_array_equal(getattr(alone.optimised.hands[side], field),
                                          getattr(together.optimised.hands[side], field))
    for key in alone.after:
        np.testing.assert_array_equal(alone.after[key], together.after[key])


def test_plausibility_filter_drops_and_counts_failures(hands):
    obj = open_object("box")
    grasps = Grasps.concatenate([palm_down_on_box(hands, 1, 0.001), palm_down_on_box(hands, 1, 0.03),
                                 palm_down_on_box(hands, 1, -0.02)])  # touching, sunk 3 cm, floating 2 cm
    record = plausibility_records(grasps, hands, obj, ObjectDistance(obj), PLAUSIBILITY)
    assert record["right_contact"].tolist() == [True, True, False]
    assert record["right_volume_cm3"][1] > 4.0 > record["right_volume_cm3"][0]
    assert record["passes"].tolist() == [False, False, False]  # the far left hand touches nothing
    counts = failure_counts(record, PLAUSIBILITY)
    assert counts == {"total": 3, "failed": 3, "right_volume": 1, "right_no_contact": 1, "left_volume": 0,
                      "left_no_contact": 3, "hand_hand_volume": 0}
    record["left_contact"][:] = True  # as if the left hand touched: only the first sample passes
    record["passes"] = record["right_contact"] & (record["right_volume_cm3"] < 4.0)
    kept, dropped = filter_grasps(grasps, record)
    assert len(kept) == 1 and dropped == 2 and kept.source[0] == grasps.source[0]


def test_coverage_and_pairwise_distance_match_brute_force():
    rng = np.random.default_rng(0)
    train, extra, test = rng.normal(size=(6, 42, 3)), rng.normal(size=(4, 42, 3)), rng.normal(size=(5, 42, 3))
    def objects(count: int) -> np.ndarray:
        return np.array(["box", "bottle"] * count)[:count]

    brute = np.mean([min(np.linalg.norm(t - r, axis=-1).mean() for r, o in zip(train, objects(6)) if o == ot)
                     for t, ot in zip(test, objects(5))])
    assert coverage(test, objects(5), train, objects(6)) == pytest.approx(brute)
    both = coverage(test, objects(5), np.concatenate([train, extra]), np.concatenate([objects(6), objects(4)]))
    assert both <= brute
    pairs = [np.linalg.norm(a - b, axis=-1).mean() for o in ("box", "bottle")
             for i, (a, oa) in enumerate(zip(train, objects(6))) for j, (b, ob) in enumerate(zip(train, objects(6)))
             if i != j and oa == ob == o]
    assert mean_pairwise_distance(train, objects(6)) == pytest.approx(np.mean(pairs))
    assert pose_distances(train[:1], train[:1])[0, 0] == 0.0  # exact: x - x is 0 in floating point, so is its norm
    with pytest.raises(ValueError, match="no reference grasp of object 'mug'"):
        coverage(test, np.array(["mug"] * 5), train, objects(6))


def test_grasp_descriptors_are_the_joints_in_the_object_frame_in_mm(hands):
    grasps = palm_down_on_box(hands, 2, 0.002)
    joints = grasp_joints(grasps, hands)
    assert joints.shape == (2, 42, 3) and joints.dtype == np.float64
    np.testing.assert_array_equal(joints[:, 21:], hand_vertices_joints(hands["left"], grasps.hands["left"]))  # left second
    quarter_turn = np.array([[0.0, 0.0, np.pi / 2]] * 2)  # the object turned +90° about z, then moved by t
    t = np.array([[0.1, -0.2, 0.3]] * 2)
    world = np.einsum("ij,snj->sni", Rotation.from_rotvec(quarter_turn[0]).as_matrix(), joints) + t[:, None]
    local = grasp_descriptors(world, quarter_turn, t)
    np.testing.assert_allclose(local, joints * 1000.0, atol=1e-9)  # back in the object's frame, mm
    x_axis = grasp_descriptors(np.array([[[0.0, 1.0, 0.0]] * 42]), quarter_turn[:1], np.zeros((1, 3)))
    np.testing.assert_allclose(x_axis[0, 0], [1000.0, 0.0, 0.0], atol=1e-9)  # world +y is the turned object's +x


def hand_vertices_joints(hand, pose: HandPose) -> np.ndarray:
    with torch.no_grad():
        return hand(*pose.torch()).joints.double().numpy()
