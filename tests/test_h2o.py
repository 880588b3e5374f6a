"""hogsa.data.h2o: H2O sequence folders (both folder spellings) and object meshes, read and written."""

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from hogsa.articulated import ObjectPose
from hogsa.data import h2o
from hogsa.data.schema import NUM_VIEWS, SIDES, Camera, SequenceRecord
from hogsa.hand import HandConfig, HandPose, hand_models, hand_vertices, load_mano_file, rest_wrists
from hogsa.open_hand import open_hand_file
from hogsa.open_objects import open_object

FRAMES = 3
LEFT_VALID = [1, 0, 1]


def rigid(rotvec, trans) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    matrix[:3, 3] = trans
    return matrix


CAM2WORLD = {0: rigid([0, 0.3, 0], [1, 0, 0]), 1: rigid([0.2, 0, 0.1], [0, 1, 0])}  # static cameras


def ego_cam2world(frame: int) -> np.ndarray:
    return rigid([0, 0, 0.1 * frame], [0, 0, 0.5 + 0.1 * frame])


def hand_row(frame: int) -> np.ndarray:
    """124 floats: left then right, each valid, trans 3, global orient 3, pose 45, betas 10."""
    row = np.zeros(124)
    for offset, valid, sign in ((0, LEFT_VALID[frame], -1.0), (62, 1, 1.0)):
        row[offset] = valid
        row[offset + 1 : offset + 4] = sign * np.array([0.1, 0.2, 0.6]) + 0.01 * frame
        row[offset + 4 : offset + 7] = [0.3, 0.0, sign * 0.2]
        row[offset + 7 : offset + 52] = sign * 0.01 * (np.arange(45) + frame)
        row[offset + 52 : offset + 62] = sign * (np.arange(10) + 1) * 0.1 + frame  # betas vary with frame
    return row


def object_pose(frame: int) -> np.ndarray:
    return rigid([0.1 * frame, 0.5, 0], [0.05, -0.02, 0.4 + 0.01 * frame])


def write_line(path: Path, values) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(" ".join(f"{v:.17g}" for v in np.ravel(values)) + "\n")


def write_h2o_fixture(root: Path, hand_dir: str, obj_dir: str, cams=(0, 1, 4), class_id: int = 5) -> Path:
    """subject1/h1/0 with cameras ``cams``; every camera gets annotations (cam 4's in its own frame)."""
    seq_dir = root / "subject1" / "h1" / "0"
    for cam in cams:
        cam_dir = seq_dir / f"cam{cam}"
        write_line(cam_dir / "cam_intrinsics.txt", [636.0 + cam, 637.0, 635.0, 365.0, 1280, 720])
        for frame in range(FRAMES):
            stem = f"{frame:06d}"
            write_line(cam_dir / "cam_pose" / f"{stem}.txt", ego_cam2world(frame) if cam == 4 else CAM2WORLD[cam])
            write_line(cam_dir / hand_dir / f"{stem}.txt", hand_row(frame))
            write_line(cam_dir / obj_dir / f"{stem}.txt", np.concatenate([[class_id], object_pose(frame).ravel()]))
    return seq_dir


@pytest.mark.parametrize("hand_dir, obj_dir", [("hand_pose_MANO", "obj_pose_rt"), ("hand_pose_mano", "obj_pose_RT")])
def test_fixture_reads_to_documented_values(tmp_path, hand_dir, obj_dir):
    seq = h2o.read_sequence(write_h2o_fixture(tmp_path, hand_dir, obj_dir), cam=0)
    assert (seq.name, seq.subject, seq.object_name, seq.frames) == ("subject1/h1/0", "subject1", "milk", FRAMES)
    rows = np.stack([hand_row(f) for f in range(FRAMES)])
    right, left = seq.hands["right"], seq.hands["left"]
    np.testing.assert_allclose(right.transl, rows[:, 63:66])
    np.testing.assert_allclose(right.global_orient, rows[:, 66:69])
    np.testing.assert_allclose(right.hand_pose, rows[:, 69:114])  # absolute already: no hands_mean
    np.testing.assert_allclose(left.hand_pose, rows[:, 7:52])
    assert seq.hand_valid["left"].tolist() == [True, False, True] and seq.hand_valid["right"].all()
    np.testing.assert_array_equal(right.betas, np.tile(rows[0, 114:124], (FRAMES, 1)))  # first valid frame's, every frame
    np.testing.assert_array_equal(left.betas, np.tile(rows[0, 52:62], (FRAMES, 1)))
    pose = seq.object_pose
    np.testing.assert_allclose(pose.transl, [object_pose(f)[:3, 3] for f in range(FRAMES)])
    np.testing.assert_allclose(Rotation.from_rotvec(pose.rot).as_matrix(), [object_pose(f)[:3, :3] for f in range(FRAMES)],
                               atol=1e-12)
    np.testing.assert_allclose(pose.articulation, 0)


