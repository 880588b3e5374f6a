"""The open hand: a closed manifold in MANO's format that smplx poses without tearing."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch
import trimesh
from scipy.spatial.transform import Rotation
from smplx.utils import Struct

from hogsa import code_identity, open_hand
from hogsa.code_identity import code_digest, import_closure
from hogsa.open_hand.poses import fist_pose, pinch_pose, pose_from_flexion
from hogsa.open_hand.surface import vertex_averaging, vertex_normals

SIDES = ("right", "left")
MIRROR = np.array([-1.0, 1.0, 1.0])  # x -> -x
POSE_MIRROR = np.array([1.0, -1.0, -1.0])  # axis-angle of a mirrored rotation
DIGIT_BASE = {"thumb": 13, "index": 1, "middle": 4, "ring": 10, "pinky": 7}  # tip_ids order


@pytest.fixture(scope="module")
def hands() -> dict[str, dict]:
    return {side: open_hand.build_open_hand(side) for side in SIDES}


@pytest.fixture(scope="module")
def layers(hands, tmp_path_factory) -> dict[str, smplx.MANO]:
    folder = tmp_path_factory.mktemp("mano")
    return {
        side: smplx.MANO(
            model_path=str(folder), data_struct=Struct(**hands[side]), is_rhand=side == "right",
            use_pca=False, flat_hand_mean=True, num_betas=10, batch_size=1,
        )
        for side in SIDES
    }


def skin(layer, hand_pose=None, global_orient=None, betas=None) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and joints (16, 3) of one smplx forward pass, float64 numpy."""
    def tensor(value, width):
        value = np.zeros(width) if value is None else np.asarray(value, dtype=np.float64)
        return torch.as_tensor(value, dtype=torch.float32).reshape(1, width)

    with torch.no_grad():
        out = layer(hand_pose=tensor(hand_pose, 45), global_orient=tensor(global_orient, 3), betas=tensor(betas, 10))
    return out.vertices[0].double().numpy(), out.joints[0].double().numpy()


def tearing(rest: np.ndarray, posed: np.ndarray, faces: np.ndarray) -> tuple[float, float, float]:
    """(min, max) edge-length ratio posed/rest and the fraction of faces shrunk below 5 % of their area."""
    before, after = (trimesh.Trimesh(verts, faces, process=False) for verts in (rest, posed))
    ratio = after.edges_unique_length / before.edges_unique_length
    return ratio.min(), ratio.max(), float(np.mean(after.area_faces < 0.05 * before.area_faces))


def flexion(hand: dict, joints: dict[int, float]) -> np.ndarray:
    """(45,) pose flexing the given joints by angles in degrees about their flexion axes."""
    pose = np.zeros((16, 3))
    for joint, degrees in joints.items():
        pose[joint] = np.radians(degrees) * hand["flexion_axes"][joint]
    return pose[1:].reshape(45)


# ------------------------------------------------------------------------------------------------
# The mesh and the fields


@pytest.mark.parametrize("side", SIDES)
def test_mesh_is_one_closed_outward_manifold(hands, side):
    hand = hands[side]
    mesh = trimesh.Trimesh(hand["v_template"], hand["f"], process=False)
    assert 1000 <= len(mesh.vertices) <= 3000
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0
    assert mesh.body_count == 1 and mesh.euler_number == 2  # one sphere-like surface
    assert len(np.unique(mesh.vertices.round(9), axis=0)) == len(mesh.vertices)
    assert mesh.area_faces.min() > 1e-8


