"""The open hand's surface mesh: marching cubes on its signed distance field, then relaxation.

Marching cubes on a coarse grid yields the target resolution directly, with near-uniform edges
(quadric decimation of a fine mesh leaves centimetre-long slivers along the digits, which cannot
bend at the joints); tangential relaxation then evens the triangles out on the surface. The result
is one closed, consistently wound, outward-facing genus-0 manifold (checked). Vertices (V, 3)
float64 metres, faces (F, 3) int64, counter-clockwise seen from outside.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import trimesh

from hogsa.open_hand.sdf import hand_sdf, sdf_gradient
from hogsa.open_hand.skeleton import Skeleton, normalize

GRID_STEP = 0.005  # marching-cubes voxel, m: sets the resolution (~2,300 vertices, ~4.7 mm edges)
GRID_MARGIN = 0.025  # m of empty space around the skeleton's capsules on every side of the grid
RELAX_ROUNDS = 10  # tangential relaxation rounds, each re-projected onto the field


def vertex_averaging(verts: np.ndarray, faces: np.ndarray, include_self: bool) -> scipy.sparse.csr_matrix:
    """(V, V) row-stochastic averaging over each vertex's edge neighbours (and itself when ``include_self``)."""
    n_verts = len(verts)
    edges = trimesh.Trimesh(verts, faces, process=False).edges_unique
    adjacency = trimesh.graph.edges_to_coo(edges, n_verts).astype(np.float64)
    adjacency = adjacency + adjacency.T
    if include_self:
        adjacency = adjacency + scipy.sparse.eye(n_verts)
    adjacency = adjacency.tocsr()
    return scipy.sparse.diags(1.0 / np.asarray(adjacency.sum(axis=1)).ravel()) @ adjacency


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals.

    Written out rather than taken from trimesh, whose normals would change the built hand:
    ``Trimesh.vertex_normals`` weights faces by angle (components up to 0.3 apart on this mesh) and
    ``trimesh.geometry.mean_vertex_normals`` sums and normalises in another order (3e-16 apart, which
    relaxation and the joint regressor's fit carry to 9e-7 in ``J_regressor``).
    """
    corners = verts[faces]  # (F, 3 corners, 3)
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # area-scaled
    normals = np.zeros_like(verts)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normalize(normals)


def _sample_sdf(skel: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Hand SDF on a ``GRID_STEP`` grid (X, Y, Z) and the grid's first corner (3,), metres.

    Raises when the surface reaches the grid's boundary (marching cubes would leave it open there).
    """
    reach = np.concatenate([skel.capsules[1:].reshape(-1, 3), [[0.035, 0.0, 0.0]]])
    lo, hi = reach.min(axis=0) - GRID_MARGIN, reach.max(axis=0) + GRID_MARGIN
    grid = np.stack(np.meshgrid(*[np.arange(a, b, GRID_STEP) for a, b in zip(lo, hi)], indexing="ij"), axis=-1)
    sdf = hand_sdf(grid.reshape(-1, 3), skel).reshape(grid.shape[:3])
    boundary = [sdf[0], sdf[-1], sdf[:, 0], sdf[:, -1], sdf[:, :, 0], sdf[:, :, -1]]
    if min(side.min() for side in boundary) <= 0:
        raise RuntimeError(f"open hand surface touches the sampling grid boundary (margin {GRID_MARGIN} m)")
    return sdf, lo


def extract_surface(skel: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Even triangle mesh of the hand SDF: (V, 3) float64 vertices, (F, 3) int64 faces, outward."""
    from skimage.measure import marching_cubes

    sdf, lo = _sample_sdf(skel)
    verts, faces, _, _ = marching_cubes(sdf, level=0.0, spacing=(GRID_STEP,) * 3)
    verts, faces = verts + lo, faces.astype(np.int64)
    if trimesh.Trimesh(verts, faces, process=False).volume < 0:  # wound inward
        faces = faces[:, ::-1].copy()
    verts = _relax_on_surface(verts, faces, skel)
    _check_surface(verts, faces, skel)
    return verts, faces


def _project_to_surface(points: np.ndarray, skel: Skeleton, iterations: int = 3) -> np.ndarray:
    """Points (N, 3) moved onto the SDF zero level set by Newton steps along the gradient."""
    for _ in range(iterations):
        value, grad = sdf_gradient(points, skel)
        points = points - (value / np.maximum((grad * grad).sum(axis=1), 1e-6))[:, None] * grad
    return points


def _relax_on_surface(verts: np.ndarray, faces: np.ndarray, skel: Skeleton) -> np.ndarray:
    """(V, 3) vertices after tangential Laplacian relaxation, re-projected onto the SDF each round."""
    average = vertex_averaging(verts, faces, include_self=False)
    for _ in range(RELAX_ROUNDS):
        normals = vertex_normals(verts, faces)
        step = average @ verts - verts
        step -= (step * normals).sum(axis=1, keepdims=True) * normals
        verts = _project_to_surface(verts + 0.5 * step, skel)
    return verts


def _check_surface(verts: np.ndarray, faces: np.ndarray, skel: Skeleton) -> None:
    """Raise unless the mesh is one closed, outward, genus-0 manifold with no degenerate face."""
    mesh = trimesh.Trimesh(verts, faces, process=False)
    _, grad = sdf_gradient(verts[faces].mean(axis=1), skel)
    checks = {
        "watertight": mesh.is_watertight,
        "winding consistent": mesh.is_winding_consistent,
        "single genus-0 component": mesh.body_count == 1 and mesh.euler_number == 2,
        "outward": mesh.volume > 0 and bool((np.einsum("ij,ij->i", mesh.face_normals, grad) > 0).all()),
        "no degenerate faces": mesh.area_faces.min() > 1e-9,
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise RuntimeError(f"open hand mesh failed its checks: {', '.join(failed)}")
