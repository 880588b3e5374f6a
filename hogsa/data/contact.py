"""Signed distances between hand vertices and an object surface (dataset checks, grasp synthesis).

Distances are in metres, negative inside the object. The surface is a dense even sample of the mesh
(nearest-sample distance: area-weighted random samples, error about half their spacing); inside-ness is
a ray-parity test on each closed component (``Solid``), so objects made of overlapping closed parts (a
cap on a bottle) are handled. An articulated object is measured part by part in its canonical frame,
so one index serves every pose.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.geometry import axis_angle_to_matrix, hinge_rotation


class Solid:
    """Inside test of a closed mesh made of one or several closed components (ray parity per
    component, so overlapping parts such as a cap on a bottle count once)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):  # [V,3] metres, [F,3]
        self.mesh = trimesh.Trimesh(np.asarray(vertices, dtype=np.float64), np.asarray(faces), process=False)
        self.components = list(self.mesh.split(only_watertight=False))

    def contains(self, points: np.ndarray) -> np.ndarray:  # [N,3] -> [N] bool
        inside = np.zeros(len(points), bool)
        for component in self.components:
            inside |= component.contains(points)
        return inside

    @property
    def bounds(self) -> np.ndarray:  # [2,3] min and max corner
        return self.mesh.bounds


class SurfaceDistance:
    """Signed distance (m, negative inside) from points to a fixed mesh."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, samples: int = 60_000, seed: int = 0):
        self.solid = Solid(vertices, faces)
        points, _ = trimesh.sample.sample_surface(self.solid.mesh, samples, seed=seed)
        self.points = np.concatenate([points, self.solid.mesh.vertices])
        self.tree = cKDTree(self.points)

    def __call__(self, query: np.ndarray) -> np.ndarray:
        """[N,3] points → [N] signed distances (m)."""
        distance, _ = self.tree.query(query)
        return np.where(self.solid.contains(query), -distance, distance)


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

    def closest(self, vertices: np.ndarray, pose: ObjectPose) -> np.ndarray:
        """[F,V,3] world vertices of F frames → [F] signed distance (m) of each frame's closest vertex to
        the object posed by that frame of ``pose`` (numpy, F rows)."""
        return np.array([self(vertices[f], pose.articulation[f], pose.rot[f], pose.transl[f]).min()
                         for f in range(len(vertices))])
