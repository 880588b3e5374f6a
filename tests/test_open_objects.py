"""Tests for hogsa.open_objects: the procedural object set (geometry, textures, opening)."""

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.distance import pdist

from hogsa.articulated import ArticulatedObject
from hogsa.open_objects import OPEN_OBJECTS, open_object


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

