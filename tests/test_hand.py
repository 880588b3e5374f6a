"""HandModel on the open hand: pose semantics, joints, the MANO file loader and MANO-HD."""

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

from hogsa.hand import (
    MANO_PARENTS,
    HandModel,
    HandPose,
    hand_vertices,
    load_mano_file,
    rest_wrists,
    subdivide_mano,
)
from hogsa.open_hand import build_open_hand, open_hand_file


@pytest.fixture(scope="module")
def hands():
    return {side: HandModel(side) for side in ("right", "left")}


def _pose(hand, global_orient=None, hand_pose=None, betas=None, transl=None):
    z = torch.zeros
    return hand(
        z(1, 3) if global_orient is None else torch.as_tensor(global_orient, dtype=torch.float32)[None],
        z(1, 45) if hand_pose is None else torch.as_tensor(hand_pose, dtype=torch.float32)[None],
        z(1, 10) if betas is None else torch.as_tensor(betas, dtype=torch.float32)[None],
        z(1, 3) if transl is None else torch.as_tensor(transl, dtype=torch.float32)[None],
    )


def test_rest_pose_returns_template(hands):
    for hand in hands.values():
        out = hand.rest()
        torch.testing.assert_close(out.vertices[0], hand.v_template)
        assert out.joints.shape == (1, 21, 3)
        assert hand.faces.shape[1] == 3 and hand.weights.shape == (hand.v_template.shape[0], 16)
        assert hand.parents.tolist() == list(MANO_PARENTS)
        assert torch.all(hand.hands_mean == 0)  # exact: the open hand stores zeros, passed through untouched


def test_wrist_rotation_moves_everything_rigidly(hands):
    hand = hands["right"]
    rest = hand.rest()
    rotvec = np.array([0.3, -0.7, 0.4])
    out = _pose(hand, global_orient=rotvec, transl=[0.1, 0.0, -0.2])
    # MANO rotates about the wrist joint J0, then translates
    R = Rotation.from_rotvec(rotvec).as_matrix()
    j0 = rest.joints[0, 0].numpy()
    expected = (rest.vertices[0].numpy() - j0) @ R.T + j0 + np.array([0.1, 0.0, -0.2])
    np.testing.assert_allclose(out.vertices[0].numpy(), expected, atol=1e-5)


def test_flexing_one_finger_moves_only_that_finger(hands):
    hand = hands["right"]
    pose = np.zeros(45)
    pose[0:9] = np.tile([0.0, 0.0, 0.8], 3)  # index joints 1-3 (pose slots 0..8) bent 0.8 rad each
    moved = (_pose(hand, hand_pose=pose).vertices[0] - hand.v_template).norm(dim=-1)
    index_weight = hand.weights[:, 1:4].sum(dim=1)
    outside = index_weight < 1e-6
    assert outside.sum() > 0.8 * len(outside)
    assert moved[outside].max() < 1e-6
    assert moved[index_weight > 0.99].min() > 1e-3  # the finger itself really moved


def test_left_is_mirror_of_right(hands):
    rng = np.random.default_rng(0)
    pose = rng.normal(scale=0.3, size=45)
    orient = rng.normal(scale=0.5, size=3)
    betas = rng.normal(size=10)
    right = _pose(hands["right"], orient, pose, betas)
    mirror = np.array([1.0, -1.0, -1.0])  # reflecting x negates the y and z axis-angle components
    left = _pose(hands["left"], orient * mirror, (pose.reshape(15, 3) * mirror).ravel(), betas)
    flip = torch.tensor([-1.0, 1.0, 1.0])
    torch.testing.assert_close(left.vertices, right.vertices * flip, atol=1e-5, rtol=0)
    torch.testing.assert_close(left.joints, right.joints * flip, atol=1e-5, rtol=0)


def test_21_joints_in_documented_order(hands):
    hand = hands["right"]
    out = _pose(hand, hand_pose=np.random.default_rng(1).normal(scale=0.2, size=45))
    joints = out.joints[0]
    torch.testing.assert_close(joints[16:], out.vertices[0, hand.tip_ids])
    # each tip lies beyond the last joint of its own finger and closer to it than to other fingers' ends
    last_joint = {"thumb": 15, "index": 3, "middle": 6, "ring": 12, "pinky": 9}
    for tip_index, finger in enumerate(("thumb", "index", "middle", "ring", "pinky")):
        tip = joints[16 + tip_index]
        distances = {f: (tip - joints[j]).norm().item() for f, j in last_joint.items()}
        assert min(distances, key=distances.get) == finger
    # finger chains go outward from the wrist: each joint farther from the wrist than its parent
    rest = hand.rest().joints[0]
    for child, parent in enumerate(MANO_PARENTS):
        if parent > 0:
            assert (rest[child] - rest[0]).norm() > (rest[parent] - rest[0]).norm()