def test_each_frame_gets_the_betas_of_the_first_valid_frame_and_never_valid_hands_zeros(tmp_path):
    seq_dir = write_h2o_fixture(tmp_path, "hand_pose_MANO", "obj_pose_RT", cams=(0,))
    rows = np.stack([hand_row(f) for f in range(FRAMES)])
    rows[0, 0] = 0  # the left hand is now valid at frame 2 only
    rows[:, 62] = 0  # the right hand never
    for frame in range(FRAMES):
        write_line(seq_dir / "cam0/hand_pose_MANO" / f"{frame:06d}.txt", rows[frame])
    seq = h2o.read_sequence(seq_dir, cam=0)
    np.testing.assert_array_equal(seq.hands["left"].betas, np.tile(rows[2, 52:62], (FRAMES, 1)))
    np.testing.assert_array_equal(seq.hands["right"].betas, np.zeros((FRAMES, 10)))
    assert seq.hand_valid["left"].tolist() == [False, False, True] and not seq.hand_valid["right"].any()


def test_cameras_are_expressed_in_the_annotated_cameras_frame(tmp_path):
    seq = h2o.read_sequence(write_h2o_fixture(tmp_path, "hand_pose_MANO", "obj_pose_RT"), cam=0)
    assert seq.views == [0, 1, 2]  # cam4 → view 0, cam0 → 1, cam1 → 2
    cam0 = seq.cameras[1]
    np.testing.assert_allclose(cam0.world2cam, np.eye(4))  # set to the identity, not computed: zeros compare exactly
    np.testing.assert_allclose(cam0.K, [[636, 0, 635.5], [0, 637, 365.5], [0, 0, 1]])  # OpenCV → hogsa centres
    assert (cam0.width, cam0.height) == (1280, 720)
    point = np.array([0.1, -0.2, 0.7, 1.0])  # in cam0's frame = the sequence's world
    in_h2o_world = CAM2WORLD[0] @ point
    np.testing.assert_allclose(seq.cameras[2].world2cam @ point, np.linalg.inv(CAM2WORLD[1]) @ in_h2o_world)
    for frame in range(FRAMES):
        np.testing.assert_allclose(seq.camera(0, frame).world2cam @ point,
                                   np.linalg.inv(ego_cam2world(frame)) @ in_h2o_world, atol=1e-12)
    assert seq.image_path(0, 2) == tmp_path / "subject1/h1/0/cam4/rgb/000002.png"
    assert seq.mask(1, 0) is None  # H2O has no part masks


def test_egocentric_annotations_keep_the_moving_frame(tmp_path):
    seq = h2o.read_sequence(write_h2o_fixture(tmp_path, "hand_pose_MANO", "obj_pose_RT"), cam=4)
    assert seq.views == [0]
    np.testing.assert_allclose(seq.ego_world2cam, np.tile(np.eye(4), (FRAMES, 1, 1)))  # set, not computed
    np.testing.assert_allclose(seq.cameras[0].K[0, 0], 640.0)


def test_images_are_read_from_the_views_camera(tmp_path):
    seq_dir = write_h2o_fixture(tmp_path, "hand_pose_MANO", "obj_pose_RT", cams=(0,))
    write_line(seq_dir / "cam0/cam_intrinsics.txt", [10.0, 10.0, 3.5, 2.5, 8, 6])
    image = np.random.default_rng(0).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    (seq_dir / "cam0/rgb").mkdir()
    Image.fromarray(image).save(seq_dir / "cam0/rgb/000001.png")
    seq = h2o.read_sequence(seq_dir)
    np.testing.assert_array_equal(seq.image(1, 1), image)
    with pytest.raises(FileNotFoundError, match=r"cam0/rgb/000002\.png: image of sequence subject1/h1/0"):
        seq.image(1, 2)


