"""Camera rigs: look-at extrinsics, intrinsics from a field of view, and rings of cameras around a point.

OpenCV cameras (x right, y down, z forward); the world's up axis is +z.
"""

from __future__ import annotations

import numpy as np

from hogsa.data.schema import Camera

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


def camera_ring(
    center: np.ndarray,  # [3] metres, the point every camera looks at
    distance: float,  # metres from the centre
    sizes: list[tuple[int, int]],  # (W, H) of each camera: len(sizes) cameras evenly spaced over 360° of azimuth
    fov_deg: float,  # horizontal field of view of every camera
    elevations_deg: tuple[float, ...] = (15.0, 45.0),  # camera i's is entry i mod len, above the horizontal
    azimuth_offset_deg: float = 10.0,  # camera 0's azimuth, from +x towards +y
) -> list[Camera]:
    """A ring of cameras around ``center``, all looking at it: the embedded dataset's allocentric views
    (the defaults) and the novel-view orbits of the reports (one elevation, offset 0)."""
    center = np.asarray(center, dtype=np.float64)
    cameras = []
    for view, (width, height) in enumerate(sizes):
        azimuth = np.radians(azimuth_offset_deg + 360.0 * view / len(sizes))
        elevation = np.radians(elevations_deg[view % len(elevations_deg)])
        direction = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
        position = center + distance * direction
        cameras.append(Camera(K=intrinsics(width, height, fov_deg), world2cam=look_at(position, center), width=width,
                              height=height))
    return cameras
