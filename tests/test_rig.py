"""Camera rigs: one ring of look-at cameras for the embedded dataset's views and the reports' orbits."""

import numpy as np
import torch

from hogsa.data.rig import camera_ring, intrinsics
from hogsa.geometry import project_points


def _positions(cameras) -> np.ndarray:  # [n, 3] camera centres, world
    return np.array([-camera.world2cam[:3, :3].T @ camera.world2cam[:3, 3] for camera in cameras])


def test_an_orbit_circles_the_centre_with_z_up():
    center = np.array([0.1, -0.2, 0.3])
    cameras = camera_ring(center, 0.5, [(64, 48)] * 8, 50.0, (20.0,), 0.0)
    assert len(cameras) == 8
    for camera in cameras:
        assert np.array_equal(camera.K, intrinsics(64, 48, 50.0)) and (camera.width, camera.height) == (64, 48)
        uv, _ = project_points(torch.tensor(np.stack([center, center + [0, 0, 0.05]])), torch.tensor(camera.K),
                               torch.tensor(camera.world2cam))
        assert torch.allclose(uv[0], torch.tensor([32.0, 24.0], dtype=torch.float64), atol=1e-9)  # centre in the middle
        assert uv[1, 1] < uv[0, 1]  # +z is up in the image
    positions = _positions(cameras)
    assert np.allclose(np.linalg.norm(positions - center, axis=1), 0.5)
    assert np.allclose(positions[:, 2] - center[2], 0.5 * np.sin(np.radians(20.0)))
    azimuths = np.degrees(np.arctan2(positions[:, 1] - center[1], positions[:, 0] - center[0])) % 360
    assert np.allclose(azimuths, np.arange(0, 360, 45))


def test_the_datasets_ring_alternates_elevations_and_keeps_each_views_size():
    sizes = [(80, 60), (40, 30), (80, 60), (40, 30)]
    cameras = camera_ring(np.zeros(3), 1.0, sizes, 60.0, (15.0, 45.0), 10.0)
    assert [(c.width, c.height) for c in cameras] == sizes
    assert all(np.array_equal(c.K, intrinsics(w, h, 60.0)) for c, (w, h) in zip(cameras, sizes))
    positions = _positions(cameras)
    assert np.allclose(np.degrees(np.arcsin(positions[:, 2])), [15.0, 45.0, 15.0, 45.0])
    assert np.allclose(np.degrees(np.arctan2(positions[:, 1], positions[:, 0])) % 360, [10.0, 100.0, 190.0, 280.0])
