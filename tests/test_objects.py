"""Tests for hogsa.objects: ARCTIC templates, posing and the open procedural object set."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from scipy.spatial.distance import pdist
from scipy.spatial.transform import Rotation

from hogsa.objects import (
    OPEN_OBJECTS,
    ArticulatedObject,
    load_arctic_template,
    open_object,
    write_arctic_template,
)

# A square pyramid (top part, label 0) and a tetrahedron (bottom part, label 1),
# millimetres, with the two parts' vertices interleaved to check the order is kept.
# It uses 'f v/vt', 'f v/vt/vn' and a quad face.
FIXTURE_OBJ = """\
# tiny ARCTIC-style template (millimetres)
mtllib mesh.mtl
v 10 0 0
v 0 0 0
v 100 0 0
v 60 0 0
v 0 80 0
v 60 0 50
v 10 0 50
v 0 0 90
v 35 40 25
vt 0.125 0.875
vt 0.875 0.875
vt 0.125 0.125
vt 0.875 0.125
vn 0 1 0
usemtl material_0
f 1/1 4/2 6/4 7/3
f 1/1 9/2 4/3
f 4/1/1 9/2/1 6/3/1
f 6/1 9/2 7/3
f 7/1 9/2 1/3
f 2/4 5/4 3/4
f 2/4 3/4 8/4
f 2/4 8/4 5/4
f 3/4 5/4 8/4
"""
FIXTURE_VERTICES_MM = np.array(
    [[10, 0, 0], [0, 0, 0], [100, 0, 0], [60, 0, 0], [0, 80, 0], [60, 0, 50], [10, 0, 50], [0, 0, 90], [35, 40, 25]],
    dtype=float,
)
FIXTURE_LABELS = [0, 1, 1, 0, 1, 0, 0, 1, 0]
FIXTURE_TEXTURE = np.array([[(r * 60, c * 60, 200) for c in range(4)] for r in range(4)], dtype=np.uint8)


@pytest.fixture
def arctic_dir(tmp_path: Path) -> Path:
    """``<tmp>/meta/object_vtemplates/tiny`` plus ``<tmp>/meta/object_meta.json``."""
    obj_dir = tmp_path / "meta" / "object_vtemplates" / "tiny"
    obj_dir.mkdir(parents=True)
    (obj_dir / "mesh.obj").write_text(FIXTURE_OBJ)
    (obj_dir / "mesh.mtl").write_text("newmtl material_0\nKd 1 1 1\nmap_Kd texture.png\n")
    Image.fromarray(FIXTURE_TEXTURE).save(obj_dir / "texture.png")
    (obj_dir / "parts.json").write_text(json.dumps(FIXTURE_LABELS))
    (obj_dir / "object_params.json").write_text(json.dumps({"mocap_top": [[0, 0, 0]]}))
    (tmp_path / "meta" / "object_meta.json").write_text(json.dumps({"tiny": {"diameter": 0.123}}))
    return obj_dir


# --------------------------------------------------------------------------- ARCTIC reader
def test_load_arctic_template_in_metres_keeps_order_and_parts(arctic_dir: Path) -> None:
    obj = load_arctic_template(arctic_dir)
    assert obj.name == "tiny"
    np.testing.assert_allclose(obj.vertices.numpy(), FIXTURE_VERTICES_MM / 1000.0, atol=1e-7)
    assert obj.top_mask.tolist() == [label == 0 for label in FIXTURE_LABELS]
    assert obj.articulated
    assert obj.faces.shape == (10, 3)  # the quad is split in two
    assert obj.faces[:2].tolist() == [[0, 3, 5], [0, 5, 6]]
    assert obj.faces[3].tolist() == [3, 8, 5]  # from "f 4/1/1 9/2/1 6/3/1"
    np.testing.assert_allclose(obj.face_uvs[0].numpy(), [[0.125, 0.875], [0.875, 0.875], [0.875, 0.125]])
    assert np.array_equal(obj.texture.numpy(), FIXTURE_TEXTURE)
    assert obj.diameter == pytest.approx(0.123)  # from meta/object_meta.json


def test_load_arctic_template_defaults(arctic_dir: Path) -> None:
    (arctic_dir.parent.parent / "object_meta.json").unlink()
    (arctic_dir / "mesh.mtl").unlink()
    with pytest.warns(UserWarning, match="mesh.mtl"):
        obj = load_arctic_template(arctic_dir)
    assert obj.texture.shape == (1, 1, 3)
    assert obj.diameter == pytest.approx(pdist(FIXTURE_VERTICES_MM).max() / 1000.0)


def test_sample_texture_follows_obj_uv_convention(arctic_dir: Path) -> None:
    obj = load_arctic_template(arctic_dir)
    bary = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    colours = obj.sample_texture(torch.tensor([0, 0, 6]), bary)
    # vt (0.125, 0.875) -> texel row 0, col 0; (0.875, 0.875) -> row 0, col 3; (0.875, 0.125) -> row 3, col 3
    expected = FIXTURE_TEXTURE[[0, 0, 3], [0, 3, 3]] / 255.0
    np.testing.assert_allclose(colours.numpy(), expected, atol=1e-6)


def _write(name: str, text: str):
    return lambda d: (d / name).write_text(text)


@pytest.mark.parametrize(
    ("break_it", "error", "words"),
    [
        (lambda d: (d / "mesh.obj").unlink(), FileNotFoundError, ["mesh.obj", "missing"]),
        (lambda d: (d / "parts.json").unlink(), FileNotFoundError, ["parts.json", "missing"]),
        (_write("parts.json", "[0, 1, 1]"), ValueError, ["parts.json", "per mesh.obj vertex", "(9)"]),
        (_write("parts.json", "[0, 1, 2, 1, 1, 1, 1, 1, 1]"), ValueError, ["parts.json", "0 (top)", "[2]"]),
        (_write("mesh.obj", FIXTURE_OBJ.replace("v 0 80 0", "v 0 nan 0")), ValueError, ["mesh.obj", "'v'", "NaN"]),
        (_write("mesh.obj", FIXTURE_OBJ + "f 1 2 30\n"), ValueError, ["mesh.obj", "face index 30"]),
        (_write("mesh.obj", FIXTURE_OBJ + "f 1 2 3\n"), ValueError, ["mesh.obj", "vt"]),
    ],
    ids=["no-mesh", "no-parts", "parts-length", "parts-label", "nan-vertex", "bad-face", "mixed-vt"],
)
def test_load_arctic_template_errors(arctic_dir: Path, break_it, error, words) -> None:
    break_it(arctic_dir)
    with pytest.raises(error) as info:
        load_arctic_template(arctic_dir)
    for word in words:
        assert word in str(info.value)


# --------------------------------------------------------------------------- posing
def _articulation_reference(vertices: np.ndarray, top: np.ndarray, theta: float) -> np.ndarray:
    """Closed-form Rz(-theta) on the top vertices (ARCTIC: axis-angle [0, 0, -1] * theta)."""
    out = vertices.copy()
    x, y = vertices[top, 0], vertices[top, 1]
    out[top, 0] = np.cos(theta) * x + np.sin(theta) * y
    out[top, 1] = -np.sin(theta) * x + np.cos(theta) * y
    return out


def _pose(obj: ArticulatedObject, theta, rot, transl) -> np.ndarray:
    as_t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64))  # noqa: E731
    return obj.pose(as_t(theta), as_t(rot), as_t(transl)).numpy()


def test_articulation_rotates_only_the_top_part_about_z() -> None:
    obj = open_object("laptop")
    v = obj.vertices.double().numpy()
    top = obj.top_mask.numpy()
    theta = 0.7
    posed = _pose(obj, [theta], np.zeros((1, 3)), np.zeros((1, 3)))[0]
    np.testing.assert_allclose(posed, _articulation_reference(v, top, theta), atol=1e-12)
    # exact: a zero rotation vector gives exactly the identity (its skew matrix is 0) and the hinge's z row is
    # exactly (0, 0, 1), so products with exact zeros and ones leave these coordinates untouched
    np.testing.assert_array_equal(posed[~top], v[~top])
    np.testing.assert_allclose(np.linalg.norm(posed[top, :2], axis=1), np.linalg.norm(v[top, :2], axis=1), atol=1e-12)
    np.testing.assert_array_equal(posed[:, 2], v[:, 2])


def test_global_rotation_and_translation_are_rigid() -> None:
    obj = open_object("box")
    v = obj.vertices.double().numpy()
    rng = np.random.default_rng(0)
    rot, transl, theta = rng.normal(size=3), rng.normal(size=3), 0.4
    posed = _pose(obj, [theta], rot[None], transl[None])[0]
    expected = Rotation.from_rotvec(rot).apply(_articulation_reference(v, obj.top_mask.numpy(), theta)) + transl
    np.testing.assert_allclose(posed, expected, atol=1e-10)
    sample = rng.choice(len(v), 300, replace=False)
    articulated = _pose(obj, [theta], np.zeros((1, 3)), np.zeros((1, 3)))[0]
    np.testing.assert_allclose(pdist(posed[sample]), pdist(articulated[sample]), atol=1e-10)


def test_pose_is_batched() -> None:
    obj = open_object("scissors")
    rng = np.random.default_rng(1)
    theta, rot, transl = rng.uniform(0, 1, 3), rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    batched = _pose(obj, theta, rot, transl)
    assert batched.shape == (3, len(obj.vertices), 3)
    # batched and single products may round differently (~1e-16 m); atol for coordinates near 0, 1e-12 m
    for b in range(3):
        np.testing.assert_allclose(batched[b], _pose(obj, theta[b : b + 1], rot[b : b + 1], transl[b : b + 1])[0],
                                   atol=1e-12)
    arctic_shaped = _pose(obj, theta[:, None], rot, transl)  # ARCTIC passes angles as [B,1]
    np.testing.assert_allclose(arctic_shaped, batched, atol=1e-12)


def test_pose_float32_default_and_shape_errors() -> None:
    obj = open_object("mug")
    posed = obj.pose(torch.zeros(2), torch.zeros(2, 3), torch.zeros(2, 3))
    assert posed.dtype == torch.float32
    torch.testing.assert_close(posed[1], obj.vertices)
    with pytest.raises(ValueError, match="rot"):
        obj.pose(torch.zeros(2), torch.zeros(3), torch.zeros(2, 3))


def _tiny_object() -> ArticulatedObject:
    vertices = torch.tensor(
        [[0.1, 0.0, 0.0], [0.0, 0.1, 0.05], [0.05, 0.02, -0.1], [-0.1, -0.1, 0.0], [0.0, -0.1, 0.1]]
    )
    faces = torch.tensor([[0, 1, 2], [2, 3, 4]])
    return ArticulatedObject(
        name="tiny", vertices=vertices, faces=faces, top_mask=torch.tensor([True, True, True, False, False]),
        face_uvs=torch.full((2, 3, 2), 0.5), texture=torch.zeros(1, 1, 3, dtype=torch.uint8),
        articulated=True, diameter=0.3,
    )


@pytest.mark.parametrize("rot", [[0.3, -0.8, 0.5], [0.0, 0.0, 0.0]], ids=["generic", "identity"])
def test_pose_gradcheck(rot) -> None:
    obj = _tiny_object()
    theta = torch.tensor([0.4, -1.1], dtype=torch.float64, requires_grad=True)
    rots = torch.tensor([rot, rot], dtype=torch.float64).mul(torch.tensor([[1.0], [0.5]], dtype=torch.float64))
    rots.requires_grad_(True)
    transl = torch.tensor([[0.1, 0.2, 0.3], [-0.2, 0.0, 0.1]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(obj.pose, (theta, rots, transl))


def test_bottom_centroid_and_to() -> None:
    obj = _tiny_object()
    torch.testing.assert_close(obj.bottom_centroid, torch.tensor([-0.05, -0.1, 0.05]))
    moved = obj.to("cpu")
    assert moved.name == obj.name and torch.equal(moved.vertices, obj.vertices)  # a copy: exact


# --------------------------------------------------------------------------- open objects
@pytest.fixture(scope="module")
def open_objects() -> dict[str, ArticulatedObject]:
    return {name: open_object(name) for name in OPEN_OBJECTS}


def test_open_object_set_composition(open_objects) -> None:
    articulated = [name for name, obj in open_objects.items() if obj.articulated]
    assert len(open_objects) >= 4
    assert len(articulated) >= 3 and len(open_objects) - len(articulated) >= 1
    for name, obj in open_objects.items():
        assert obj.name == name
        assert obj.articulated == bool(obj.top_mask.any())


def test_open_object_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        open_object("teapot")
    assert all(name in str(info.value) for name in OPEN_OBJECTS)


@pytest.mark.parametrize("name", OPEN_OBJECTS)
def test_open_object_geometry(open_objects, name: str) -> None:
    obj = open_objects[name]
    v, f = obj.vertices.numpy(), obj.faces.numpy()
    assert 500 <= len(v) <= 4000
    assert np.isfinite(v).all()
    assert 0.08 <= obj.diameter <= 0.35
    assert obj.diameter == pytest.approx(pdist(v.astype(np.float64)).max(), rel=1e-6)
    top = obj.top_mask.numpy()
    assert (top[f].any(axis=1) == top[f].all(axis=1)).all(), "a face spans both parts"
    mesh = trimesh.Trimesh(v, f, process=False)
    assert mesh.volume > 0  # outward-facing
    for component in mesh.split(only_watertight=False):
        assert component.is_watertight and component.volume > 0


@pytest.mark.parametrize("name", OPEN_OBJECTS)
def test_open_object_texture_and_uvs(open_objects, name: str) -> None:
    obj = open_objects[name]
    uv = obj.face_uvs.numpy()
    assert uv.min() >= 0.0 and uv.max() <= 1.0
    height, width = obj.texture.shape[:2]
    edges = (uv[:, 1:] - uv[:, :1]) * (width, height)
    pixel_area = 0.5 * np.abs(edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0])
    assert pixel_area.min() > 0.05, "degenerate UV triangle"
    texture = obj.texture.numpy()
    assert texture.std() > 25
    assert len(np.unique(texture.reshape(-1, 3), axis=0)) > 50
    face_colours = obj.sample_texture(torch.arange(len(obj.faces)), torch.full((len(obj.faces), 3), 1 / 3))
    assert face_colours.std(dim=0).max() > 0.05  # the object is not painted one flat colour


def test_open_objects_have_distinct_colours(open_objects) -> None:
    means = {name: obj.texture.float().mean(dim=(0, 1)) for name, obj in open_objects.items()}
    names = list(means)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert (means[a] - means[b]).abs().max() > 3, (a, b)


@pytest.mark.parametrize("name", OPEN_OBJECTS)
def test_opening_moves_only_the_top_part(open_objects, name: str) -> None:
    obj = open_objects[name]
    closed = obj.vertices.numpy()
    opened = obj.pose(torch.tensor([0.5]), torch.zeros(1, 3), torch.zeros(1, 3))[0].numpy()
    top = obj.top_mask.numpy()
    np.testing.assert_array_equal(opened[~top], closed[~top])  # exact: the zero rotation is exactly the identity
    if obj.articulated:
        off_axis = np.linalg.norm(closed[:, :2], axis=1) > 1e-4
        moved = np.linalg.norm(opened - closed, axis=1) > 1e-5
        assert moved[top & off_axis].all()
    else:
        np.testing.assert_allclose(opened, closed, atol=1e-7)


def test_open_objects_are_deterministic() -> None:
    a, b = open_object("book"), open_object("book")
    assert torch.equal(a.vertices, b.vertices) and torch.equal(a.texture, b.texture)  # deterministic: the same bytes
    assert torch.equal(a.face_uvs, b.face_uvs)


def test_articulated_objects_open_upwards() -> None:
    """Opening the box / laptop / book lifts the lid (+y); the scissors' handles spread."""
    for name in ("box", "laptop", "book"):
        obj = open_object(name)
        opened = obj.pose(torch.tensor([1.2]), torch.zeros(1, 3), torch.zeros(1, 3))[0]
        assert opened[obj.top_mask, 1].max() > obj.vertices[obj.top_mask, 1].max() + 0.05, name
    scissors = open_object("scissors")
    opened = scissors.pose(torch.tensor([0.5]), torch.zeros(1, 3), torch.zeros(1, 3))[0]
    tip = torch.where(scissors.top_mask, -1.0, scissors.vertices[:, 0]).argmax()  # lower blade tip stays
    top_tip = torch.where(scissors.top_mask, scissors.vertices[:, 0], -1.0).argmax()
    assert torch.equal(opened[tip], scissors.vertices[tip])  # exact: bottom part, zero rotation exactly the identity
    assert (opened[top_tip] - opened[tip]).norm() > 0.04


