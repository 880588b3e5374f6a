"""Quick shaded mesh pictures with matplotlib (figures for reports, no GPU or GL needed)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from mpl_toolkits.mplot3d.art3d import Poly3DCollection


def shaded_colors(verts: np.ndarray, faces: np.ndarray, base: np.ndarray,
                  light: tuple[float, float, float] = (0.3, 0.8, 0.5)) -> np.ndarray:
    """Lambert-shaded RGB per face: ``base`` [F,3] or [3] in [0,1] → [F,3] (ambient 0.35)."""
    tri = verts[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    light_dir = np.asarray(light) / np.linalg.norm(light)
    shade = 0.35 + 0.65 * np.clip(normals @ light_dir, 0, 1)
    return np.clip(np.broadcast_to(base, (len(faces), 3)) * shade[:, None], 0, 1)


def draw_mesh(ax: Axes, verts: np.ndarray, faces: np.ndarray, face_colors: np.ndarray,
              elev: float = 25, azim: float = -60) -> None:
    """Draw a mesh ([V,3] metres, [F,3]) on a 3-D axis with equal aspect and no ticks."""
    ax.add_collection3d(Poly3DCollection(verts[faces], facecolors=face_colors, linewidths=0))
    centre = (verts.max(0) + verts.min(0)) / 2
    half = (verts.max(0) - verts.min(0)).max() / 2
    for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
        setter(c - half, c + half)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=elev, azim=azim)
    ax.set_axis_off()
