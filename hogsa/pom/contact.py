"""Contact and penetration between hands and an object (GraspTTA's measures, REFERENCES §8).

Conventions: positions in metres; the contact map's distance is in centimetres as GraspTTA's
(C = 1 - 2(σ(2d) - 0.5): 1 at contact, 0.24 at 1 cm, ~0 beyond 3 cm). Batched tensors carry a
leading sample dimension B. Two families of measures:

- differentiable ones for the optimiser (torch): penetration depth of points behind a surface given
  by oriented samples (the nearest sample and its normal: depth = max(0, -(p - s)·n), a point-to-plane
  depth, exact for a flat face), contact maps, nearest distances;
- exact-geometry ones for the plausibility record (numpy, trimesh): the intersection volume of two
  closed meshes by voxels, with the inside test of ``hogsa.data.contact.Solid`` (ray parity per closed
  component).

An object surface is a fixed set of area-weighted samples on its faces (``SurfaceSamples``); posing
the object moves them with their faces, so one sampling serves every articulation and pose.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from scipy.spatial import cKDTree
from torch import Tensor

from hogsa.articulated import ArticulatedObject
from hogsa.data.contact import Solid, SurfaceDistance
from hogsa.geometry import axis_angle_to_matrix, hinge_rotation

CM_PER_M = 100.0
HAND_SURFACE_SAMPLES = 20_000  # samples on a hand (~0.04 m²): about 1.4 mm apart


def contact_map(distance: Tensor) -> Tensor:  # [...] metres -> [...] in (0, 1]
    """GraspTTA's contact value of a distance: C = 1 - 2(σ(2d) - 0.5), d in centimetres."""
    return 1.0 - 2.0 * (torch.sigmoid(2.0 * CM_PER_M * distance) - 0.5)


def squared_distances(points: Tensor, targets: Tensor) -> Tensor:
    """[B,N,3], [B,M,3] → [B,N,M] squared distances (m²), without autograd (for nearest-neighbour search)."""
    with torch.no_grad():
        inner = torch.baddbmm((targets * targets).sum(-1)[:, None, :], points, targets.transpose(1, 2), alpha=-2.0)
        return inner + (points * points).sum(-1)[..., None]


def kd_trees(targets: Tensor) -> list[cKDTree]:
    """One k-d tree per sample of [B,M,3] points (for targets that stay fixed over many queries)."""
    return [cKDTree(t) for t in targets.detach().cpu().double().numpy()]


def tree_index(points: Tensor, trees: list[cKDTree]) -> Tensor:
    """[B,N] int64 index of each point's nearest point in its sample's tree (no autograd)."""
    queries = points.detach().cpu().double().numpy()
    return torch.as_tensor(np.stack([tree.query(q)[1] for tree, q in zip(trees, queries)]), device=points.device)


def shell_neighbours(points: Tensor, targets: Tensor, shell: float) -> tuple[Tensor, Tensor]:
    """Each point's nearest target within ``shell`` m, by a k-d tree per sample: [B,N,3], [B,M,3] →
    index [B,N] int64 (0 where there is none) and found [B,N] bool. A search bounded by the shell
    ends at once for the many points far from every target."""
    queries, trees = points.detach().double().numpy(), kd_trees(targets)
    index = np.stack([tree.query(q, distance_upper_bound=shell)[1] for tree, q in zip(trees, queries)])
    found = index < targets.shape[1]
    return torch.as_tensor(np.where(found, index, 0)), torch.as_tensor(found)


def gather_points(targets: Tensor, index: Tensor) -> Tensor:
    """[B,M,C] rows chosen by [B,N] indices → [B,N,C]."""
    return torch.gather(targets, 1, index[..., None].expand(-1, -1, targets.shape[-1]))


