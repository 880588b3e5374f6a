"""Camera rigs: look-at extrinsics and the ring of allocentric cameras of the embedded dataset.

OpenCV cameras (x right, y down, z forward); the world's up axis is +z.
"""

from __future__ import annotations

import numpy as np

WORLD_UP = np.array([0.0, 0.0, 1.0])


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray = WORLD_UP) -> np.ndarray:
    """[4,4] world2cam of a camera at ``position`` [3] looking at ``target`` [3] with ``up`` up."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:
        raise ValueError("look_at: the viewing direction is parallel to the up vector")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    world2cam = np.eye(4)
    world2cam[:3, :3] = rotation
    world2cam[:3, 3] = -rotation @ position
    return world2cam


def intrinsics(width: int, height: int, fov_deg: float) -> np.ndarray:
    """[3,3] K with horizontal field of view ``fov_deg`` and the principal point at the centre."""
    focal = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])


def camera_ring(center: np.ndarray, distance: float, sizes: list[tuple[int, int]], fov_deg: float,
                elevations_deg: tuple[float, ...] = (15.0, 45.0), azimuth_offset_deg: float = 10.0
                ) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """Cameras evenly spaced in azimuth around ``center`` (one per entry of ``sizes`` [(W,H)]),
    alternating elevations, all looking at ``center``. Returns [(K [3,3], world2cam [4,4], W, H)]."""
    cameras = []
    for view, (width, height) in enumerate(sizes):
        azimuth = np.radians(azimuth_offset_deg + 360.0 * view / len(sizes))
        elevation = np.radians(elevations_deg[view % len(elevations_deg)])
        direction = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
        position = center + distance * direction
        cameras.append((intrinsics(width, height, fov_deg), look_at(position, center), width, height))
    return cameras
