"""Closed mesh parts with per-face UVs into the texture atlas, and their assembly into an object.

A part is closed and wound counter-clockwise seen from outside (``_outward`` flips it if its signed
volume is negative). Boxes, surfaces of revolution (``lathe``, about the y axis), extruded convex
polygons (``prism``, along z) and elliptical tori (``ring``); ``assemble`` concatenates parts into an
``ArticulatedObject``, the top (articulated) parts first. Metres.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import torch

from hogsa.articulated import ArticulatedObject, max_pairwise_distance
from hogsa.open_objects.atlas import Tile


class Part(NamedTuple):
    """One closed mesh part of an open object, with its UVs in the atlas."""

    vertices: np.ndarray  # [V,3] metres
    faces: np.ndarray  # [F,3]
    face_uvs: np.ndarray  # [F,3,2]


def _outward(vertices: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray) -> Part:
    """Flip the winding of a closed part if its signed volume is negative."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    if np.einsum("ij,ij->", a, np.cross(b, c)) < 0:
        faces, face_uvs = faces[:, ::-1], face_uvs[:, ::-1]
    return Part(vertices, np.ascontiguousarray(faces), np.ascontiguousarray(face_uvs))


# side -> (normal axis, normal sign, s axis, s sign, t axis, t sign), with s x t = normal.
# Vertical sides have t = +y; the +-y sides have s = +z.
BOX_SIDES = {
    "+x": (0, 1, 2, -1, 1, 1),
    "-x": (0, -1, 2, 1, 1, 1),
    "+z": (2, 1, 0, 1, 1, 1),
    "-z": (2, -1, 0, -1, 1, 1),
    "+y": (1, 1, 2, 1, 0, 1),
    "-y": (1, -1, 2, 1, 0, -1),
}


