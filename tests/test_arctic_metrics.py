"""ARCTIC's metrics on hand-made cases whose values are worked out by hand (REFERENCES §5)."""

import math

import pytest
import torch

from hogsa.metrics import arctic

F64 = torch.float64


def hand_joints(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(frames, 21, 3, generator=torch.Generator().manual_seed(seed), dtype=F64) * 0.05


def all_valid(frames: int) -> torch.Tensor:
    return torch.ones(frames, dtype=torch.bool)


def nan(value) -> bool:
    return math.isnan(float(value))


def test_mpjpe_is_root_relative_averages_all_21_joints_and_is_nan_on_invalid_frames():
    gt = hand_joints(3)
    pred = gt + torch.tensor([0.3, -0.2, 0.1], dtype=F64)  # a translation: no root-relative error
    pred[1, 7] += torch.tensor([0.0, 0.021, 0.0], dtype=F64)  # one joint 21 mm off: 1 mm over 21 joints
    valid = torch.tensor([True, True, False])
    got = arctic.mpjpe(pred, gt, valid)
    assert got[0] == pytest.approx(0.0, abs=1e-9)
    assert got[1] == pytest.approx(1.0)
    assert nan(got[2])


def test_mrrpe_measures_the_left_wrist_and_the_object_root_relative_to_the_right_wrist():
    right, left = hand_joints(2, 1), hand_joints(2, 2)
    pred_r, pred_l = right + 0.5, left + 0.5  # both shifted alike: no relative error
    pred_l[0, 0] += torch.tensor([0.0, 0.003, 0.004], dtype=F64)  # 5 mm off in frame 0
    got = arctic.mrrpe_rl(pred_r, pred_l, right, left, torch.tensor([True, True]))
    assert got.tolist() == pytest.approx([5.0, 0.0], abs=1e-9)
    assert nan(arctic.mrrpe_rl(pred_r, pred_l, right, left, torch.tensor([False, True]))[0])

    bottom = torch.tensor([True, True, False])
    obj = torch.tensor([[[0.0, 0.0, 0.5], [0.02, 0.0, 0.5], [0.0, 0.1, 0.5]]] * 2, dtype=F64)
    pred_obj = obj + 0.5
    pred_obj[0, 2] += 1.0  # the top part does not move the root
    pred_obj[1, :2] += torch.tensor([0.006, 0.008, 0.0], dtype=F64)  # the bottom does: 10 mm
    got = arctic.mrrpe_ro(pred_r, pred_obj, right, obj, bottom, torch.tensor([True, True]))
    assert got.tolist() == pytest.approx([0.0, 10.0], abs=1e-9)


def test_aae_is_in_degrees_and_not_wrapped():
    got = arctic.aae(torch.tensor([0.1, 2 * math.pi - 0.1, 0.0], dtype=F64),
                     torch.tensor([-0.1, -0.1, 0.0], dtype=F64), torch.tensor([True, True, False]))
    assert got[0] == pytest.approx(0.2 * 180 / math.pi)
    assert got[1] == pytest.approx(360.0)
    assert nan(got[2])


def test_success_rate_counts_root_aligned_vertices_strictly_below_the_threshold():
    bottom = torch.tensor([True, True, False, False, False, False])
    gt = torch.zeros(2, 6, 3, dtype=F64)
    gt[:, :, 0] = torch.arange(6, dtype=F64)
    pred = gt + 7.0  # a translation: root-aligned, every vertex is right
    pred[0, 2, 1] += 0.25  # below 0.5 x diameter 1: a success
    pred[0, 3, 1] += 0.5  # exactly at the threshold: not a success
    pred[0, 4, 1] += 2.0
    got = arctic.success_rate(pred, gt, bottom, 1.0, all_valid(2), alpha=0.5)
    assert got.tolist() == pytest.approx([100 * 4 / 6, 100.0])
    assert nan(arctic.success_rate(pred, gt, bottom, 1.0, torch.tensor([True, False]))[1])


def test_cdev_uses_the_ground_truth_contacts_and_correspondences_and_is_nan_without_contact():
    obj = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]] * 2, dtype=F64)
    hand = torch.tensor([[[0.0, 0.01, 0.0], [1.0, 0.02, 0.0]]] * 2, dtype=F64)
    dist = torch.tensor([[0.002, 0.003], [0.05, 0.05]], dtype=F64)  # 3 mm still counts as contact
    idx = torch.tensor([[0, 1], [0, 1]])
    got = arctic.cdev(hand, obj, dist, idx, all_valid(2))
    assert got[0] == pytest.approx(15.0)  # mean of 10 mm and 20 mm
    assert nan(got[1])
    assert nan(arctic.cdev(hand, obj, dist, idx, torch.tensor([False, True]))[0])


