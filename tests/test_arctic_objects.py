"""Tests for hogsa.data.arctic_objects: reading ARCTIC object templates and writing them back."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import pdist

from hogsa.data.arctic_objects import load_arctic_template, write_arctic_template
from hogsa.open_objects import OPEN_OBJECTS, open_object

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


# --------------------------------------------------------------------------- writer
@pytest.mark.parametrize("name", OPEN_OBJECTS)
def test_write_read_round_trip(tmp_path: Path, name: str) -> None:
    obj = open_object(name)
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


def test_up_axis_round_trips_and_scissors_lie_flat(tmp_path):
    scissors = open_object("scissors")
    assert scissors.up_axis == 2 and open_object("box").up_axis == 1
    assert load_arctic_template(write_arctic_template(scissors, tmp_path / "scissors")).up_axis == 2