@pytest.mark.parametrize("side", SIDES)
def test_fields_have_mano_shapes_and_dtypes(hands, side):
    hand = hands[side]
    n = len(hand["v_template"])
    assert hand["v_template"].shape == (n, 3) and hand["v_template"].dtype == np.float64
    assert hand["f"].dtype in (np.int64, np.uint32) and hand["f"].max() == n - 1
    assert scipy.sparse.issparse(hand["J_regressor"]) and hand["J_regressor"].format == "csc"
    assert hand["J_regressor"].shape == (16, n)
    assert hand["kintree_table"].shape == (2, 16)
    assert hand["kintree_table"][0, 0] == 4294967295
    assert hand["kintree_table"][0, 1:].tolist() == [0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
    assert hand["kintree_table"][1].tolist() == list(range(16))
    assert hand["weights"].shape == (n, 16)
    assert hand["posedirs"].shape == (n, 3, 135) and not hand["posedirs"].any()
    assert hand["shapedirs"].shape == (n, 3, 10)
    assert hand["hands_components"].shape == (45, 45) and hand["hands_mean"].shape == (45,)
    assert hand["hands_coeffs"].shape == (1, 45) and not hand["hands_mean"].any()
    assert hand["bs_style"] == "lbs" and hand["bs_type"] == "lrotmin"
    assert len(hand["shape_names"]) == 10 and all(isinstance(s, str) for s in hand["shape_names"])
    assert hand["bone_segments"].shape == (16, 2, 3) and hand["flexion_axes"].shape == (16, 3)
    for key in ("tip_ids", "palm_vertex_ids", "fingerpad_vertex_ids"):
        assert hand[key].dtype == np.int64 and hand[key].min() >= 0 and hand[key].max() < n
    assert hand["tip_ids"].shape == (5,)
    np.testing.assert_allclose(hand["J"], hand["J_regressor"] @ hand["v_template"], atol=1e-12)


@pytest.mark.parametrize("side", SIDES)
def test_weights_and_regressor_are_convex(hands, side):
    hand = hands[side]
    assert (hand["weights"] >= 0).all()
    np.testing.assert_allclose(hand["weights"].sum(axis=1), 1.0, atol=1e-9)
    regressor = hand["J_regressor"].toarray()
    assert (regressor >= 0).all()
    np.testing.assert_allclose(regressor.sum(axis=1), 1.0, atol=1e-9)


def test_joints_reproduce_the_design_and_adult_size(hands):
    hand = hands["right"]
    np.testing.assert_allclose(hand["J"], hand["bone_segments"][:, 0], atol=1e-3)
    np.testing.assert_allclose(hand["J"][0], 0.0, atol=1e-3)  # wrist at the origin
    verts = hand["v_template"]
    middle_tip = verts[hand["tip_ids"][2]]
    assert 0.18 <= np.linalg.norm(middle_tip) <= 0.19 and middle_tip[0] < -0.18  # fingers along -x
    palm = verts[(verts[:, 0] < -0.06) & (verts[:, 0] > -0.07) & (hand["weights"][:, 0] > 0.9)]
    assert 0.075 <= np.ptp(palm[:, 2]) <= 0.09  # palm width
    assert verts[hand["tip_ids"][0], 2] > 0.05  # thumb on the +z side
    normals = trimesh.Trimesh(verts, hand["f"], process=False).vertex_normals
    assert normals[hand["palm_vertex_ids"]].mean(axis=0)[1] < -0.8  # the palm faces -y


@pytest.mark.parametrize("side", SIDES)
def test_tips_are_the_extreme_vertices_of_their_digits(hands, side):
    hand = hands[side]
    verts, weights = hand["v_template"], hand["weights"]
    for tip, base in zip(hand["tip_ids"], DIGIT_BASE.values()):
        distal = base + 2
        start, end = hand["bone_segments"][distal]
        direction = (end - start) / np.linalg.norm(end - start)
        digit = np.flatnonzero(weights[:, base:base + 3].sum(axis=1) > 0.5)
        assert tip == digit[np.argmax(verts[digit] @ direction)]
        # fingertips follow only their distal bone. Exact: the floor zeroes every other weight, and the
        # normalisation then divides the one left by itself, which is exactly 1
        assert weights[tip, distal] == 1.0


def test_contact_regions_lie_on_the_palmar_side(hands):
    hand = hands["right"]
    normals = trimesh.Trimesh(hand["v_template"], hand["f"], process=False).vertex_normals
    assert len(hand["palm_vertex_ids"]) > 100
    pads = hand["fingerpad_vertex_ids"]
    for base in DIGIT_BASE.values():
        on_digit = pads[hand["weights"][pads, base + 2] > 0.9]
        assert len(on_digit) >= 3
    fingers = pads[hand["weights"][pads, 13:16].sum(axis=1) == 0]
    assert normals[fingers].mean(axis=0)[1] < -0.5


def test_vertex_averaging_spans_each_vertex_and_its_edge_neighbours():
    """A square split into two triangles along 0-2: vertices 0 and 2 see three others, 1 and 3 two."""
    verts = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    np.testing.assert_array_equal(vertex_averaging(verts, faces, include_self=False).toarray(), [
        [0, 1 / 3, 1 / 3, 1 / 3], [1 / 2, 0, 1 / 2, 0], [1 / 3, 1 / 3, 0, 1 / 3], [1 / 2, 0, 1 / 2, 0]])
    np.testing.assert_array_equal(vertex_averaging(verts, faces, include_self=True).toarray(), [
        [1 / 4] * 4, [1 / 3, 1 / 3, 1 / 3, 0], [1 / 4] * 4, [1 / 3, 0, 1 / 3, 1 / 3]])


def test_vertex_normals_weight_faces_by_area():
    """A fold along the edge 0-1: face A (area 1/2) faces +z, face B (area 1) faces +y; both corners at
    0 and 1 are right angles, so angle weighting would give (0, 1, 1) / sqrt(2) there instead."""
    verts = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 2]])
    faces = np.array([[0, 1, 2], [1, 0, 3]])
    normals = vertex_normals(verts, faces)
    np.testing.assert_allclose(normals[[0, 1]], np.tile([0, 2, 1] / np.sqrt(5), (2, 1)), atol=1e-15)
    np.testing.assert_allclose(normals[[2, 3]], [[0, 0, 1], [0, 1, 0]], atol=1e-15)