def _fake_official_pickle(data: dict, path):
    """Write ``data`` the way the official MANO file stores it: chumpy objects, sparse J_regressor,
    Python-2 era module names, protocol 2 (read with latin1)."""
    chumpy = types.ModuleType("chumpy")
    chumpy_ch = types.ModuleType("chumpy.ch")

    class Ch:  # what chumpy pickles: the instance dict, whose 'x' holds the value
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    chumpy_ch.Ch = Ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = chumpy, chumpy_ch
    try:
        official = dict(data)
        for field in ("shapedirs", "v_template", "J", "weights", "posedirs"):
            official[field] = Ch(np.asarray(data[field]))
        official["J_regressor"] = scipy.sparse.csc_matrix(data["J_regressor"])
        for field in ("tip_ids", "palm_vertex_ids", "fingerpad_vertex_ids"):  # the official file has none of these
            official.pop(field)
        raw = pickle.dumps(official, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    for new, old in ((b"numpy._core.multiarray", b"numpy.core.multiarray"),
                     (b"scipy.sparse._csc", b"scipy.sparse.csc"), (b"copyreg", b"copy_reg")):
        raw = raw.replace(new, old)
    assert b"chumpy.ch" in raw and b"scipy.sparse.csc\n" in raw
    path.write_bytes(raw)


def test_official_style_pickle_loads_without_chumpy(tmp_path):
    assert "chumpy" not in sys.modules
    plain = build_open_hand("right")
    _fake_official_pickle(plain, tmp_path / "MANO_RIGHT.pkl")
    loaded = load_mano_file(tmp_path / "MANO_RIGHT.pkl")
    assert isinstance(loaded["shapedirs"], np.ndarray) and scipy.sparse.issparse(loaded["J_regressor"])
    assert list(loaded["tip_ids"]) == [744, 320, 443, 554, 671]  # MANO's tips when the file has none
    assert "chumpy" not in sys.modules

    official = HandModel("right", model_dir=tmp_path)
    assert official.palm_ids.shape == (0,) and official.fingerpad_ids.shape == (0,)  # MANO defines no such regions
    assert official.palm_ids.dtype == torch.long
    official.tip_ids.copy_(torch.as_tensor(plain["tip_ids"]))
    reference = HandModel("right")
    rng = np.random.default_rng(2)
    args = [rng.normal(scale=s, size=n) for s, n in ((0.5, 3), (0.3, 45), (1.0, 10), (0.1, 3))]
    torch.testing.assert_close(_pose(official, *args).vertices, _pose(reference, *args).vertices)
    torch.testing.assert_close(_pose(official, *args).joints, _pose(reference, *args).joints)


def test_missing_or_malformed_model_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MANO_RIGHT.pkl.*licensed download"):
        HandModel("right", model_dir=tmp_path)
    (tmp_path / "MANO_LEFT.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"MANO_LEFT.pkl: not a readable MANO pkl.*licensed"):
        HandModel("left", model_dir=tmp_path)
    data = build_open_hand("right")
    data["weights"] = data["weights"][:, :10]
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(ValueError, match=r"MANO_RIGHT.pkl: field 'weights' has shape"):
        HandModel("right", model_dir=tmp_path)


def test_subdivision_counts_on_icosahedron():
    import trimesh

    ico = trimesh.creation.icosahedron()
    n = len(ico.vertices)
    data = {
        "v_template": ico.vertices, "f": ico.faces,
        "weights": np.eye(16)[np.arange(n) % 16], "shapedirs": np.random.default_rng(0).normal(size=(n, 3, 10)),
        "posedirs": np.zeros((n, 3, 135)), "J_regressor": scipy.sparse.csr_matrix(np.full((16, n), 1.0 / n)),
    }
    one = subdivide_mano(data, 1, smooth_iterations=0)
    two = subdivide_mano(data, 2, smooth_iterations=0)
    assert len(one["v_template"]) == 12 + 30 and len(one["f"]) == 80
    assert len(two["v_template"]) == 42 + 120 and len(two["f"]) == 320
    assert two["J_regressor"].shape == (16, 162) and two["J_regressor"][:, 12:].nnz == 0
    # every new vertex carries the mean of its edge endpoints' attributes
    edges = trimesh.Trimesh(ico.vertices, ico.faces, process=False).edges_unique
    for a, b in edges[:10]:
        mid = (ico.vertices[a] + ico.vertices[b]) / 2
        k = np.argmin(np.linalg.norm(one["v_template"] - mid, axis=1))
        assert k >= 12
        # unit-scale weights and shapedirs: atol covers the rounding of a two-point mean (~1e-16), which rtol alone
        # would not where the mean is (near) zero
        np.testing.assert_allclose(one["weights"][k], (data["weights"][a] + data["weights"][b]) / 2, atol=1e-12)
        np.testing.assert_allclose(one["shapedirs"][k], (data["shapedirs"][a] + data["shapedirs"][b]) / 2, atol=1e-12)


def test_hd_hand_keeps_original_vertices_and_joints(hands):
    base = hands["right"]
    hd = HandModel("right", hd_level=1)
    n_base, n_faces = base.v_template.shape[0], base.faces.shape[0]
    n_edges = n_base + n_faces - 2  # Euler: V - E + F = 2 on a closed genus-0 surface
    assert hd.v_template.shape[0] == n_base + n_edges and hd.faces.shape[0] == 4 * n_faces
    torch.testing.assert_close(hd.tip_ids, base.tip_ids)
    assert torch.equal(hd.palm_ids, base.palm_ids) and torch.equal(hd.fingerpad_ids, base.fingerpad_ids)
    torch.testing.assert_close(hd.v_template[:n_base], base.v_template)
    pose = np.random.default_rng(3).normal(scale=0.3, size=45)
    hd_out, base_out = _pose(hd, hand_pose=pose), _pose(base, hand_pose=pose)
    torch.testing.assert_close(hd_out.joints, base_out.joints)  # all 21, tips included
    torch.testing.assert_close(hd_out.vertices[:, :n_base], base_out.vertices)
    # the inserted vertices were smoothed off their flat facets, towards a rounder surface
    flat = subdivide_mano(build_open_hand("right"), 1, smooth_iterations=0)["v_template"][n_base:]
    offset = np.linalg.norm(hd.v_template[n_base:].double().numpy() - flat, axis=1)
    assert 1e-5 < np.median(offset) < 2e-3


def test_open_hand_file_is_cached(tmp_path):
    path = open_hand_file("left", cache_dir=tmp_path)
    assert path.name == "MANO_LEFT.pkl" and path.parent == tmp_path
    assert load_mano_file(path)["v_template"].shape[1] == 3


def test_vertex_transforms_reproduce_skinning(hands):
    hand = hands["right"]
    rng = np.random.default_rng(4)
    args = [torch.as_tensor(rng.normal(scale=s, size=(2, n)), dtype=torch.float32)
            for s, n in ((0.5, 3), (0.3, 45), (1.0, 10), (0.1, 3))]
    transforms = hand.vertex_transforms(*args)
    shaped = hand.v_template + torch.einsum("bl,vcl->bvc", args[2], hand.layer.shapedirs.reshape(-1, 3, 10))
    moved = torch.einsum("bvij,bvj->bvi", transforms[..., :3, :3], shaped) + transforms[..., :3, 3]
    torch.testing.assert_close(moved, hand(*args).vertices, atol=1e-5, rtol=0)


def test_open_hand_vertex_ids_are_read_from_its_file(hands):
    for side, hand in hands.items():
        data = build_open_hand(side)
        assert hand.palm_ids.dtype == torch.long and len(hand.palm_ids) > 50 and len(hand.fingerpad_ids) > 20
        np.testing.assert_array_equal(hand.palm_ids.numpy(), data["palm_vertex_ids"])
        np.testing.assert_array_equal(hand.fingerpad_ids.numpy(), data["fingerpad_vertex_ids"])
        np.testing.assert_array_equal(hand.tip_ids.numpy(), data["tip_ids"])
        palm = hand.v_template[hand.palm_ids]
        assert palm[:, 1].mean() < hand.v_template[:, 1].mean()  # the palm faces -y


def test_hand_vertices_and_rest_wrists_of_pose_batches(hands):
    hand = hands["right"]
    rng = np.random.default_rng(5)
    pose = HandPose(rng.normal(scale=0.5, size=(3, 3)), rng.normal(scale=0.3, size=(3, 45)),
                    rng.normal(size=(3, 10)), rng.normal(scale=0.1, size=(3, 3)))
    verts = hand_vertices(hand, pose)
    assert verts.shape == (3, hand.v_template.shape[0], 3) and verts.dtype == np.float64
    # rows are independent (to float32 rounding: a batch of one need not round as a batch of three)
    np.testing.assert_allclose(verts[1], hand_vertices(hand, pose.take(1))[0], rtol=0, atol=1e-6)
    wrists = rest_wrists(hand, pose.betas)
    # the wrist stays where it is under any global rotation and finger pose: MANO turns about it
    turned = HandPose(pose.global_orient, pose.hand_pose, pose.betas, np.zeros((3, 3)))
    with torch.no_grad():
        np.testing.assert_allclose(hand(*turned.torch()).joints[:, 0].double().numpy(), wrists, atol=1e-6)
    assert not np.allclose(wrists[0], wrists[1])  # betas move it
