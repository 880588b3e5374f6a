"""DatasetIndex, the one door to a dataset: what the index records, parse-once reads, groups, objects."""

import dataclasses

import numpy as np
import pytest
import trimesh

from hogsa.config import load_params, section
from hogsa.data import dataset, h2o
from hogsa.data.dataset import DataConfig, DatasetIndex, index_dataset
from tests.test_h2o import write_h2o_fixture


def _h2o_config(root, cam: int) -> DataConfig:
    cfg = section(load_params(), "data", DataConfig)
    return dataclasses.replace(cfg, source="h2o", real_root=str(root), h2o_cam=cam,
                               h2o_splits={"train": ["subject1"], "val": [], "test": []})


def _h2o_dataset(tmp_path):
    root = tmp_path / "h2o"
    write_h2o_fixture(root, "hand_pose_MANO", "obj_pose_RT")
    mesh = trimesh.creation.box(extents=(0.06, 0.04, 0.1))
    (root / "object" / "milk").mkdir(parents=True)
    mesh.export(root / "object" / "milk" / "milk.obj")
    return root


def test_h2o_index_records_camera_and_convention_and_round_trips(tmp_path):
    index = index_dataset(_h2o_config(_h2o_dataset(tmp_path), cam=1), tmp_path / "unused")
    assert (index.source, index.pose_convention, index.h2o_cam) == ("h2o", "absolute", 1)
    assert index.splits == {"train": ["subject1/h1/0"], "val": [], "test": []}
    index.save(tmp_path / "index.json")
    assert DatasetIndex.load(tmp_path / "index.json") == index  # no hands_mean needed for absolute poses


def test_read_parses_each_sequence_once_with_the_recorded_camera(tmp_path, monkeypatch):
    index = index_dataset(_h2o_config(_h2o_dataset(tmp_path), cam=1), tmp_path / "unused")
    calls = []
    read = h2o.read_sequence
    monkeypatch.setattr(h2o, "read_sequence", lambda folder, cam: calls.append(cam) or read(folder, cam=cam))
    first = index.read("subject1/h1/0")
    assert index.groups() == ["subject1/milk"]
    assert [seq.name for seq in index.group_sequences("subject1/milk")] == ["subject1/h1/0"]
    assert index.read("subject1/h1/0") is first and calls == [1]  # parsed once, with camera 1's annotations
    assert first.cameras[2].world2cam.tolist() == np.eye(4).tolist()  # cam1 (view 2) is the world: identity


def test_object_is_the_h2o_mesh_for_h2o(tmp_path):
    index = index_dataset(_h2o_config(_h2o_dataset(tmp_path), cam=0), tmp_path / "unused")
    milk = index.object("milk")
    assert not milk.articulated and milk.vertices.shape[0] >= 8
    assert milk.diameter == pytest.approx(np.linalg.norm([0.06, 0.04, 0.1]), abs=1e-6)  # the box's diagonal
    assert index.objects({"milk"}) == {"milk": milk} and index.object("milk") is milk


def test_h2o_index_checks_camera_and_object_folder(tmp_path):
    root = _h2o_dataset(tmp_path)
    with pytest.raises(ValueError, match="data.h2o_cam must be one of 0-4, got 7"):
        index_dataset(_h2o_config(root, cam=7), tmp_path)
    cfg = dataclasses.replace(_h2o_config(root, cam=0), h2o_object_root=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="H2O object mesh folder .*nowhere not found"):
        index_dataset(cfg, tmp_path)


def test_relative_poses_are_converted_with_the_given_hands_mean(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(dataset.arctic, "read_sequence", lambda root, name, hands_mean: seen.append(hands_mean) or name)
    hands_mean = {"right": np.ones(45), "left": np.zeros(45)}
    index = DatasetIndex("embedded", "data/embedded", {"train": ["s01/box_grab_01"]}, "relative", None,
                         "data/embedded", hands_mean=hands_mean)
    assert index.read("s01/box_grab_01") == "s01/box_grab_01" and seen == [hands_mean]


def test_relative_poses_are_not_read_without_the_hand_models():
    index = DatasetIndex("embedded", "data/embedded", {"train": ["s01/box_grab_01"]}, "relative", None, "data/embedded")
    with pytest.raises(ValueError, match="reading s01/box_grab_01 needs the hand models' mean poses"):
        index.read("s01/box_grab_01")
