"""hogsa.data.arctic and arctic_writer: the ARCTIC layout, read from hand-made files and written then read back."""

import json
import os
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hogsa import safe_pickle
from hogsa.articulated import ObjectPose
from hogsa.data import arctic, arctic_objects, arctic_writer
from hogsa.data.schema import NUM_VIEWS, Camera, SequenceRecord
from hogsa.hand import HandPose

NAME = "s01/box_grab_01"
FRAMES = 4
W, H = 16, 12


def rigid(rotvec, trans) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    matrix[:3, 3] = trans
    return matrix


def random_sequence(rng: np.random.Generator, ego: bool = True, views=(1, 3)) -> SequenceRecord:
    """A sequence with random parameters, the ego camera (moving) and allocentric ``views``."""
    cameras = [None] * NUM_VIEWS
    K = np.array([[20.0, 0, 8.5], [0, 21.0, 6.5], [0, 0, 1]])
    for view in views:
        cameras[view] = Camera(K=K + view, world2cam=rigid(rng.normal(size=3), rng.normal(size=3)), width=W, height=H)
    ego_world2cam = None
    if ego:
        ego_world2cam = np.stack([rigid(rng.normal(size=3), rng.normal(size=3)) for _ in range(FRAMES)])
        cameras[0] = Camera(K=K, world2cam=ego_world2cam[0], width=W, height=H, dist=rng.normal(size=8) * 0.01)
    hands = {}
    for side in ("right", "left"):
        rot, pose, trans = rng.normal(size=(FRAMES, 3)), rng.normal(size=(FRAMES, 45)), rng.normal(size=(FRAMES, 3))
        hands[side] = HandPose(rot, pose, np.tile(rng.normal(size=10), (FRAMES, 1)), trans)  # one shape per subject
    valid = {side: np.ones(FRAMES, bool) for side in ("right", "left")}
    object_pose = ObjectPose(rng.uniform(0, 1, FRAMES), rng.normal(size=(FRAMES, 3)), rng.normal(size=(FRAMES, 3)))
    return SequenceRecord(name=NAME, subject="s01", object_name="box", frames=FRAMES, cameras=cameras, hands=hands,
                    hand_valid=valid, object_pose=object_pose, ego_world2cam=ego_world2cam, gender="female")


def image_of(view: int, frame: int) -> np.ndarray:
    """A smooth picture (JPEG keeps it within a few levels)."""
    y, x = np.mgrid[:H, :W]
    return np.stack([x * 10 + view * 5, y * 12 + frame * 7, np.full_like(x, 100)], axis=-1).astype(np.uint8)


def mask_of(view: int, frame: int) -> np.ndarray:
    return ((np.arange(H * W).reshape(H, W) + view + frame) % 4).astype(np.uint8)


def assert_same_sequence(read: SequenceRecord, written: SequenceRecord) -> None:
    for read_field, written_field in zip(read.object_pose, written.object_pose):
        np.testing.assert_allclose(read_field, written_field, rtol=0, atol=1e-12)
    for side in ("right", "left"):
        for read_field, written_field in zip(read.hands[side], written.hands[side]):
            np.testing.assert_allclose(read_field, written_field, rtol=0, atol=1e-12)
        assert np.array_equal(read.hand_valid[side], written.hand_valid[side])
    assert read.views == written.views
    for view in written.views:
        for field in ("K", "world2cam"):
            np.testing.assert_allclose(getattr(read.cameras[view], field), getattr(written.cameras[view], field),
                                       rtol=0, atol=1e-12)
        assert (read.cameras[view].width, read.cameras[view].height) == (W, H)
    if written.ego_world2cam is not None:
        np.testing.assert_allclose(read.ego_world2cam, written.ego_world2cam, rtol=0, atol=1e-12)
        # exact: the distortion is stored in the .npy as it is and read back untouched
        np.testing.assert_allclose(read.cameras[0].dist, written.cameras[0].dist, rtol=0, atol=0)
    assert (read.name, read.subject, read.object_name, read.frames) == (NAME, "s01", "box", FRAMES)


