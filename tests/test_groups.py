"""hogsa.data.groups: a frame's poses as HOGS takes them, the held-out split and the group names."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_data_schema import FRAMES, sequence

from hogsa.articulated import ObjectPose
from hogsa.data.groups import frame_poses, is_held_out, resolve_groups
from hogsa.hand import HandPose


def _random_sequence():
    rng = np.random.default_rng(0)

    def hand() -> HandPose:
        return HandPose(*(rng.normal(size=(FRAMES, width)) for width in (3, 45, 10, 3)))

    obj = ObjectPose(rng.normal(size=FRAMES), rng.normal(size=(FRAMES, 3)), rng.normal(size=(FRAMES, 3)))
    return sequence(hands={"right": hand(), "left": hand()}, object_pose=obj)


def test_frame_poses_are_the_frames_rows_as_one_row_float32_tensors():
    seq = _random_sequence()
    right, left, obj = frame_poses(seq, 1)
    assert isinstance(right, HandPose) and isinstance(left, HandPose) and isinstance(obj, ObjectPose)
    for record, stored in ((right, seq.hands["right"]), (left, seq.hands["left"]), (obj, seq.object_pose)):
        assert len(record) == 1
        for name, value in zip((f.name for f in dataclasses.fields(record)), record):
            row = torch.as_tensor(getattr(stored, name)[1:2], dtype=torch.float32)
            # exact: one float64 → float32 cast of frame 1's row, no other arithmetic
            assert value.dtype == torch.float32 and torch.equal(value, row), name
    assert not torch.equal(right.hand_pose, left.hand_pose)  # each side from its own record


def test_held_out_views_at_every_frame_and_the_middle_frame_of_each_block_in_every_view():
    cfg = SimpleNamespace(held_out_views=[8], held_out_every=5)
    assert all(is_held_out(8, frame, cfg) for frame in range(10))
    assert [frame for frame in range(10) if is_held_out(1, frame, cfg)] == [2, 7]


def test_resolve_groups_expands_all_and_names_unknown_groups():
    index = SimpleNamespace(groups=lambda split: ["s01/box", "s02/mixer"] if split == "train" else [])
    assert resolve_groups(["all"], index) == ["s01/box", "s02/mixer"]
    assert resolve_groups(["s02/mixer"], index) == ["s02/mixer"]
    with pytest.raises(ValueError, match=r"hogs.groups names \['s03/box'\].*it has \['s01/box', 's02/mixer'\]"):
        resolve_groups(["s03/box", "s01/box"], index)
