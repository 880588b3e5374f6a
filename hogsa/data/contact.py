"""Signed distances between hand vertices and an object surface (dataset checks, grasp synthesis).

Distances are in metres, negative inside the object. The surface is a dense even sample of the mesh
(nearest-sample distance: area-weighted random samples, error about half their spacing); inside-ness is a ray-parity test on
each closed component, so objects made of overlapping closed parts (a cap on a bottle) are handled.
An articulated object is measured part by part in its canonical frame, so one index serves every pose.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from hogsa.articulated import ArticulatedObject
from hogsa.geometry import axis_angle_to_matrix, hinge_rotation


class SurfaceDistance:
    """Signed distance (m, negative inside) from points to a fixed mesh."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, samples: int = 60_000, seed: int = 0):
        mesh = trimesh.Trimesh(vertices, faces, process=False)
        points, _ = trimesh.sample.sample_surface(mesh, samples, seed=seed)
        self.points = np.concatenate([points, mesh.vertices])
        self.tree = cKDTree(self.points)
        self.components = list(mesh.split(only_watertight=False))

    def __call__(self, query: np.ndarray) -> np.ndarray:
        """[N,3] points → [N] signed distances (m)."""
        distance, _ = self.tree.query(query)
        inside = np.zeros(len(query), bool)
        for component in self.components:
            inside |= component.contains(query)
        return np.where(inside, -distance, distance)


class ObjectDistance:
    """Signed distance to an articulated object in any pose (its parts indexed once, canonically)."""

    def __init__(self, obj: ArticulatedObject, samples: int = 60_000, seed: int = 0):
        verts = obj.vertices.double().numpy()
        faces = obj.faces.numpy()
        top = obj.top_mask.numpy()
        face_top = top[faces].all(axis=1)
        self.parts = {}
        for name, keep in (("top", face_top), ("bottom", ~face_top)):
            if keep.any():
                share = keep.sum() / len(faces)
                self.parts[name] = SurfaceDistance(verts, faces[keep], max(int(samples * share), 1000), seed)

    def __call__(self, points: np.ndarray, articulation: float, rot: np.ndarray, transl: np.ndarray) -> np.ndarray:
        """[N,3] world points → [N] signed distances to the object posed by (articulation rad,
        axis-angle rot [3], transl [3] m), ARCTIC's convention."""
        R = axis_angle_to_matrix(torch.as_tensor(np.asarray(rot, dtype=np.float64))).numpy()
        canonical = (points - transl) @ R  # R^T (p - t), row vectors
        out = np.full(len(points), np.inf)
        if "bottom" in self.parts:
            out = np.minimum(out, self.parts["bottom"](canonical))
        if "top" in self.parts:  # undo the top part's hinge rotation H: H^T x, i.e. x @ H for row vectors
            hinge = hinge_rotation(torch.as_tensor(articulation, dtype=torch.float64)).numpy()
            out = np.minimum(out, self.parts["top"](canonical @ hinge))
        return out