# ------------------------------------------------------------------------------------------------
# Posing through smplx


@pytest.mark.parametrize("side", SIDES)
def test_rest_pose_is_the_template(hands, layers, side):
    verts, joints = skin(layers[side])
    np.testing.assert_allclose(verts, hands[side]["v_template"], atol=1e-6)
    np.testing.assert_allclose(joints, hands[side]["J"], atol=1e-6)


@pytest.mark.parametrize("side", SIDES)
def test_wrist_rotation_moves_everything_rigidly(hands, layers, side):
    rotvec = np.array([0.4, -0.7, 0.3])
    verts, _ = skin(layers[side], global_orient=rotvec)
    template, wrist = hands[side]["v_template"], hands[side]["J"][0]
    expected = (template - wrist) @ Rotation.from_rotvec(rotvec).as_matrix().T + wrist
    np.testing.assert_allclose(verts, expected, atol=1e-5)


@pytest.mark.parametrize("side", SIDES)
def test_index_flexion_moves_only_the_index(hands, layers, side):
    hand = hands[side]
    rest, _ = skin(layers[side])
    posed, _ = skin(layers[side], hand_pose=flexion(hand, {1: 60, 2: 60, 3: 40}))
    moved = np.linalg.norm(posed - rest, axis=1)
    index_weight = hand["weights"][:, 1:4].sum(axis=1)
    assert moved[index_weight == 0].max() < 1e-6
    assert (index_weight == 0).sum() > 0.8 * len(rest)
    tip = hand["tip_ids"][1]
    assert moved[tip] > 0.05
    assert posed[tip, 1] - rest[tip, 1] < -0.04  # curls toward the palm (-y)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("pose_name", ["fist", "pinch"])
def test_fist_and_pinch_do_not_tear(hands, layers, side, pose_name):
    pose = {"fist": fist_pose, "pinch": pinch_pose}[pose_name](side)
    assert pose.shape == (45,)
    rest, _ = skin(layers[side])
    posed, _ = skin(layers[side], hand_pose=pose)
    shortest, longest, collapsed = tearing(rest, posed, hands[side]["f"])
    assert shortest >= 0.3 and longest <= 3.0
    assert collapsed < 1e-3


@pytest.mark.parametrize("side", SIDES)
def test_pinch_brings_thumb_and_index_tips_together(hands, layers, side):
    posed, _ = skin(layers[side], hand_pose=pinch_pose(side))
    thumb, index = posed[hands[side]["tip_ids"][:2]]
    assert np.linalg.norm(thumb - index) < 0.015