# --------------------------------------------------------------------------- writer
@pytest.mark.parametrize("name", OPEN_OBJECTS)
def test_write_read_round_trip(open_objects, tmp_path: Path, name: str) -> None:
    obj = open_objects[name]
    out = write_arctic_template(obj, tmp_path / "object_vtemplates" / name)
    assert sorted(p.name for p in out.iterdir()) == [
        "bottom.obj", "mesh.mtl", "mesh.obj", "object_params.json", "parts.json", "texture.png", "top.obj"
    ]
    back = load_arctic_template(out)
    assert back.name == name and back.articulated == obj.articulated
    np.testing.assert_allclose(back.vertices.numpy(), obj.vertices.numpy(), atol=1e-6)
    assert torch.equal(back.faces, obj.faces)
    assert torch.equal(back.top_mask, obj.top_mask)
    np.testing.assert_allclose(back.face_uvs.numpy(), obj.face_uvs.numpy(), atol=1e-6)
    assert torch.equal(back.texture, obj.texture)
    assert back.diameter == pytest.approx(obj.diameter)
    params = json.loads((out / "object_params.json").read_text())
    assert params["name"] == name and params["articulated"] == obj.articulated
    # mesh.obj is in millimetres; top.obj / bottom.obj hold each part's vertices.
    first_v = next(line for line in (out / "mesh.obj").read_text().splitlines() if line.startswith("v "))
    np.testing.assert_allclose([float(x) for x in first_v.split()[1:]], obj.vertices[0].numpy() * 1000, rtol=1e-6)
    for part, count in (("top", int(obj.top_mask.sum())), ("bottom", int((~obj.top_mask).sum()))):
        text = (out / f"{part}.obj").read_text()
        assert sum(line.startswith("v ") for line in text.splitlines()) == count