def nearest(points: Tensor, targets: Tensor, index: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Distance (m) and index of each point's nearest target: [B,N,3], [B,M,3] → [B,N], [B,N] int64.

    The nearest target is found without autograd (or given as ``index``); the distance is then
    computed for that pair only, which has the gradient of the minimum (away from ties) without
    backpropagating through the full [B,N,M] distance matrix."""
    if index is None:
        index = squared_distances(points, targets).argmin(dim=-1)
    return (points - gather_points(targets, index)).norm(dim=-1), index


def object_contact_map(object_points: Tensor, hand_vertices: Tensor) -> Tensor:
    """[B,N,3] object points, [B,V,3] hand vertices → [B,N] contact map on the object points."""
    return contact_map(nearest(object_points, hand_vertices)[0])


def cross(a: Tensor, b: Tensor) -> Tensor:  # [...,3], [...,3] -> [...,3]
    """Cross product written out (torch.linalg.cross is slow on strided CPU tensors)."""
    ax, ay, az = a.unbind(-1)
    bx, by, bz = b.unbind(-1)
    return torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], dim=-1)


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:  # [B,V,3], [F,3] -> [B,V,3] unit
    """Area-weighted vertex normals (outward for counter-clockwise faces), differentiable."""
    a, b, c = (vertices[:, faces[:, k]] for k in range(3))
    face_normals = cross(b - a, c - a)  # length = twice the area
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals = normals.index_add(1, faces[:, k], face_normals)
    return F.normalize(normals, dim=-1)


def inside_depth(
    points: Tensor,  # [B,N,3] metres
    surface: Tensor,  # [B,M,3] oriented samples of a closed surface (vertices or surface samples)
    normals: Tensor,  # [B,M,3] their outward unit normals
    max_distance: float | None = None,  # points farther than this from their nearest sample are outside
    index: Tensor | None = None,  # [B,N] each point's nearest sample when already known
) -> Tensor:  # [B,N] metres, 0 outside
    """Penetration depth of points behind a surface: nearest sample s with normal n,
    depth = max(0, -(p - s)·n). ``max_distance`` bounds the test to a shell (a point far from a thin
    part such as a hand, yet 'behind' its nearest vertex, is not inside it)."""
    distance, index = nearest(points, surface, index)
    depth = (-((points - gather_points(surface, index)) * gather_points(normals, index)).sum(-1)).clamp(min=0.0)
    if max_distance is not None:
        depth = torch.where(distance <= max_distance, depth, torch.zeros_like(depth))
    return depth


def penetration_loss(depth: Tensor) -> Tensor:  # [B,N] metres -> [B]
    """GraspTTA's penetration term: per sample, the sum of squared depths in cm²."""
    return (CM_PER_M * depth).square().sum(-1)


class SurfaceSamples:
    """Fixed area-weighted samples on an object's faces, posed with the object.

    ``face`` [N] int64 and ``barycentric`` [N,3] locate each sample; ``pose`` returns world points and
    the outward normals of their faces.
    """

    def __init__(self, obj: ArticulatedObject, count: int, seed: int):
        verts, faces = obj.vertices.double().numpy(), obj.faces.numpy()
        mesh = trimesh.Trimesh(verts, faces, process=False)
        points, face = trimesh.sample.sample_surface(mesh, count, seed=seed)
        bary = trimesh.triangles.points_to_barycentric(mesh.triangles[face], points)
        self.obj = obj
        self.face = torch.as_tensor(face, dtype=torch.long)
        self.barycentric = torch.as_tensor(bary, dtype=torch.float32)

    def pose(self, articulation: Tensor, rot: Tensor, transl: Tensor) -> tuple[Tensor, Tensor]:
        """[B] rad, [B,3] axis-angle, [B,3] m → points [B,N,3] and unit normals [B,N,3]."""
        verts = self.obj.pose(articulation, rot, transl)  # [B,V,3]
        corners = verts[:, self.obj.faces[self.face]]  # [B,N,3(corner),3]
        points = torch.einsum("nk,bnkc->bnc", self.barycentric.to(verts.dtype), corners)
        normals = cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0])
        return points, F.normalize(normals, dim=-1)


def intersection_volume(a: Solid, b: Solid, voxel: float) -> float:
    """Volume (m³) inside both solids: voxel centres of a ``voxel``-spaced grid over the overlap of
    their bounding boxes that lie inside both, times voxel³ (GraspTTA's filter uses 5 mm voxels)."""
    low, high = np.maximum(a.bounds[0], b.bounds[0]), np.minimum(a.bounds[1], b.bounds[1])
    if np.any(high <= low):
        return 0.0
    axes = [np.arange(lo + voxel / 2, hi, voxel) for lo, hi in zip(low, high)]
    if any(len(x) == 0 for x in axes):
        return 0.0
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    inside = a.contains(grid)
    inside[inside] = b.contains(grid[inside])
    return float(inside.sum()) * voxel**3


