"""HandPose and ObjectPose: shape checks, row selection, conversions and concatenation."""

import numpy as np
import pytest
import torch

from hogsa.articulated import ObjectPose
from hogsa.hand import HandPose


def _hand_pose(batch: int) -> HandPose:
    rng = np.random.default_rng(0)
    return HandPose(rng.normal(size=(batch, 3)), rng.normal(size=(batch, 45)), rng.normal(size=(batch, 10)),
                    rng.normal(size=(batch, 3)))


def test_hand_pose_rows_conversions_and_concatenation():
    pose = _hand_pose(5)
    assert len(pose) == 5
    picked = pose.take(np.array([4, 1]))
    assert np.array_equal(picked.hand_pose, pose.hand_pose[[4, 1]])  # a copy of rows: exact
    assert len(pose.take(2)) == 1 and np.array_equal(pose.take(2).transl[0], pose.transl[2])
    as_torch = pose.torch(torch.float64)
    assert all(isinstance(field, torch.Tensor) for field in as_torch)
    back = as_torch.numpy()  # float64 both ways: exact
    assert all(np.array_equal(a, b) for a, b in zip(back, pose))
    joined = HandPose.concatenate([pose.take(slice(0, 2)), pose.take(slice(2, 5))])
    assert all(np.array_equal(a, b) for a, b in zip(joined, pose))
    assert all(np.count_nonzero(field) == 0 for field in HandPose.zeros(3)) and len(HandPose.zeros(3)) == 3


def test_hand_pose_rejects_mismatched_fields():
    pose = _hand_pose(2)
    with pytest.raises(ValueError, match="'hand_pose' has shape \\(2, 48\\), expected \\(2, 45\\)"):
        HandPose(pose.global_orient, np.zeros((2, 48)), pose.betas, pose.transl)
    with pytest.raises(ValueError, match="'transl' has shape \\(3, 3\\)"):
        HandPose(pose.global_orient, pose.hand_pose, pose.betas, np.zeros((3, 3)))


def test_object_pose_rows_and_checks():
    pose = ObjectPose(np.arange(4.0), np.ones((4, 3)), np.zeros((4, 3)))
    assert len(pose) == 4 and np.array_equal(pose.take(np.array([True, False, True, False])).articulation, [0.0, 2.0])
    assert all(np.array_equal(a, b) for a, b in zip(pose.torch(torch.float64).numpy(), pose))
    assert np.array_equal(ObjectPose.concatenate([pose, pose.take(1)]).articulation, [0, 1, 2, 3, 1])
    with pytest.raises(ValueError, match="'rot' has shape \\(4, 4\\), expected \\(4, 3\\)"):
        ObjectPose(np.zeros(4), np.zeros((4, 4)), np.zeros((4, 3)))