def test_write_read_round_trip_with_hands_mean_images_masks_and_ioi_offset(tmp_path):
    rng = np.random.default_rng(0)
    seq = random_sequence(rng)
    hands_mean = {"right": rng.normal(size=45), "left": rng.normal(size=45)}
    images = {(view, frame): image_of(view, frame) for view in seq.views for frame in range(FRAMES)}
    arctic_writer.write_sequence(tmp_path, seq, images=images, masks=mask_of, subject_meta={"ioi_offset": 2},
                                 hands_mean=hands_mean)

    read = arctic.read_sequence(tmp_path, NAME, hands_mean=hands_mean)
    assert_same_sequence(read, seq)
    assert read.gender == "female"
    # pose is stored relative to hands_mean, object translation in millimetres, both as ARCTIC
    stored = safe_pickle.load(tmp_path / "raw_seqs/s01/box_grab_01.mano.npy")
    np.testing.assert_allclose(stored["left"]["pose"], seq.hands["left"].hand_pose - hands_mean["left"])
    assert stored["left"]["shape"].shape == (10,)  # one shape per hand, as ARCTIC
    np.testing.assert_allclose(np.load(tmp_path / "raw_seqs/s01/box_grab_01.object.npy")[:, 4:],
                               seq.object_pose.transl * 1000)
    # images and masks are named frame + ioi_offset
    assert sorted(p.name for p in (tmp_path / "images/s01/box_grab_01/3").iterdir()) == [
        "00002.jpg", "00003.jpg", "00004.jpg", "00005.jpg"]
    assert read.image_path(3, 0) == tmp_path / "images/s01/box_grab_01/3/00002.jpg"
    for view in seq.views:
        for frame in range(FRAMES):
            error = np.abs(read.image(view, frame).astype(int) - image_of(view, frame)).mean()
            assert error < 4, (view, frame, error)
            np.testing.assert_array_equal(read.mask(view, frame), mask_of(view, frame))
    assert not list(tmp_path.rglob("*.tmp*")), "temporary files left behind"


def test_reading_without_hands_mean_gives_the_stored_relative_pose(tmp_path):
    rng = np.random.default_rng(1)
    seq = random_sequence(rng, ego=False)
    hands_mean = {"right": np.full(45, 0.1), "left": np.full(45, -0.2)}
    arctic_writer.write_sequence(tmp_path, seq, hands_mean=hands_mean)
    read = arctic.read_sequence(tmp_path, NAME)
    np.testing.assert_allclose(read.hands["right"].hand_pose, seq.hands["right"].hand_pose - 0.1, atol=1e-12)
    assert read.cameras[0] is None and read.ego_world2cam is None
    assert read.mask(1, 0) is None  # no masks/ folder for this sequence


def write_arctic_fixture(root: Path) -> dict:
    """Hand-made ARCTIC files for s01/box_grab_01 (3 frames, views 1 and 2, ioi_offset 1)."""
    frames = 3
    right = {"rot": np.full((frames, 3), 0.1, np.float32), "pose": np.full((frames, 45), 0.2, np.float32),
             "trans": np.array([[0.1, 0.2, 0.3]] * frames, np.float32), "shape": np.arange(10, dtype=np.float32),
             "fitting_err": np.zeros(frames, np.float32)}
    left = {"rot": np.zeros((frames, 3)), "pose": np.zeros((frames, 45)), "trans": np.zeros((frames, 3)),
            "shape": np.stack([np.full(10, 0.5), np.full(10, 0.7), np.full(10, 0.9)])}
    raw = root / "raw_seqs/s01"
    raw.mkdir(parents=True)
    np.save(raw / "box_grab_01.mano.npy", {"right": right, "left": left})
    obj = np.array([[0.5, 0, 0, 0.1, 100.0, -200.0, 1500.0]] * frames)
    np.save(raw / "box_grab_01.object.npy", obj)
    world2cam = np.tile(np.eye(4), (8, 1, 1))
    world2cam[1, :3, 3] = 0, 0, 2
    intris = np.tile(np.array([[1000.0, 0, 500], [0, 1000, 400], [0, 0, 1]]), (8, 1, 1))
    sizes = [[2800, 2000]] + [[1000, 800]] * 2 + [[0, 0]] * 6
    misc = {"s01": {"world2cam": world2cam.tolist(), "intris_mat": intris.tolist(), "image_size": sizes,
                    "ioi_offset": 1, "gender": "male"}}
    (root / "meta").mkdir()
    (root / "meta/misc.json").write_text(json.dumps(misc))
    return {"right": right, "left": left, "obj": obj, "misc": misc}