def test_write_replaces_existing_folder_atomically(tmp_path: Path) -> None:
    target = tmp_path / "mug"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    write_arctic_template(open_object("mug"), target)
    write_arctic_template(open_object("bottle"), target)
    assert not (target / "stale.txt").exists()
    assert load_arctic_template(target).name == "bottle"
    assert [p.name for p in tmp_path.iterdir()] == ["mug"]  # no staging folders left behind


@pytest.mark.parametrize("up_axis", [0, 1, 2])
def test_upright_rotation_takes_the_up_axis_to_z(up_axis):
    from dataclasses import replace

    from hogsa.objects import upright_rotation

    R = upright_rotation(replace(open_object("box"), up_axis=up_axis))
    np.testing.assert_allclose(R @ np.eye(3)[up_axis], [0, 0, 1])
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(R), 1.0)


def test_up_axis_round_trips_and_scissors_lie_flat(tmp_path):
    scissors = open_object("scissors")
    assert scissors.up_axis == 2 and open_object("box").up_axis == 1
    assert load_arctic_template(write_arctic_template(scissors, tmp_path / "scissors")).up_axis == 2


def test_pose_of_replacement_vertices_matches_a_rebuilt_object():
    from dataclasses import replace

    obj = open_object("box")
    moved = obj.vertices + 0.01 * torch.randn(obj.vertices.shape, generator=torch.Generator().manual_seed(0))
    args = (torch.tensor([0.4]), torch.tensor([[0.1, -0.2, 0.3]]), torch.tensor([[0.0, 0.1, 0.2]]))
    torch.testing.assert_close(obj.pose(*args, vertices=moved), replace(obj, vertices=moved).pose(*args))
    with pytest.raises(ValueError, match="vertices must have shape"):
        obj.pose(*args, vertices=moved[:10])