@pytest.mark.parametrize("side", SIDES)
def test_fist_curls_fingertips_onto_the_palm(hands, layers, side):
    hand = hands[side]
    posed, _ = skin(layers[side], hand_pose=fist_pose(side))
    palm = posed[hand["palm_vertex_ids"]]
    for tip in hand["tip_ids"][1:]:
        assert np.linalg.norm(palm - posed[tip], axis=1).min() < 0.03


def test_left_poses_mirror_right_poses(hands, layers):
    np.testing.assert_allclose(hands["left"]["v_template"], hands["right"]["v_template"] * MIRROR)
    np.testing.assert_array_equal(hands["left"]["tip_ids"], hands["right"]["tip_ids"])
    rng = np.random.default_rng(0)
    pose, orient, betas = rng.normal(0, 0.3, 45), rng.normal(0, 0.5, 3), rng.normal(0, 1.0, 10)
    right, right_joints = skin(layers["right"], pose, orient, betas)
    mirrored_pose = (pose.reshape(15, 3) * POSE_MIRROR).reshape(45)
    left, left_joints = skin(layers["left"], mirrored_pose, orient * POSE_MIRROR, betas)
    np.testing.assert_allclose(left, right * MIRROR, atol=1e-5)
    np.testing.assert_allclose(left_joints, right_joints * MIRROR, atol=1e-5)
    for helper in (fist_pose, pinch_pose):
        np.testing.assert_allclose(helper("left"), (helper("right").reshape(15, 3) * POSE_MIRROR).reshape(45))


def test_pose_from_flexion_curls_only_the_named_joints():
    pose = pose_from_flexion("right", {"ring": (10, 0, 30)}).reshape(15, 3)
    axes = open_hand.build_open_hand("right")["flexion_axes"]
    np.testing.assert_allclose(pose[[9, 11]], np.radians([[10], [30]]) * axes[[10, 12]])
    assert not np.delete(pose, [9, 11], axis=0).any()
    with pytest.raises(ValueError, match=r"unknown digits \['ringfinger'\]"):
        pose_from_flexion("right", {"ringfinger": (10, 0, 30)})


# ------------------------------------------------------------------------------------------------
# Shape space


def digit_lengths(verts: np.ndarray, joints: np.ndarray, tips: np.ndarray) -> np.ndarray:
    """(5,) base-joint-to-tip distances in tip_ids order."""
    return np.linalg.norm(verts[tips] - joints[list(DIGIT_BASE.values())], axis=1)


def test_size_component_scales_the_hand(hands, layers):
    rest, rest_joints = skin(layers["right"])
    bigger, bigger_joints = skin(layers["right"], betas=np.eye(10)[0])
    tips = hands["right"]["tip_ids"]
    assert np.ptp(bigger, axis=0).prod() > 1.1 * np.ptp(rest, axis=0).prod()
    assert (digit_lengths(bigger, bigger_joints, tips) > digit_lengths(rest, rest_joints, tips)).all()


@pytest.mark.parametrize("component,digit", [(5, 0), (6, 1), (7, 2), (8, 3), (9, 4)])
def test_length_components_lengthen_their_own_digit(hands, layers, component, digit):
    tips = hands["right"]["tip_ids"]
    before = digit_lengths(*skin(layers["right"]), tips)
    after = digit_lengths(*skin(layers["right"], betas=np.eye(10)[component]), tips)
    change = after - before
    assert change[digit] > 0.004
    assert np.abs(np.delete(change, digit)).max() < 5e-4


def test_finger_length_component_lengthens_all_four_fingers(hands, layers):
    tips = hands["right"]["tip_ids"]
    before = digit_lengths(*skin(layers["right"]), tips)
    change = digit_lengths(*skin(layers["right"], betas=np.eye(10)[3]), tips) - before
    assert (change[1:] > 0.004).all() and abs(change[0]) < 5e-4


@pytest.mark.parametrize("component", range(10))
def test_shape_components_stay_intact_at_two_sigma(hands, layers, component):
    faces = hands["right"]["f"]
    template, _ = skin(layers["right"])
    for beta in (-2.0, 2.0):
        betas = beta * np.eye(10)[component]
        shaped, _ = skin(layers["right"], betas=betas)
        fist, _ = skin(layers["right"], hand_pose=fist_pose("right"), betas=betas)
        for before, after in ((template, shaped), (shaped, fist)):
            shortest, longest, collapsed = tearing(before, after, faces)
            assert shortest >= 0.3 and longest <= 3.0 and collapsed < 1e-3