class ObjectOccupancy:
    """Inside test of an articulated object in any pose by occupancy grids of its two parts.

    Each part (top, bottom) is voxelised once in the canonical frame (``Solid.contains`` at the
    centres of a ``spacing`` grid); a query point is taken back into each part's canonical frame
    (x = R^T (p - t), and Rz(θ) x for the top part, undoing ``ArticulatedObject.pose``) and looks up
    its voxel. Exact up to the spacing, and fast enough to run at every optimisation step.
    """

    def __init__(self, obj: ArticulatedObject, spacing: float):
        verts, faces = obj.vertices.double().numpy(), obj.faces.numpy()
        face_top = obj.top_mask.numpy()[faces].all(axis=1)
        self.spacing = spacing
        self.parts = {}
        for name, keep in (("top", face_top), ("bottom", ~face_top)):
            if keep.any():
                solid = Solid(verts, faces[keep])
                low = solid.bounds[0] - spacing
                shape = np.ceil((solid.bounds[1] + spacing - low) / spacing).astype(int) + 1
                axes = [low[k] + spacing * np.arange(shape[k]) for k in range(3)]
                grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
                occupied = solid.contains(grid).reshape(*shape)
                self.parts[name] = (torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(occupied))

    def contains(self, points: Tensor, articulation: Tensor, rot: Tensor, transl: Tensor) -> Tensor:
        """[B,N,3] world points of objects posed by [B], [B,3], [B,3] → [B,N] bool."""
        with torch.no_grad():
            offset = points.float() - transl.float()[:, None]
            local = torch.einsum("bji,bnj->bni", axis_angle_to_matrix(rot.float()), offset)
            inside = torch.zeros(points.shape[:2], dtype=torch.bool)
            for name, (low, occupied) in self.parts.items():
                query = local
                if name == "top":  # undo the hinge rotation H: H^T x, i.e. x @ H for row vectors
                    query = local @ hinge_rotation(articulation.float())
                cell = torch.round((query - low) / self.spacing).long()
                size = torch.tensor(occupied.shape)
                valid = ((cell >= 0) & (cell < size)).all(dim=-1)
                cell = torch.minimum(cell.clamp(min=0), size - 1)
                inside |= valid & occupied[cell[..., 0], cell[..., 1], cell[..., 2]]
            return inside


class HandObjectContact(NamedTuple):
    """Exact-geometry contact of one hand with an object (see ``hand_object_contact``)."""

    gap: float  # m: signed distance of the hand's closest vertex to the object (negative: inside)
    hand_depth: float  # m: deepest hand vertex inside the object (0 if none)
    object_depth: float  # m: deepest object surface sample inside the hand (0 if none)
    volume: float  # m³: hand ∩ object


def hand_object_contact(hand: Solid, obj: Solid, hand_signed: np.ndarray, object_samples: np.ndarray,
                        voxel: float) -> HandObjectContact:
    """Contact measures of a posed hand and a posed object (closed meshes) with exact inside tests.

    ``hand_signed`` [V] is the signed distance (m, negative inside) of each hand vertex to the object
    (``hogsa.data.contact.ObjectDistance``); ``object_samples`` [N,3] are points on the object's
    surface, tested against the hand and measured to the hand's surface (its nearest of
    ``HAND_SURFACE_SAMPLES`` area-weighted samples and vertices: error well below a millimetre).
    """
    object_inside = hand.contains(object_samples)
    object_depth = 0.0
    if object_inside.any():
        surface = SurfaceDistance(hand.mesh.vertices, hand.mesh.faces, samples=HAND_SURFACE_SAMPLES)
        object_depth = float(surface.tree.query(object_samples[object_inside])[0].max())
    return HandObjectContact(gap=float(hand_signed.min()), hand_depth=float(max(0.0, -hand_signed.min())),
                             object_depth=object_depth, volume=intersection_volume(hand, obj, voxel))
