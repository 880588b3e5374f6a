"""hogsa.data.schema: validation on construction, per-frame cameras, lazy images and masks."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hogsa.articulated import ObjectPose
from hogsa.data.schema import (
    NUM_VIEWS,
    Camera,
    K_from_dataset,
    K_to_dataset,
    SequenceRecord,
)
from hogsa.hand import HandPose

FRAMES = 3
K = np.array([[100.0, 0.0, 4.0], [0.0, 110.0, 3.0], [0.0, 0.0, 1.0]])


def translation(x: float, y: float, z: float) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = x, y, z
    return matrix


def hand(frames: int = FRAMES) -> HandPose:
    return HandPose.zeros(frames)


def object_pose(frames: int = FRAMES) -> ObjectPose:
    return ObjectPose(np.zeros(frames), np.zeros((frames, 3)), np.zeros((frames, 3)))


def sequence(tmp_path: Path | None = None, **changes) -> SequenceRecord:
    """Three frames, view 0 (moving along x) and view 2 of size 8×6; images under tmp_path."""
    ego = np.stack([translation(0.1 * f, 0, 0) for f in range(FRAMES)])
    cameras = [None] * NUM_VIEWS
    cameras[0] = Camera(K=K, world2cam=ego[0], width=8, height=6)
    cameras[2] = Camera(K=K, world2cam=translation(0, 0, 1), width=8, height=6)
    fields = dict(
        name="s01/box_grab_01", subject="s01", object_name="box", frames=FRAMES, cameras=cameras,
        hands={"right": hand(), "left": hand()}, hand_valid={"right": np.ones(FRAMES, bool), "left": np.ones(FRAMES, bool)},
        object_pose=object_pose(), ego_world2cam=ego,
        image_file=(lambda view, frame: tmp_path / f"{view}_{frame}.png") if tmp_path else None,
        mask_file=(lambda view, frame: tmp_path / f"m{view}_{frame}.png") if tmp_path else None,
    )
    fields.update(changes)
    return SequenceRecord(**fields)


def test_camera_converts_to_float64_copies():
    camera = Camera(K=K.astype(np.float32), world2cam=np.eye(4, dtype=np.float32), width=np.int64(8), height=6)
    assert camera.K.dtype == np.float64 and camera.world2cam.dtype == np.float64
    assert isinstance(camera.width, int)


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(K=np.eye(4)), r"'K' has shape \(4, 4\), expected \(3, 3\)"),
        (dict(world2cam=np.full((4, 4), np.nan)), r"'world2cam' holds NaN"),
        (dict(world2cam=2 * np.eye(4)), r"'world2cam' is not a rigid transform"),
        (dict(width=0), r"'width' must be a positive integer"),
        (dict(dist=np.zeros(5)), r"'dist' has shape \(5,\), expected \(8,\)"),
    ],
)
def test_camera_rejects_bad_fields(changes, match):
    with pytest.raises(ValueError, match=match):
        Camera(**{**dict(K=K, world2cam=np.eye(4), width=8, height=6), **changes})


def test_pixel_centre_conversion_is_half_a_pixel_and_inverts():
    hogsa_K = K_from_dataset(K)
    np.testing.assert_allclose(hogsa_K[:2, 2], K[:2, 2] + 0.5)
    np.testing.assert_allclose(hogsa_K[[0, 1], [0, 1]], K[[0, 1], [0, 1]])
    np.testing.assert_allclose(K_to_dataset(hogsa_K), K)


def test_sequence_holds_float64_copies_of_the_poses():
    given = HandPose(*(np.ones((FRAMES, width), dtype=np.float32) for width in (3, 45, 10, 3)))
    given_object = ObjectPose(np.ones(FRAMES, dtype=np.float32), np.ones((FRAMES, 3)), np.ones((FRAMES, 3)))
    seq = sequence(hands={"left": hand(), "right": given}, object_pose=given_object)
    assert list(seq.hands) == ["right", "left"]  # in SIDES order whatever the order given
    assert all(field.dtype == np.float64 for field in seq.hands["right"]) and seq.object_pose.articulation.dtype == np.float64
    given.transl[:] = 5.0
    given_object.rot[:] = 5.0
    assert (seq.hands["right"].transl == 1.0).all() and (seq.object_pose.rot == 1.0).all()  # copies, not views
    assert seq.hand_valid["left"].dtype == bool and seq.hand_valid["left"].shape == (FRAMES,)


def nan_pose() -> HandPose:
    pose = HandPose.zeros(FRAMES)
    pose.hand_pose[1, 7] = np.nan
    return pose


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(object_pose=ObjectPose(np.zeros(FRAMES), np.zeros((FRAMES, 3)), np.full((FRAMES, 3), np.nan))),
         r"sequence s01/box_grab_01: field 'object_pose.transl' holds NaN"),
        (dict(object_pose=object_pose(FRAMES + 1)),
         r"sequence s01/box_grab_01: field 'object_pose.articulation' has shape \(4,\), expected \(3,\)"),
        (dict(object_pose=np.zeros((FRAMES, 7))), r"field 'object_pose' must be an ObjectPose of 3 rows, got ndarray"),
        (dict(hands={"right": hand(), "left": hand(FRAMES + 1)}),
         r"sequence s01/box_grab_01: field 'hands.left.global_orient' has shape \(4, 3\), expected \(3, 3\)"),
        (dict(hands={"right": nan_pose(), "left": hand()}), r"field 'hands.right.hand_pose' holds NaN .*index \(1, 7\)"),
        (dict(hands={"right": {"rot": np.zeros((3, 3))}, "left": hand()}), r"field 'hands.right' must be a HandPose of 3"),
        (dict(hands={"right": hand()}), r"field 'hands' must have keys"),
        (dict(hand_valid={"right": np.ones(FRAMES, bool)}), r"field 'hand_valid' must have keys"),
        (dict(hand_valid={"right": np.ones(FRAMES, bool), "left": np.ones(FRAMES)}),
         r"field 'hand_valid.left' must be bool of shape \(3,\), got float64"),
        (dict(cameras=[None] * 8), r"field 'cameras' must be 9 entries"),
        (dict(ego_world2cam=None), r"field 'ego_world2cam' must be given exactly when cameras\[0\] is"),
        (dict(ego_world2cam=np.tile(translation(0, 1, 0), (FRAMES, 1, 1))), r"cameras\[0\].world2cam' must equal"),
        (dict(frames=0), r"field 'frames' must be a positive integer"),
    ],
)
def test_sequence_rejects_bad_fields_naming_sequence_and_field(changes, match):
    with pytest.raises(ValueError, match=match):
        sequence(**changes)


def test_camera_of_ego_view_moves_per_frame_and_static_view_does_not():
    seq = sequence()
    assert seq.views == [0, 2]
    np.testing.assert_allclose(seq.camera(0, 2).world2cam, translation(0.2, 0, 0))
    assert seq.camera(0, 2).width == 8
    assert seq.camera(2, 2) is seq.cameras[2]
    with pytest.raises(ValueError, match=r"view 1 is absent; present views are \[0, 2\]"):
        seq.camera(1, 0)
    with pytest.raises(ValueError, match=r"frame 3 is out of range"):
        seq.camera(2, 3)


def test_image_and_mask_are_read_lazily(tmp_path):
    seq = sequence(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"2_1\.png: image of sequence s01/box_grab_01, view 2, frame 1"):
        seq.image(2, 1)
    image = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    Image.fromarray(image).save(tmp_path / "2_1.png")
    np.testing.assert_array_equal(seq.image(2, 1), image)
    mask = np.array([[0, 1, 2, 3] * 2] * 6, dtype=np.uint8)
    Image.fromarray(mask).save(tmp_path / "m2_1.png")
    np.testing.assert_array_equal(seq.mask(2, 1), mask)
    Image.fromarray(image[:4]).save(tmp_path / "0_0.png")
    with pytest.raises(ValueError, match=r"0_0\.png: size 8×4 differs from view 0's camera \(8×6\)"):
        seq.image(0, 0)


def test_sequence_without_masks_or_images():
    seq = sequence()
    assert seq.mask(2, 0) is None
    with pytest.raises(FileNotFoundError, match="has no images"):
        seq.image(2, 0)