def test_hand_made_fixture_reads_to_documented_values(tmp_path):
    write_arctic_fixture(tmp_path)
    hands_mean = {"right": np.full(45, 0.05), "left": np.zeros(45)}
    seq = arctic.read_sequence(tmp_path, NAME, hands_mean=hands_mean)
    assert (seq.frames, seq.object_name, seq.gender) == (3, "box", "male")
    np.testing.assert_allclose(seq.hands["right"].hand_pose, 0.25, atol=1e-6)  # stored 0.2 + hands_mean 0.05
    np.testing.assert_allclose(seq.hands["right"].betas, np.tile(np.arange(10), (3, 1)))  # (10,) shape, every frame
    np.testing.assert_allclose(seq.hands["left"].betas, 0.5)  # (F,10): the first frame's, on every frame
    assert seq.hands["left"].betas.shape == (3, 10)
    np.testing.assert_allclose(seq.hands["right"].transl[0], [0.1, 0.2, 0.3], atol=1e-6)
    assert seq.hand_valid["left"].all() and seq.hand_valid["left"].dtype == bool
    np.testing.assert_allclose(seq.object_pose.transl[0], [0.1, -0.2, 1.5])  # millimetres → metres
    np.testing.assert_allclose(seq.object_pose.articulation, 0.5)
    np.testing.assert_allclose(seq.object_pose.rot[0], [0, 0, 0.1])
    assert seq.views == [1, 2]  # no egocam file; views 3-8 have image size [0, 0]
    assert seq.ego_world2cam is None
    np.testing.assert_allclose(seq.cameras[2].world2cam[:3, 3], [0, 0, 2])
    np.testing.assert_allclose(seq.cameras[1].K[:2, 2], [500.5, 400.5])  # OpenCV → hogsa pixel centres
    assert (seq.cameras[1].width, seq.cameras[1].height) == (1000, 800)
    assert seq.image_path(2, 0) == tmp_path / "images/s01/box_grab_01/2/00001.jpg"  # ioi_offset 1
    assert all(field.dtype == np.float64 for field in seq.hands["right"])


def test_egocentric_camera_is_per_frame(tmp_path):
    write_arctic_fixture(tmp_path)
    rot = np.stack([Rotation.from_rotvec([0, 0.1 * f, 0]).as_matrix() for f in range(3)])
    trans = np.array([[[0.0], [0.0], [0.5 + f]] for f in range(3)])  # (F,3,1) metres, as ARCTIC
    K = np.array([[1500.0, 0, 1400], [0, 1500, 1000], [0, 0, 1]])
    np.save(tmp_path / "raw_seqs/s01/box_grab_01.egocam.dist.npy",
            {"R_k_cam_np": rot, "T_k_cam_np": trans, "intrinsics": K, "dist8": np.arange(8) * 0.01})
    seq = arctic.read_sequence(tmp_path, NAME)
    assert seq.views == [0, 1, 2]
    camera = seq.camera(0, 2)
    np.testing.assert_allclose(camera.world2cam[:3, :3], rot[2])
    np.testing.assert_allclose(camera.world2cam[:3, 3], [0, 0, 2.5])
    np.testing.assert_allclose(camera.K[:2, 2], [1400.5, 1000.5])
    np.testing.assert_allclose(camera.dist, np.arange(8) * 0.01)
    assert (camera.width, camera.height) == (2800, 2000)