def test_interaction_field_is_the_clamped_distance_to_the_nearest_vertex_and_its_index():
    generator = torch.Generator().manual_seed(3)
    hand = torch.rand(2, 7, 3, generator=generator, dtype=F64) * 0.2
    obj = torch.rand(2, 5, 3, generator=generator, dtype=F64) * 0.2
    dist_ho, idx_ho, dist_oh, idx_oh = arctic.interaction_field(hand, obj, max_dist=0.08)
    for f in range(2):
        for i in range(7):
            d = [float((hand[f, i] - obj[f, j]).norm()) for j in range(5)]
            assert int(idx_ho[f, i]) == d.index(min(d))
            assert float(dist_ho[f, i]) == pytest.approx(min(min(d), 0.08))
        for j in range(5):
            d = [float((obj[f, j] - hand[f, i]).norm()) for i in range(7)]
            assert int(idx_oh[f, j]) == d.index(min(d))
            assert float(dist_oh[f, j]) == pytest.approx(min(min(d), 0.08))
    assert idx_ho.dtype == idx_oh.dtype == torch.int64


def contact_case(frames: int, vertices: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((frames, vertices), 0.05, dtype=F64), torch.zeros(frames, vertices, dtype=torch.int64)


def test_contact_windows_follow_arctics_rules():
    objects = torch.zeros(10, 3, dtype=F64)
    objects[3, 0] = 0.001  # vertices 0-5 lie within 3 mm of each other
    objects[6, 0] = 0.5  # far from the rest
    dist, idx = contact_case(40, 6)
    dist[0:20, 0] = 0.001  # starts at frame 0, ends at 19: a window
    idx[0:20:2, 0], idx[1:20:2, 0] = 5, 3  # 10 frames each: the tie goes to the smaller index
    dist[25:40, 1] = 0.001  # lasts to the last frame: no window
    dist[5:15, 2] = 0.001  # 10 frames: too short
    dist[2:17, 3] = 0.001  # 15 frames, but sliding over the object
    idx[2:17:2, 3] = 6
    dist[0:10, 4], dist[20:30, 4] = 0.001, 0.001  # 20 contact frames, no run of 15
    dist[10:25, 5] = 0.003  # exactly at the threshold is no contact
    got = arctic.contact_windows(dist, idx, objects)
    assert got.tolist() == [[0, 19, 0, 3]]
    assert got.dtype == torch.int64
    assert arctic.contact_windows(*contact_case(40, 3), objects).shape == (0, 4)

    dist, idx = contact_case(40, 3)
    dist[20:35, 2], dist[3:18, 1], dist[22:38, 1] = 0.001, 0.001, 0.001
    assert arctic.contact_windows(dist, idx, objects).tolist() == [[3, 17, 1, 0], [22, 37, 1, 0], [20, 34, 2, 0]]


@pytest.mark.parametrize(("length", "offset", "kept"), [
    # 15 frames, one of them matched 23 mm away: 14 of the 105 unmasked pairs -> 3.07 mm > 3 mm
    # (a mean over all 225 pairs would give 2.86 mm and keep it)
    (15, 0.023, False),
    (15, 0.020, True),
    # 20 frames, the first matched 33 mm away: only the top-left 15 x 15 upper triangle is masked,
    # 24 of the 280 pairs left -> 2.83 mm, kept (masking the whole upper triangle would give 3.3 mm)
    (20, 0.033, True),
    (20, 0.036, False),
])
def test_the_slide_filter_masks_only_the_upper_triangle_of_the_top_left_block(length, offset, kept):
    objects = torch.zeros(3, 3, dtype=F64)
    objects[1, 0] = offset
    dist, idx = contact_case(length + 5, 1)
    dist[2:2 + length, 0] = 0.001
    idx[2 + (length == 15) * 7, 0] = 1  # the odd one out: mid-window for 15 frames, first for 20
    assert len(arctic.contact_windows(dist, idx, objects)) == int(kept)


def test_mdev_averages_the_relative_motion_over_valid_frame_pairs_of_each_window():
    frames = 20
    dist, idx = contact_case(frames, 2)
    dist[0:16, 1] = 0.001  # one window: frames 0..15, hand vertex 1, object vertex 2
    idx[:, 1] = 2
    obj = torch.zeros(frames, 4, 3, dtype=F64)
    obj[:, :, 0] = torch.arange(frames, dtype=F64)[:, None] * 0.01  # the object slides along x
    hand = torch.zeros(frames, 2, 3, dtype=F64)
    hand[:, 1] = obj[:, 2]  # the hand vertex moves with it...
    hand[8:, 1, 1] += 0.006  # ...except one 6 mm jump between frames 7 and 8
    valid = all_valid(frames)
    got = arctic.mdev(hand, obj, dist, idx, obj, valid)
    assert got.tolist() == pytest.approx([6.0 / 15])
    valid[3] = False  # removes the pairs (2, 3) and (3, 4): 13 pairs left
    assert arctic.mdev(hand, obj, dist, idx, obj, valid).tolist() == pytest.approx([6.0 / 13])
    assert arctic.mdev(hand, obj, *contact_case(frames, 2), obj, valid).shape == (0,)


def quadratic(frames: int, accel: float, fps: float = 30.0) -> torch.Tensor:
    """[F]: x(t) = a t² / 2, whose central second difference over h² is exactly ``accel``."""
    t = torch.arange(frames, dtype=F64) / fps
    return 0.5 * accel * t**2


def test_hand_acceleration_is_root_relative_needs_three_valid_frames_and_is_nan_padded():
    frames = 8
    joints = hand_joints(frames, 4)
    verts = torch.randn(frames, 5, 3, generator=torch.Generator().manual_seed(5), dtype=F64)
    pred_verts, pred_joints = verts.clone(), joints.clone()
    pred_verts[:, :, 2] += quadratic(frames, 2.0)[:, None]
    valid = all_valid(frames)
    got = arctic.acc_hand(pred_verts, verts, pred_joints, joints, valid)
    assert got.shape == (frames,) and nan(got[0]) and nan(got[-1])
    assert got[1:-1].tolist() == pytest.approx([2.0] * (frames - 2))
    pred_joints[:, :1, 2] += quadratic(frames, 2.0)[:, None]  # the wrist moves alike: no relative error
    assert arctic.acc_hand(pred_verts, verts, pred_joints, joints, valid)[1:-1].abs().max() < 1e-6
    valid[4] = False
    got = arctic.acc_hand(pred_verts, verts, pred_joints, joints, valid)
    assert [nan(v) for v in got] == [True, False, False, True, True, True, False, True]


def test_object_acceleration_is_relative_to_the_bottom_root():
    frames = 6
    obj = torch.randn(frames, 4, 3, generator=torch.Generator().manual_seed(6), dtype=F64)
    bottom = torch.tensor([True, True, False, False])
    pred = obj.clone()
    pred[:, :, 0] += quadratic(frames, 3.0)[:, None]  # all move alike: none relative to the root
    assert arctic.acc_object(pred, obj, bottom, all_valid(frames))[1:-1].abs().max() < 1e-6
    pred[:, 2:, 0] += quadratic(frames, 4.0)[:, None]  # the top part accelerates: 2 of 4 vertices
    got = arctic.acc_object(pred, obj, bottom, all_valid(frames))
    assert got.shape == (frames,) and nan(got[0]) and nan(got[-1])
    assert got[1:-1].tolist() == pytest.approx([2.0] * (frames - 2))


def test_field_error_and_field_acceleration():
    frames = 5
    gt = torch.full((frames, 4), 0.05, dtype=F64)
    pred = gt.clone()
    pred[:, 0] += 0.004  # 4 mm on one of 4 vertices: 1 mm
    pred[:, 1] += quadratic(frames, 8.0)
    valid = torch.tensor([True, True, True, True, False])
    error = arctic.field_error(pred, gt, valid)
    assert error[0].item() == pytest.approx(1.0)
    assert nan(error[4])
    accel = arctic.acc_field(pred, gt, valid)
    assert [nan(v) for v in accel] == [True, False, False, True, True]
    assert accel[1:3].tolist() == pytest.approx([2.0, 2.0])  # 8 m/s² on one of 4 vertices


def test_nanmean_hands():
    got = arctic.nanmean_hands(torch.tensor([1.0, math.nan, math.nan]), torch.tensor([3.0, 2.0, math.nan]))
    assert got[:2].tolist() == [2.0, 2.0] and nan(got[2])


def sequence(frames: int, seed: int) -> dict:
    """A ground-truth sequence whose right hand grips the object (vertices at the object's) for a while."""
    generator = torch.Generator().manual_seed(seed)
    obj = torch.rand(frames, 30, 3, generator=generator, dtype=F64) * 0.1 + torch.tensor([0.0, 0.0, 0.5], dtype=F64)
    verts_r = torch.rand(frames, 12, 3, generator=generator, dtype=F64) * 0.1 + 0.3
    verts_r[:, :4] = obj[:, :4] + 0.001
    return {"joints_r": hand_joints(frames, seed), "joints_l": hand_joints(frames, seed + 1),
            "verts_r": verts_r, "verts_l": torch.rand(frames, 12, 3, generator=generator, dtype=F64) + 1.0,
            "obj_verts": obj, "obj_angle": torch.rand(frames, generator=generator, dtype=F64),
            "valid": all_valid(frames), "valid_r": all_valid(frames), "valid_l": all_valid(frames),
            "obj_bottom": torch.arange(30) < 10, "obj_diameter": 0.15}


def test_a_perfect_prediction_scores_zero_error_and_full_success():
    target = sequence(6, 0)
    pred = {key: target[key] for key in arctic.POSE_KEYS}
    pred.update(zip(arctic.FIELD_KEYS, (arctic.interaction_field(target["verts_r"], target["obj_verts"])[0],
                                         arctic.interaction_field(target["verts_l"], target["obj_verts"])[0],
                                         arctic.interaction_field(target["verts_r"], target["obj_verts"])[2],
                                         arctic.interaction_field(target["verts_l"], target["obj_verts"])[2])))
    got = arctic.evaluate(pred, target)
    assert set(got) == set(arctic.OUTPUT_KEYS)
    assert got["success_rate"] == 100.0
    assert nan(got["mdev"])  # 6 frames: no window
    # CDev is the ground truth's own hand-object distance at contact: 1 mm along each axis
    assert got["cdev"] == pytest.approx(math.sqrt(3.0))
    for key in set(arctic.OUTPUT_KEYS) - {"success_rate", "mdev", "cdev"}:
        assert got[key] == pytest.approx(0.0, abs=1e-6), key


def test_hand_validity_is_anded_with_frame_validity_and_field_metrics_need_every_distance():
    target = sequence(4, 1)
    pred = {key: target[key].clone() for key in arctic.POSE_KEYS}
    pred["joints_l"][:, 5] += torch.tensor([0.021, 0.0, 0.0], dtype=F64)  # left hand: 1 mm in every frame
    target["valid_r"] = torch.tensor([False, False, True, True])
    target["valid"] = torch.tensor([True, False, True, False])
    frames = arctic.evaluate_frames(pred, target)
    assert [nan(v) for v in frames["mpjpe"]] == [False, True, False, True]
    assert frames["mpjpe"][0] == pytest.approx(1.0)  # the left hand alone
    assert frames["mpjpe"][2] == pytest.approx(0.5)  # both hands
    assert [nan(v) for v in frames["mrrpe_rl"]] == [True, True, False, True]
    assert [nan(v) for v in frames["aae"]] == [False, True, False, True]
    assert "field_error_ho" not in frames
    pred["dist_ro"] = pred["dist_lo"] = torch.zeros(4, 12, dtype=F64)
    pred["dist_or"] = torch.zeros(4, 30, dtype=F64)
    assert "field_error_ho" not in arctic.evaluate_frames(pred, target)
    with pytest.raises(KeyError, match="obj_angle"):
        arctic.evaluate_frames({k: v for k, v in pred.items() if k != "obj_angle"}, target)


def test_a_split_is_one_frame_weighted_nanmean_over_all_sequences():
    first, second = sequence(2, 2), sequence(4, 3)
    preds = []
    for target, error in ((first, 0.001), (second, 0.004)):
        pred = {key: target[key].clone() for key in arctic.POSE_KEYS}
        pred["obj_angle"] = target["obj_angle"] + error * math.pi / 180 * 1000  # error x 1000 degrees
        preds.append(pred)
    second["valid"] = torch.tensor([True, True, True, False])
    frames = [arctic.evaluate_frames(p, t) for p, t in zip(preds, (first, second))]
    # (2 x 1 + 3 x 4) / 5 frames, not the mean of the sequences' means (2.5)
    assert arctic.aggregate(frames)["aae"] == pytest.approx(14 / 5)
    assert repr(arctic.evaluate(preds[1], second)) == repr(arctic.aggregate([frames[1]]))  # NaN included


def test_a_ground_truth_field_given_in_the_target_is_used_as_computed():
    target = sequence(20, 4)
    pred = {key: target[key] + 0.002 for key in arctic.POSE_KEYS}
    pred.update(dist_ro=torch.full((20, 12), 0.01, dtype=F64), dist_lo=torch.full((20, 12), 0.02, dtype=F64),
                dist_or=torch.full((20, 30), 0.03, dtype=F64), dist_ol=torch.full((20, 30), 0.04, dtype=F64))
    computed = arctic.evaluate_frames(pred, target)
    dist_ro, idx_ro, dist_or, _ = arctic.interaction_field(target["verts_r"], target["obj_verts"])
    dist_lo, idx_lo, dist_ol, _ = arctic.interaction_field(target["verts_l"], target["obj_verts"])
    given = dict(zip(arctic.GT_FIELD_KEYS, (dist_ro, idx_ro, dist_lo, idx_lo, dist_or, dist_ol)))
    cached = arctic.evaluate_frames(pred, {**target, **given})
    assert set(cached) == set(computed)
    for key in computed:
        torch.testing.assert_close(cached[key], computed[key], equal_nan=True, rtol=0, atol=0)
    # and it is what is used: another field gives other contacts and field errors
    other = {**target, **given, "dist_ro": dist_ro + 0.01}
    assert not torch.equal(arctic.evaluate_frames(pred, other)["field_error_ho"], computed["field_error_ho"])