def test_bad_annotations_name_file_and_field(tmp_path):
    seq_dir = write_h2o_fixture(tmp_path, "hand_pose_MANO", "obj_pose_RT", cams=(0,))
    hand_file = seq_dir / "cam0/hand_pose_MANO/000001.txt"
    write_line(hand_file, hand_row(1)[:123])
    with pytest.raises(ValueError, match=r"000001\.txt: field 'hand_pose_MANO' has shape \(123,\), expected \(124,\)"):
        h2o.read_sequence(seq_dir)
    row = hand_row(1)
    row[70] = np.nan
    write_line(hand_file, row)
    with pytest.raises(ValueError, match=r"000001\.txt: field 'hand_pose_MANO' holds NaN .*index \(70,\)"):
        h2o.read_sequence(seq_dir)
    write_line(hand_file, hand_row(1))
    write_line(seq_dir / "cam0/obj_pose_RT/000002.txt", np.concatenate([[3], object_pose(2).ravel()]))
    with pytest.raises(ValueError, match=r"obj_pose_RT: field 'class id' takes the values \[3, 5\]"):
        h2o.read_sequence(seq_dir)
    write_line(seq_dir / "cam0/obj_pose_RT/000002.txt", np.concatenate([[5], 2 * object_pose(2).ravel()]))
    with pytest.raises(ValueError, match=r"000002\.txt: field 'object→camera' is not a rigid transform"):
        h2o.read_sequence(seq_dir)
    (seq_dir / "cam0/obj_pose_RT/000002.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"obj_pose_RT/000002\.txt: not found; it should hold the 17 numbers"):
        h2o.read_sequence(seq_dir)
    hand_file.rename(seq_dir / "cam0/hand_pose_MANO/000007.txt")
    with pytest.raises(ValueError, match=r"hand_pose_MANO: frame files .* expected 000001\.txt, found 000002\.txt"):
        h2o.read_sequence(seq_dir)


def test_missing_folders_name_the_path(tmp_path):
    seq_dir = write_h2o_fixture(tmp_path, "hand_pose_mano", "obj_pose_rt", cams=(0,))
    with pytest.raises(FileNotFoundError, match=r"0/cam2: camera folder not found"):
        h2o.read_sequence(seq_dir, cam=2)
    with pytest.raises(ValueError, match="cam must be one of 0-4"):
        h2o.read_sequence(seq_dir, cam=5)
    for path in (seq_dir / "cam0/obj_pose_rt").iterdir():
        path.unlink()
    (seq_dir / "cam0/obj_pose_rt").rmdir()
    with pytest.raises(FileNotFoundError, match=r"cam0: no obj_pose_RT or obj_pose_rt folder"):
        h2o.read_sequence(seq_dir)
    write_h2o_fixture(tmp_path, "hand_pose_mano", "obj_pose_rt", cams=(0,))
    (seq_dir / "cam0/cam_intrinsics.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"cam0/cam_intrinsics\.txt: not found; it should hold the 6 numbers"):
        h2o.read_sequence(seq_dir)


TETRAHEDRON = "v 0 0 0\nv 0.1 0 0\nv 0 0.1 0\nv 0 0 0.1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"


def test_read_object_is_rigid_and_finds_the_spray_mesh(tmp_path):
    (tmp_path / "spray").mkdir()
    (tmp_path / "spray/lotion_spray.obj").write_text(TETRAHEDRON)
    obj = h2o.read_object(tmp_path, "spray")
    assert obj.name == "spray" and not obj.articulated and not obj.top_mask.any()
    assert obj.vertices.shape == (4, 3) and obj.faces.shape == (4, 3)
    assert obj.diameter == pytest.approx(0.1 * np.sqrt(2))
    assert obj.texture.shape == (1, 1, 3)  # no material: flat grey
    (tmp_path / "book").mkdir()
    (tmp_path / "book/book.obj").write_text(TETRAHEDRON.replace("0.1", "100"))
    with pytest.raises(ValueError, match=r"book\.obj: mesh spans 173\.2 units; H2O object meshes are expected in metres"):
        h2o.read_object(tmp_path, "book")
    with pytest.raises(FileNotFoundError, match=r"milk: expected the H2O object mesh milk\.obj or a single \.obj"):
        h2o.read_object(tmp_path, "milk")


def test_read_object_takes_uvs_and_texture_from_the_material(tmp_path):
    folder = tmp_path / "milk"
    folder.mkdir()
    uv_lines = "vt 0 0\nvt 1 0\nvt 0 1\nvt 1 1\n"
    faces = "f 1/1 3/3 2/2\nf 1/1 2/2 4/4\nf 1/1 4/4 3/3\nf 2/2 3/3 4/4\n"
    (folder / "milk.obj").write_text("mtllib milk.mtl\n" + TETRAHEDRON.split("f")[0] + uv_lines + "usemtl m\n" + faces)
    (folder / "milk.mtl").write_text("newmtl m\nmap_Kd milk.png\n")
    texture = np.zeros((4, 6, 3), np.uint8)
    texture[0] = 255
    Image.fromarray(texture).save(folder / "milk.png")
    obj = h2o.read_object(tmp_path, "milk")
    np.testing.assert_array_equal(obj.texture.numpy(), texture)
    uv_of_vertex = {0: (0, 0), 1: (1, 0), 2: (0, 1), 3: (1, 1)}  # each vertex has one uv here
    for face, uvs in zip(obj.faces.tolist(), obj.face_uvs.tolist()):
        assert [uv_of_vertex[v] for v in face] == [tuple(uv) for uv in uvs]



# --------------------------------------------------------------------------- #
# Writing H2O
# --------------------------------------------------------------------------- #
WRIST_OFFSET = np.array([0.09, 0.006, 0.005])  # m: about where real MANO's rest wrist is; the open hand's is at 0


@pytest.fixture(scope="module")
def hands(tmp_path_factory):
    """The open hands moved by ``WRIST_OFFSET``, so that turning about J0 differs from turning about 0."""
    folder = tmp_path_factory.mktemp("mano")
    for side in SIDES:
        data = load_mano_file(open_hand_file(side))
        data["v_template"] = np.asarray(data["v_template"]) + WRIST_OFFSET
        (folder / f"MANO_{side.upper()}.pkl").write_bytes(pickle.dumps(data))
    models = hand_models(HandConfig(str(folder), 0))
    assert np.abs(rest_wrists(models["right"], np.zeros((1, 10)))[0] - WRIST_OFFSET).max() < 0.01
    return models


def camera(rotvec, trans, width=8, height=6) -> Camera:
    return Camera(K=[[9.0, 0, 4.5], [0, 8.0, 3.5], [0, 0, 1]], world2cam=rigid(rotvec, trans), width=width,
                  height=height)


def world_sequence(frames: int = 3) -> SequenceRecord:
    """A sequence in a world that no camera's frame is: an ego view 0, static views 1 and 2, view 5 (not H2O's)."""
    rng = np.random.default_rng(3)
    cameras = [None] * NUM_VIEWS
    cameras[1], cameras[2], cameras[5] = camera([0.1, 0.4, 0], [0.1, 0, 0.6]), camera([-0.3, 0, 0.2], [0, 0.1, 0.5]), \
        camera([0, 0, 0.3], [0, 0, 0.7])
    ego = np.stack([rigid([0.2, 0.1 * f, 0], [0.05 * f, 0, 0.4]) for f in range(frames)])
    cameras[0] = Camera(K=cameras[1].K, world2cam=ego[0], width=8, height=6)
    hands = {side: HandPose(rng.normal(0, 0.5, (frames, 3)), rng.normal(0, 0.3, (frames, 45)),
                            np.tile(rng.normal(0, 1, 10), (frames, 1)), rng.normal(0, 0.1, (frames, 3)))
             for side in SIDES}
    return SequenceRecord(name="subject3/h2/5", subject="subject3", object_name="milk", frames=frames, cameras=cameras,
                    hands=hands, hand_valid={"right": np.ones(frames, bool), "left": np.array([True, False, True])},
                    object_pose=ObjectPose(np.zeros(frames), rng.normal(0, 1, (frames, 3)),
                                           rng.normal(0, 0.1, (frames, 3))),
                    ego_world2cam=ego)


def random_image(view: int, frame: int) -> np.ndarray:
    return np.random.default_rng([view, frame]).integers(0, 256, (6, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize("cam", [0, 1])
def test_a_written_sequence_reads_back_in_the_chosen_cameras_frame(tmp_path, hands, cam):
    seq = world_sequence()
    folder = h2o.write_sequence(tmp_path, seq, hands, images=random_image)
    assert folder == tmp_path / "subject3/h2/5" and sorted(p.name for p in folder.iterdir()) == ["cam0", "cam1", "cam4"]
    read = h2o.read_sequence(folder, cam=cam)
    assert (read.name, read.subject, read.object_name, read.frames) == (seq.name, seq.subject, "milk", seq.frames)
    assert read.views == [0, 1, 2]  # view 5 has no H2O camera
    to_read_world = seq.cameras[h2o.view_of_cam(cam)].world2cam  # the written world → camera cam's frame
    for view in read.views:
        np.testing.assert_allclose(read.cameras[view].K, seq.cameras[view].K, atol=1e-12)
        for frame in range(seq.frames):
            np.testing.assert_allclose(read.camera(view, frame).world2cam,
                                       seq.camera(view, frame).world2cam @ np.linalg.inv(to_read_world), atol=1e-12)
            np.testing.assert_array_equal(read.image(view, frame), random_image(view, frame))
    for side in SIDES:
        np.testing.assert_array_equal(read.hand_valid[side], seq.hand_valid[side])
        np.testing.assert_allclose(read.hands[side].hand_pose, seq.hands[side].hand_pose, atol=1e-12)
        np.testing.assert_allclose(read.hands[side].betas, seq.hands[side].betas, atol=1e-12)
        moved = hand_vertices(hands[side], seq.hands[side]) @ to_read_world[:3, :3].T + to_read_world[:3, 3]
        np.testing.assert_allclose(hand_vertices(hands[side], read.hands[side]), moved, atol=1e-6)  # measured 9e-8
    obj2world = np.stack([rigid(r, t) for r, t in zip(seq.object_pose.rot, seq.object_pose.transl)])
    read_obj2world = np.stack([rigid(r, t) for r, t in zip(read.object_pose.rot, read.object_pose.transl)])
    np.testing.assert_allclose(read_obj2world, to_read_world @ obj2world, atol=1e-12)
    np.testing.assert_array_equal(read.object_pose.articulation, 0)


def test_the_written_hand_is_not_the_rigidly_moved_parameters(tmp_path, hands):
    """MANO turns about the rest wrist J0: moving transl with the camera alone would misplace the hand."""
    seq = world_sequence()
    read = h2o.read_sequence(h2o.write_sequence(tmp_path, seq, hands), cam=0)
    world2cam = seq.cameras[1].world2cam
    naive = seq.hands["right"].transl @ world2cam[:3, :3].T + world2cam[:3, 3]
    assert np.abs(read.hands["right"].transl - naive).max() > 0.01


def test_writing_refuses_what_h2o_cannot_hold(tmp_path, hands):
    seq = world_sequence()
    with pytest.raises(ValueError, match=r"subject3/h2/5: field 'object_name' is 'bottle'; H2O's objects are \["):
        h2o.write_sequence(tmp_path, dataclasses.replace(seq, object_name="bottle"), hands)
    opened = dataclasses.replace(seq.object_pose, articulation=np.array([0.0, 0.1, 0.0]))
    with pytest.raises(ValueError, match=r"field 'object_pose.articulation' is not 0; H2O's objects are rigid"):
        h2o.write_sequence(tmp_path, dataclasses.replace(seq, object_pose=opened), hands)
    with pytest.raises(ValueError, match=r"s01/milk_grab_01: field 'name' must be '<subject>/<scene>/<seq>'"):
        h2o.write_sequence(tmp_path, dataclasses.replace(seq, name="s01/milk_grab_01", subject="s01"), hands)
    only_view_5 = [camera if view == 5 else None for view, camera in enumerate(seq.cameras)]
    with pytest.raises(ValueError, match=r"subject3/h2/5: field 'cameras' has views \[5\]; H2O's are 0-4"):
        h2o.write_sequence(tmp_path, dataclasses.replace(seq, cameras=only_view_5, ego_world2cam=None), hands)
    with pytest.raises(ValueError, match=r"000000\.png: image of sequence subject3/h2/5 view 0 must be uint8 \[6, 8"):
        h2o.write_sequence(tmp_path, seq, hands, images=lambda view, frame: np.zeros((6, 8), np.uint8))
    assert not any(tmp_path.rglob("*.txt"))  # nothing half-written


def test_a_written_object_reads_back_closed_with_its_uvs_and_texture(tmp_path):
    bottle = open_object("bottle")
    path = h2o.write_object(tmp_path, dataclasses.replace(bottle, name="milk"))
    assert path == tmp_path / "milk/milk.obj"
    read = h2o.read_object(tmp_path, "milk")
    assert read.vertices.shape == bottle.vertices.shape  # split at UV seams on writing, welded back on reading
    np.testing.assert_allclose(read.vertices.numpy(), bottle.vertices.numpy(), atol=1e-9)  # in order
    np.testing.assert_array_equal(read.faces.numpy(), bottle.faces.numpy())
    np.testing.assert_allclose(read.face_uvs.numpy(), bottle.face_uvs.numpy(), atol=1e-7)
    np.testing.assert_array_equal(read.texture.numpy(), bottle.texture.numpy())
    assert read.diameter == pytest.approx(bottle.diameter, abs=1e-6)
    with pytest.raises(ValueError, match=r"object 'bottle': not an H2O object; expected one of \['book', "):
        h2o.write_object(tmp_path, bottle)
    with pytest.raises(ValueError, match=r"object 'book': is articulated; H2O's objects are rigid"):
        h2o.write_object(tmp_path, open_object("book"))
