"""Shadows of the ground-truth renderer (``hogsa.data.meshrender``): shadow rays towards a directional
light of angular radius ``shadow_softness``, their origins lifted off the surface, and a conservative test
that skips the rays which cannot hit anything.

Conventions: world frame, metres; directions are unit [3] vectors; ``Scene`` and ``Light`` are
meshrender's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import trimesh

if TYPE_CHECKING:
    from hogsa.data.meshrender import Light, Scene

SHADOW_RAY_OFFSET = 1e-4
"""Metres along the geometric normal that shadow-ray origins are lifted by, well above Embree's float32 error."""


def _orthonormal_basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors [3] completing the unit vector ``axis`` [3] to an orthonormal basis."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    first = np.cross(axis, helper)
    first /= np.linalg.norm(first)
    return first, np.cross(axis, first)


def cone_directions(axis: np.ndarray, half_angle: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` unit directions [count, 3], uniform over the cap of ``half_angle`` (rad) around unit ``axis`` [3]."""
    return _cone_directions(axis, half_angle, *rng.random((2, count)))


def _cone_directions(axis: np.ndarray, half_angle: float, u_height: np.ndarray, u_angle: np.ndarray) -> np.ndarray:
    """The directions [N, 3] of :func:`cone_directions` for its uniform draws u_height, u_angle [N] in [0, 1)."""
    cos_theta = 1.0 - u_height * (1.0 - np.cos(half_angle))
    sin_theta = np.sqrt(np.clip(1.0 - cos_theta**2, 0.0, None))
    phi = 2.0 * np.pi * u_angle
    first, second = _orthonormal_basis(axis)
    return (
        (sin_theta * np.cos(phi))[:, None] * first
        + (sin_theta * np.sin(phi))[:, None] * second
        + cos_theta[:, None] * axis
    )


def shadow_ray_origins(
    points: np.ndarray, barycentric: np.ndarray, triangles: np.ndarray, corner_normals: np.ndarray, normals: np.ndarray
) -> np.ndarray:
    """Shadow-ray origins [M, 3]: hit points [M, 3] lifted off their triangles [M, 3, 3].

    First the point is moved onto the smooth surface implied by the corner normals [M, 3, 3] (Hanika 2021,
    "Hacking the shadow terminator": the barycentric mean of its projections onto the corners' tangent
    planes, only where it lies below them), which removes the faceted self-shadowing of coarse meshes near
    the terminator; then by SHADOW_RAY_OFFSET along the geometric normals [M, 3].
    """
    below = np.minimum(0.0, np.einsum("mkc,mkc->mk", points[:, None, :] - triangles, corner_normals))
    lifted = points - np.einsum("mk,mk,mkc->mc", barycentric, below, corner_normals)
    return lifted + SHADOW_RAY_OFFSET * normals


def may_be_blocked(scene: Scene, origins: np.ndarray, slack: np.ndarray, light: Light) -> np.ndarray:
    """Whether [M] a shadow ray from within slack [M] (m) of origins [M, 3] (world) may hit the scene.

    False is certain. Every shadow ray direction d is within s = shadow_softness (+ rounding) of the light
    direction l. A ray from o can reach a layer only if it may enter the layer's bounding box grown by the
    slack and the scene's margin: it cannot if o is beyond the box on a side that every d moves away from
    (o_k > max_k where d_k ≥ l_k − s > 0, or the mirror case), nor if it misses the box's bounding sphere
    (centre c, radius R): with u = c − o, a hit at distance t ≤ R + |u| lies within R + t·s of the line
    o + t·l, whose distance from c, h = |u − (u·l) l|, must then be at most R + (R + |u|)·s.
    """
    spread = light.shadow_softness + 1e-6
    grow = slack + scene.margin  # [M]
    first, second = _orthonormal_basis(light.direction)
    frame = np.stack([first, second, light.direction])  # [3, 3] rows: two axes across the light, then along it
    across_first, across_second, along = np.ascontiguousarray((origins @ frame.T).T)  # [M] each
    columns = np.ascontiguousarray(origins.T)  # [3, M]
    maybe = np.zeros(len(origins), dtype=bool)
    for low, high in zip(scene.layer_min, scene.layer_max, strict=True):
        beyond = np.zeros(len(origins), dtype=bool)
        for k in range(3):
            if light.direction[k] > spread:
                beyond |= columns[k] - grow > high[k]
            elif light.direction[k] < -spread:
                beyond |= columns[k] + grow < low[k]
        if beyond.all():  # e.g. the table when every origin lies above it
            continue
        centre = frame @ (0.5 * (low + high))  # c in the light's frame
        across2 = (centre[0] - across_first) ** 2 + (centre[1] - across_second) ** 2
        radius = 0.5 * np.linalg.norm(high - low) + grow
        reach = radius + (radius + np.sqrt(across2 + (centre[2] - along) ** 2)) * spread
        maybe |= ~beyond & (across2 <= reach * reach)
    return maybe


def light_visibility(
    scene: Scene, origins: np.ndarray, traced: np.ndarray, light: Light, rng: np.random.Generator
) -> np.ndarray:
    """Fraction [M] of the shadow rays towards the light that hit nothing, M counting the shadowed points.

    traced [M] bool: the points whose rays are traced, from origins [T, 3] (one per True); the others' rays
    are known to hit nothing. Each traced ray is the one an all-traced query would cast.
    """
    samples = light.shadow_samples if light.shadow_softness > 0 else 1
    rays = np.flatnonzero(np.repeat(traced, samples))  # [T · samples] indices among all M · samples rays
    if light.shadow_softness > 0:
        u_height, u_angle = rng.random((2, len(traced) * samples))
        directions = _cone_directions(light.direction, light.shadow_softness, u_height[rays], u_angle[rays])
    else:
        directions = np.broadcast_to(light.direction, (len(rays), 3))
    # Shadow rays are float32 queries: origins rounded to float32 before the shift, directions renormalised.
    starts = np.repeat(scene.to_embree(origins.astype(np.float32)), samples, axis=0)
    blocked = np.zeros(len(traced) * samples, dtype=bool)
    directions = trimesh.util.unitize(directions.astype(np.float32)).astype(np.float32)
    blocked[rays] = scene.first_faces(starts, directions) != -1
    return 1.0 - blocked.reshape(len(traced), samples).mean(axis=1)