def grid_box(lo: Sequence[float], hi: Sequence[float], spacing: float, tiles: Mapping[str, Tile]) -> Part:
    """Closed axis-aligned box ``lo..hi`` (m) meshed as a grid of ~``spacing`` squares.

    Each side maps onto ``tiles[side]`` (keys ``+x -x +y -y +z -z``) with the
    tile's up direction along ``+y`` for vertical sides and ``+x`` / ``-x`` for
    the top / bottom sides, seen from outside.
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    counts = np.maximum(1, np.ceil((hi - lo) / spacing - 1e-9).astype(int))  # cells per axis
    lattice, faces, uvs = [], [], []
    for side, (k, k_sign, a, a_sign, b, b_sign) in BOX_SIDES.items():
        i, j = np.meshgrid(np.arange(counts[a] + 1), np.arange(counts[b] + 1), indexing="ij")
        nodes = np.zeros(i.shape + (3,), dtype=int)
        nodes[..., k] = counts[k] if k_sign > 0 else 0
        nodes[..., a] = i if a_sign > 0 else counts[a] - i
        nodes[..., b] = j if b_sign > 0 else counts[b] - j
        st = np.stack([i / counts[a], j / counts[b]], axis=-1)
        corners = [(slice(None, -1), slice(None, -1)), (slice(1, None), slice(None, -1)),
                   (slice(1, None), slice(1, None)), (slice(None, -1), slice(1, None))]
        quad_nodes = np.stack([nodes[c].reshape(-1, 3) for c in corners], axis=1)  # [Q,4,3]
        quad_st = np.stack([st[c].reshape(-1, 2) for c in corners], axis=1)  # [Q,4,2]
        for tri in ((0, 1, 2), (0, 2, 3)):
            lattice.append(quad_nodes[:, tri])
            uvs.append(tiles[side].uv(quad_st[:, tri, 0], quad_st[:, tri, 1]))
    lattice_nodes = np.concatenate(lattice).reshape(-1, 3)
    unique_nodes, faces = np.unique(lattice_nodes, axis=0, return_inverse=True)
    vertices = lo + unique_nodes / counts * (hi - lo)
    return _outward(vertices, faces.reshape(-1, 3), np.concatenate(uvs))


def _resample_polyline(points: np.ndarray, max_step: float) -> np.ndarray:  # [N,2] -> [M,2]
    """Insert points so that no segment is longer than ``max_step``."""
    out = [points[:1]]
    for p, q in zip(points[:-1], points[1:]):
        n = max(1, int(math.ceil(np.linalg.norm(q - p) / max_step)))
        out.append(p + (q - p) * np.arange(1, n + 1)[:, None] / n)
    return np.concatenate(out)


def _arc_fraction(points: np.ndarray) -> np.ndarray:  # [N,2] -> [N] in [0,1]
    """Normalised cumulative arc length along a polyline."""
    lengths = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    return lengths / lengths[-1]


def wall_arc(profile: np.ndarray, radius: float, heights: Sequence[float]) -> np.ndarray:
    """Arc-length fractions (the lathe's ``t``) at ``heights`` on the profile's vertical wall of ``radius``."""
    wall = np.isclose(profile[:, 0], radius)
    return np.interp(heights, profile[wall, 1], _arc_fraction(profile)[wall])


def lathe(profile: np.ndarray, tile: Tile, sections: int = 64, max_step: float = 0.01) -> Part:
    """Closed surface of revolution about the y axis.

    ``profile`` [N,2] lists ``(radius, y)`` in metres, starting and ending on the
    axis (radius 0). UVs: ``s`` = angle / 2pi, ``t`` = arc-length fraction along
    the (resampled) profile, so callers can place texture bands with
    ``wall_arc``.
    """
    profile = _resample_polyline(np.asarray(profile, float), max_step)
    if profile[0, 0] != 0 or profile[-1, 0] != 0 or (profile[1:-1, 0] <= 0).any():
        raise ValueError("lathe profile must start and end on the axis with positive radii in between")
    t = _arc_fraction(profile)
    angles = 2 * np.pi * np.arange(sections) / sections
    rings = profile[1:-1]  # [R,2]
    ring_vertices = np.stack(
        [rings[:, None, 0] * np.cos(angles), np.broadcast_to(rings[:, None, 1], (len(rings), sections)),
         -rings[:, None, 0] * np.sin(angles)], axis=-1).reshape(-1, 3)
    poles = np.array([[0.0, profile[0, 1], 0.0], [0.0, profile[-1, 1], 0.0]])
    vertices = np.concatenate([ring_vertices, poles])
    first_pole, last_pole = len(ring_vertices), len(ring_vertices) + 1

    def ring_index(r: int, j: np.ndarray) -> np.ndarray:
        return r * sections + j % sections

    j = np.arange(sections)
    s0, s1, s_mid = j / sections, (j + 1) / sections, (j + 0.5) / sections
    faces, st = [], []
    # bottom cap fan, between-ring quads, top cap fan (profile points i -> i+1)
    faces.append(np.stack([np.full(sections, first_pole), ring_index(0, j + 1), ring_index(0, j)], -1))
    st.append(np.stack([np.stack([s_mid, np.full(sections, t[0])], -1), np.stack([s1, np.full(sections, t[1])], -1),
                        np.stack([s0, np.full(sections, t[1])], -1)], 1))
    for r in range(len(rings) - 1):
        a, b, c, d = ring_index(r, j), ring_index(r, j + 1), ring_index(r + 1, j + 1), ring_index(r + 1, j)
        ta, tb = np.full(sections, t[r + 1]), np.full(sections, t[r + 2])
        sa, sb, sc, sd = (np.stack(p, -1) for p in ((s0, ta), (s1, ta), (s1, tb), (s0, tb)))
        faces += [np.stack([a, b, c], -1), np.stack([a, c, d], -1)]
        st += [np.stack([sa, sb, sc], 1), np.stack([sa, sc, sd], 1)]
    last = len(rings) - 1
    faces.append(np.stack([ring_index(last, j), ring_index(last, j + 1), np.full(sections, last_pole)], -1))
    st.append(np.stack([np.stack([s0, np.full(sections, t[-2])], -1), np.stack([s1, np.full(sections, t[-2])], -1),
                        np.stack([s_mid, np.full(sections, t[-1])], -1)], 1))
    st_all = np.concatenate(st)
    return _outward(vertices, np.concatenate(faces), tile.uv(st_all[..., 0], st_all[..., 1]))


def prism(polygon: np.ndarray, z0: float, z1: float, cap_tile: Tile, side_tile: Tile) -> Part:
    """Closed extrusion of a convex polygon [N,2] (x, y in metres) between ``z0 < z1``.

    Caps are planar-projected onto ``cap_tile``; the side wall is unrolled onto
    ``side_tile`` (s = perimeter fraction, t = height fraction).
    """
    poly = np.asarray(polygon, float)
    edges = np.roll(poly, -1, axis=0) - poly
    next_edges = np.roll(edges, -1, axis=0)
    turns = edges[:, 0] * next_edges[:, 1] - edges[:, 1] * next_edges[:, 0]
    if not ((turns > 0).all() or (turns < 0).all()):
        raise ValueError("prism polygon must be strictly convex")
    if turns[0] < 0:  # make it counter-clockwise
        poly = poly[::-1]
        edges = np.roll(poly, -1, axis=0) - poly
    n = len(poly)
    centre = poly.mean(axis=0)
    vertices = np.concatenate([
        np.column_stack([poly, np.full(n, z0)]), np.column_stack([poly, np.full(n, z1)]),
        [[*centre, z0], [*centre, z1]],
    ])
    i = np.arange(n)
    k = (i + 1) % n
    span = poly.max(axis=0) - poly.min(axis=0)
    cap_st = (np.concatenate([poly, [centre]]) - poly.min(axis=0)) / span  # [N+1,2]
    cap_uv = cap_tile.uv(cap_st[:, 0], cap_st[:, 1])
    perimeter = np.concatenate([[0.0], np.cumsum(np.linalg.norm(edges, axis=1))]) / np.linalg.norm(edges, axis=1).sum()
    s0, s1 = perimeter[i], perimeter[i + 1]
    zeros, ones = np.zeros(n), np.ones(n)
    faces = np.concatenate([
        np.stack([np.full(n, 2 * n), k, i], -1),  # bottom cap
        np.stack([np.full(n, 2 * n + 1), n + i, n + k], -1),  # top cap
        np.stack([i, k, n + k], -1), np.stack([i, n + k, n + i], -1),  # side quads
    ])
    face_uvs = np.concatenate([
        np.stack([np.broadcast_to(cap_uv[n], (n, 2)), cap_uv[k], cap_uv[i]], 1),
        np.stack([np.broadcast_to(cap_uv[n], (n, 2)), cap_uv[i], cap_uv[k]], 1),
        side_tile.uv(np.stack([s0, s1, s1], -1), np.stack([zeros, zeros, ones], -1)),
        side_tile.uv(np.stack([s0, s1, s0], -1), np.stack([zeros, ones, ones], -1)),
    ])
    return _outward(vertices, faces, face_uvs)


def ring(
    centre: Sequence[float],
    radii: tuple[float, float],
    tube: float,
    tile: Tile,
    axes: tuple[int, int] = (0, 1),
    sections: tuple[int, int] = (48, 12),
) -> Part:
    """Closed elliptical torus: centre line ``radii`` (m) in the plane of the two
    coordinate ``axes``, circular tube of radius ``tube``. UVs: s around the
    ring, t around the tube.
    """
    n_major, n_minor = sections
    phi = 2 * np.pi * np.arange(n_major) / n_major
    psi = 2 * np.pi * np.arange(n_minor) / n_minor
    phi_g, psi_g = np.meshgrid(phi, psi, indexing="ij")
    normal_axis = 3 - axes[0] - axes[1]
    vertices = np.zeros((n_major, n_minor, 3)) + np.asarray(centre, float)
    vertices[..., axes[0]] += (radii[0] + tube * np.cos(psi_g)) * np.cos(phi_g)
    vertices[..., axes[1]] += (radii[1] + tube * np.cos(psi_g)) * np.sin(phi_g)
    vertices[..., normal_axis] += tube * np.sin(psi_g)
    i, j = np.meshgrid(np.arange(n_major), np.arange(n_minor), indexing="ij")
    i, j = i.ravel(), j.ravel()

    def index(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a % n_major) * n_minor + b % n_minor

    quad = [index(i, j), index(i + 1, j), index(i + 1, j + 1), index(i, j + 1)]
    quad_st = [(i / n_major, j / n_minor), ((i + 1) / n_major, j / n_minor),
               ((i + 1) / n_major, (j + 1) / n_minor), (i / n_major, (j + 1) / n_minor)]
    faces, face_uvs = [], []
    for tri in ((0, 1, 2), (0, 2, 3)):
        faces.append(np.stack([quad[c] for c in tri], -1))
        face_uvs.append(np.stack([tile.uv(*quad_st[c]) for c in tri], 1))
    return _outward(vertices.reshape(-1, 3), np.concatenate(faces), np.concatenate(face_uvs))


def assemble(name: str, top: Sequence[Part], bottom: Sequence[Part], texture: np.ndarray,
             up_axis: int = 1) -> ArticulatedObject:
    """Concatenate closed parts into one object (top parts first)."""
    parts = list(top) + list(bottom)
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
    vertices = np.concatenate([p.vertices for p in parts])
    top_mask = np.zeros(len(vertices), dtype=bool)
    top_mask[: offsets[len(top)]] = True
    return ArticulatedObject(
        name=name,
        vertices=torch.as_tensor(vertices, dtype=torch.float32),
        faces=torch.as_tensor(np.concatenate([p.faces + o for p, o in zip(parts, offsets)]), dtype=torch.int64),
        top_mask=torch.as_tensor(top_mask),
        face_uvs=torch.as_tensor(np.concatenate([p.face_uvs for p in parts]), dtype=torch.float32),
        texture=torch.as_tensor(texture),
        articulated=len(top) > 0,
        diameter=max_pairwise_distance(vertices),
        up_axis=up_axis,
    )