# ------------------------------------------------------------------------------------------------
# The cached file


class RecordingUnpickler(pickle.Unpickler):
    """Unpickler that records every global the file names."""

    def __init__(self, file):
        super().__init__(file, encoding="latin1")
        self.globals: set[tuple[str, str]] = set()

    def find_class(self, module, name):
        self.globals.add((module, name))
        return super().find_class(module, name)


def test_open_hand_file_is_written_once_and_holds_plain_data(tmp_path, hands):
    path = open_hand.open_hand_file("right", tmp_path)
    assert path == tmp_path / "MANO_RIGHT.pkl"
    mtime = os.stat(path).st_mtime_ns
    assert open_hand.open_hand_file("right", tmp_path) == path
    assert os.stat(path).st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MANO_RIGHT.pkl"]  # no temporary left behind
    with open(path, "rb") as f:
        unpickler = RecordingUnpickler(f)
        data = unpickler.load()
    modules = {module for module, _ in unpickler.globals}
    assert {module.split(".")[0] for module in modules} <= {"numpy", "scipy", "builtins", "copyreg"}
    assert all(module.startswith("scipy.sparse") for module in modules if module.startswith("scipy"))
    np.testing.assert_array_equal(data["v_template"], hands["right"]["v_template"])  # the pickled copy: exact


def test_open_hand_file_loads_in_smplx_and_hogsa(tmp_path):
    left = open_hand.open_hand_file("left", tmp_path)
    layer = smplx.MANO(model_path=str(tmp_path), is_rhand=False, use_pca=False, flat_hand_mean=True, num_betas=10)
    assert layer.v_template.shape[0] == len(open_hand.build_open_hand("left")["v_template"])
    from hogsa import safe_pickle

    data = safe_pickle.load(left, allow_sparse=True)
    assert scipy.sparse.issparse(data["J_regressor"]) and data["J_regressor"].shape[0] == 16


def test_default_cache_dir_is_versioned_under_hogsa_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOGSA_CACHE", str(tmp_path))
    path = open_hand.open_hand_file("right")
    folder = path.parent
    assert folder.parent == tmp_path / "open_hand" and path.name == "MANO_RIGHT.pkl" and path.is_file()
    version, digest = folder.name.split("-")
    assert version == f"v{open_hand.OPEN_HAND_VERSION}"
    assert digest == code_digest("hogsa.open_hand")


def test_cache_key_covers_every_module_of_the_build(tmp_path, monkeypatch):
    """Editing any module the build runs moves the cache folder; editing another hogsa file does not."""
    copy = tmp_path / "hogsa"
    for name in import_closure("hogsa.open_hand"):
        source = code_identity.module_file(name)
        target = copy / source.relative_to(code_identity.PACKAGE_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    (copy / "other.py").write_text("")
    monkeypatch.setattr(code_identity, "PACKAGE_ROOT", copy)
    monkeypatch.setenv("HOGSA_CACHE", str(tmp_path / "cache"))

    def cache_dir_after(edit: Path) -> Path:
        with open(edit, "a") as f:
            f.write("\n# edited\n")
        import_closure.cache_clear()
        return open_hand.default_cache_dir()

    import_closure.cache_clear()
    before = open_hand.default_cache_dir()
    assert cache_dir_after(copy / "other.py") == before
    build_modules = sorted((copy / "open_hand").glob("*.py"))
    assert {"rig.py", "shape.py", "surface.py"} <= {path.name for path in build_modules}
    seen = {before}
    for module in build_modules:
        seen.add(cache_dir_after(module))
    assert len(seen) == len(build_modules) + 1  # every edit gave a new folder
    import_closure.cache_clear()


def test_sides_other_than_right_and_left_are_refused(tmp_path):
    for call in (open_hand.build_open_hand, fist_pose, lambda side: open_hand.open_hand_file(side, tmp_path)):
        with pytest.raises(ValueError, match="'right' or 'left'.*'Right'"):
            call("Right")
    assert not any(tmp_path.iterdir())