def test_splits_round_trip_and_unknown_split(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"protocol_p1\.json: not found; it should hold the split lists"):
        arctic.list_sequences(tmp_path, "train")
    arctic_writer.write_splits(tmp_path, {"train": [NAME, "s02/laptop_use_03"], "val": [], "test": ["s03/box_use_01"]})
    assert arctic.list_sequences(tmp_path, "train") == [NAME, "s02/laptop_use_03"]
    assert arctic.list_sequences(tmp_path, "test") == ["s03/box_use_01"]
    with pytest.raises(ValueError, match=r"unknown split 'tran'; valid splits are \['test', 'train', 'val'\]"):
        arctic.list_sequences(tmp_path, "tran")
    with pytest.raises(ValueError, match="not of the form"):
        arctic_writer.write_splits(tmp_path, {"train": ["box_grab_01"]})


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"box_grab_01\.mano\.npy: not found; it should hold the MANO"):
        arctic.read_sequence(tmp_path, NAME)
    write_arctic_fixture(tmp_path)
    (tmp_path / "raw_seqs/s01/box_grab_01.object.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"box_grab_01\.object\.npy: not found; it should hold the \(F,7\)"):
        arctic.read_sequence(tmp_path, NAME)
    write_arctic_fixture(tmp_path / "other")
    (tmp_path / "other/meta/misc.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"misc\.json: not found"):
        arctic.read_sequence(tmp_path / "other", NAME)


def edit_mano(root: Path, side: str, field: str, value) -> None:
    path = root / "raw_seqs/s01/box_grab_01.mano.npy"
    data = safe_pickle.load(path)
    if value is None:
        del data[side][field]
    else:
        data[side][field] = value
    np.save(path, data)


@pytest.mark.parametrize(
    "side, field, value, match",
    [
        ("right", "pose", np.zeros((3, 44)), r"mano\.npy: field 'right\.pose' has shape \(3, 44\), expected \(3, 45\)"),
        ("left", "trans", np.full((3, 3), np.nan), r"mano\.npy: field 'left\.trans' holds NaN"),
        ("left", "shape", np.zeros((3, 11)), r"mano\.npy: field 'left\.shape' has shape \(3, 11\), expected \(3, 10\)"),
        ("right", "trans", None, r"mano\.npy: field 'right\.trans' is missing"),
    ],
)
def test_bad_mano_fields_name_file_and_field(tmp_path, side, field, value, match):
    write_arctic_fixture(tmp_path)
    edit_mano(tmp_path, side, field, value)
    with pytest.raises(ValueError, match=match):
        arctic.read_sequence(tmp_path, NAME)


def test_bad_object_and_misc_fields_name_file_and_field(tmp_path):
    fixture = write_arctic_fixture(tmp_path)
    obj = fixture["obj"].copy()
    obj[1, 5] = np.nan
    np.save(tmp_path / "raw_seqs/s01/box_grab_01.object.npy", obj)
    with pytest.raises(ValueError, match=r"object\.npy: field 'object pose' holds NaN .*index \(1, 5\)"):
        arctic.read_sequence(tmp_path, NAME)
    np.save(tmp_path / "raw_seqs/s01/box_grab_01.object.npy", obj[:, :6])
    with pytest.raises(ValueError, match=r"object\.npy: field 'object pose' has shape \(3, 6\), expected \(\*, 7\)"):
        arctic.read_sequence(tmp_path, NAME)
    np.save(tmp_path / "raw_seqs/s01/box_grab_01.object.npy", fixture["obj"][:2])
    with pytest.raises(ValueError, match=r"mano\.npy: field 'right' has 3 frames, .*object\.npy has 2"):
        arctic.read_sequence(tmp_path, NAME)
    np.save(tmp_path / "raw_seqs/s01/box_grab_01.object.npy", fixture["obj"])
    misc = fixture["misc"]
    misc["s01"]["intris_mat"] = misc["s01"]["intris_mat"][:7]
    (tmp_path / "meta/misc.json").write_text(json.dumps(misc))
    with pytest.raises(ValueError, match=r"misc\.json \[s01\]: field 'intris_mat' has shape \(7, 3, 3\)"):
        arctic.read_sequence(tmp_path, NAME)
    (tmp_path / "meta/misc.json").write_text(json.dumps({"s02": misc["s01"]}))
    with pytest.raises(ValueError, match=r"misc\.json: no entry for subject 's01'; subjects present: \['s02'\]"):
        arctic.read_sequence(tmp_path, NAME)


def test_pickled_npy_with_foreign_class_is_refused(tmp_path):
    write_arctic_fixture(tmp_path)
    np.save(tmp_path / "raw_seqs/s01/box_grab_01.mano.npy", {"right": {"rot": os.system}}, allow_pickle=True)
    with pytest.raises(pickle.UnpicklingError, match=r"mano\.npy: refused to load class .*system"):
        arctic.read_sequence(tmp_path, NAME)


def test_misc_json_merges_subjects_and_refuses_conflicting_cameras(tmp_path):
    rng = np.random.default_rng(2)
    fixture = write_arctic_fixture(tmp_path)  # subject s01 in misc.json already
    other = random_sequence(rng, views=(1, 2))
    other = replace(other, name="s02/box_use_01", subject="s02", gender=None)
    arctic_writer.write_sequence(tmp_path, other, subject_meta={"ioi_offset": 1, "gender": "male"})
    second = replace(other, name="s02/box_use_02", cameras=other.cameras[:2] + [None] * 7)
    arctic_writer.write_sequence(tmp_path, second, subject_meta={"ioi_offset": 1})  # fewer views: merged, not dropped
    misc = json.loads((tmp_path / "meta/misc.json").read_text())
    assert misc["s01"] == fixture["misc"]["s01"]  # exact: read and rewritten untouched (JSON floats round-trip)
    assert misc["s02"]["ioi_offset"] == 1 and misc["s02"]["gender"] == "male"
    assert arctic.read_sequence(tmp_path, "s02/box_use_02").views == [0, 1, 2]
    moved = list(other.cameras)
    moved[2] = Camera(K=moved[2].K, world2cam=np.eye(4), width=W, height=H)
    with pytest.raises(ValueError, match=r"misc\.json \[s02\]: field 'world2cam\[1\]' differs .* shared by all"):
        arctic_writer.write_sequence(tmp_path, replace(other, cameras=moved), subject_meta={"ioi_offset": 1})
    with pytest.raises(ValueError, match=r"misc\.json \[s02\]: field 'ioi_offset' is 1, this sequence gives 0"):
        arctic_writer.write_sequence(tmp_path, other)


def test_writer_refuses_invalid_frames_and_bad_images(tmp_path):
    rng = np.random.default_rng(3)
    seq = random_sequence(rng, ego=False)
    invalid = {"right": np.ones(FRAMES, bool), "left": np.array([True, False, True, True])}
    with pytest.raises(ValueError, match=r"field 'hand_valid\.left' has invalid frames"):
        arctic_writer.write_sequence(tmp_path, replace(seq, hand_valid=invalid))
    betas = seq.hands["right"].betas.copy()
    betas[2, 4] += 1e-9
    changed = replace(seq.hands["right"], betas=betas)
    with pytest.raises(ValueError, match=r"field 'hands\.right\.betas' differs between frame 0 and frame 2; .* one shape"):
        arctic_writer.write_sequence(tmp_path, replace(seq, hands={**seq.hands, "right": changed}))
    with pytest.raises(ValueError, match=r"00000\.jpg: image of sequence s01/box_grab_01 view 1 must be uint8 \[12, 16, 3\]"):
        arctic_writer.write_sequence(tmp_path, seq, images={(1, 0): np.zeros((H, W), np.uint8)})
    with pytest.raises(ValueError, match=r"00000\.png: mask labels must be in"):
        arctic_writer.write_sequence(tmp_path, seq, masks={(1, 0): np.full((H, W), 7, np.uint8)})
    with pytest.raises(ValueError, match=r"view 2 is absent"):
        arctic_writer.write_sequence(tmp_path, seq, images={(2, 0): image_of(2, 0)})


def test_read_object_template_reads_the_meta_folder_in_metres(tmp_path):
    folder = tmp_path / "meta/object_vtemplates/wedge"
    folder.mkdir(parents=True)
    (folder / "mesh.obj").write_text("v 0 0 0\nv 100 0 0\nv 0 100 0\nv 0 0 100\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    (folder / "parts.json").write_text("[1, 1, 1, 0]")
    obj = arctic_objects.read_object_template(tmp_path, "wedge")
    np.testing.assert_allclose(obj.vertices.numpy().max(axis=0), [0.1, 0.1, 0.1])  # millimetres → metres
    assert obj.top_mask.tolist() == [False, False, False, True]
    with pytest.raises(FileNotFoundError, match=r"object_vtemplates/laptop: object template folder"):
        arctic_objects.read_object_template(tmp_path, "laptop")
