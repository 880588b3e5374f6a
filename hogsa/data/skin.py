"""Procedural skin for the embedded dataset: a solid texture on the hand's canonical surface.

The colour of a surface point is a function of where it sits on the right hand's canonical template
(metres, open-hand frame), so it moves with the hand under skinning and the left hand, the mirror of
the right one vertex for vertex, gets the mirrored skin. Details: a subject's base tone, two octaves
of value noise (mottling), palmar flexion creases at the finger joints, three palm lines, dorsal
knuckle wrinkles and fingernails with a pale free edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

DISTAL_BONES = (3, 6, 9, 12, 15)  # index, middle, pinky, ring, thumb distal phalanges
FINGER_BONES = tuple(range(1, 16))


@dataclass(frozen=True)
class SkinTone:
    """A subject's skin appearance."""

    base: tuple[float, float, float]  # RGB in [0,1]
    crease_strength: float  # darkening at a crease centre, 0..1
    mottling: float  # relative amplitude of the colour noise
    noise_seed: int


@dataclass(frozen=True)
class HandRig:
    """Bones of the right hand's canonical template (open-hand frame, metres)."""

    starts: np.ndarray  # [16,3] bone start (the joint)
    ends: np.ndarray  # [16,3] bone end
    pads: np.ndarray  # [16,3] unit palmar direction of each bone (row 0: the palm's)

    @classmethod
    def from_open_hand(cls, data: dict) -> "HandRig":
        """From the right open hand's dict (``bone_segments``, ``flexion_axes``)."""
        starts, ends = data["bone_segments"][:, 0], data["bone_segments"][:, 1]
        directions = _unit(ends - starts)
        pads = np.cross(data["flexion_axes"], directions)  # the flexion axis is direction × pad
        pads[0] = (0.0, -1.0, 0.0)  # the palm faces -y
        return cls(starts, ends, _unit(pads))


def random_tone(rng: np.random.Generator) -> SkinTone:
    """A plausible skin tone: light to dark, warm hue, with per-subject crease strength."""
    darkness = rng.uniform(0.0, 1.0)
    light, dark = np.array([0.93, 0.76, 0.66]), np.array([0.45, 0.30, 0.22])
    base = (1 - darkness) * light + darkness * dark + rng.normal(0, 0.02, 3)
    return SkinTone(tuple(np.clip(base, 0, 1)), float(rng.uniform(0.25, 0.45)),
                    float(rng.uniform(0.04, 0.08)), int(rng.integers(2**31)))


def skin_colors(points: np.ndarray, rig: HandRig, tone: SkinTone) -> np.ndarray:
    """RGB [N,3] in [0,1] of canonical right-hand surface points [N,3] (metres)."""
    base = np.asarray(tone.base)
    noise = 0.7 * value_noise(points / 0.012, tone.noise_seed) + 0.3 * value_noise(points / 0.003, tone.noise_seed + 1)
    color = base[None] * (1 + tone.mottling * (2 * noise[:, None] - 1))
    bones = _finger_bone_coordinates(points, rig)
    shade = 1 - tone.crease_strength * np.clip(_joint_creases(bones) + _palm_lines(points), 0, 1)
    color = color * shade[:, None]
    nail, free_edge = _nails(bones)
    nail_color = 0.55 * base + 0.45 * np.array([0.98, 0.84, 0.84])
    color = color * (1 - nail[:, None]) + nail_color * nail[:, None]
    color = color * (1 - free_edge[:, None]) + np.array([0.97, 0.95, 0.92]) * free_edge[:, None]
    return np.clip(color, 0, 1)


def skin_color_fn(template: np.ndarray, faces: np.ndarray, rig: HandRig, tone: SkinTone
                  ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``color_fn(face_index [N], barycentric [N,3]) -> [N,3]`` for the mesh renderer.

    ``template`` [V,3] is the RIGHT hand's canonical template; ``faces`` [F,3] are the faces of the
    rendered hand (right or left: both share vertex ids, so the left hand gets the mirrored skin).
    """

    def color_fn(face_index: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
        corners = np.take(template, np.take(faces, face_index, axis=0), axis=0)  # [N,3,3]
        return skin_colors(np.einsum("nk,nkd->nd", barycentric, corners), rig, tone)

    return color_fn


LATTICE_PRIMES = np.array([73856093, 19349663, 83492791])  # lattice point (i, j, k) ↦ hash of (i, j, k) · these


def value_noise(points: np.ndarray, seed: int) -> np.ndarray:
    """Smooth 3-D value noise in [0,1] at [N,3] points (lattice spacing 1), trilinear with smoothstep."""
    cell = np.floor(points).astype(np.int64)
    frac = points - cell
    weight = frac * frac * (3 - 2 * frac)
    factors = (1 - weight, weight)  # [N,3] per-axis trilinear weights of the corners at offset 0 and 1
    cell_sum = (cell * LATTICE_PRIMES).sum(axis=1)  # [N] hash sum of corner (0,0,0); int64 wraps, so sums add up
    out = np.zeros(len(points))
    for corner in np.ndindex(2, 2, 2):
        w = factors[corner[0]][:, 0] * factors[corner[1]][:, 1] * factors[corner[2]][:, 2]
        out += w * _lattice_hash(cell_sum + int(np.dot(corner, LATTICE_PRIMES)), seed)
    return out


def _lattice_hash(cell_sum: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random value in [0,1) for each integer lattice point, given as its sum [N] of
    coordinates times LATTICE_PRIMES."""
    h = cell_sum ^ (seed * 2654435761)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFFFF) / float(0x1000000)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _bone_coordinates(points: np.ndarray, rig: HandRig, bone: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axial parameter t (0 at the joint, 1 at the bone end), radial offset [N,3], length (m)."""
    axis = rig.ends[bone] - rig.starts[bone]
    length = np.linalg.norm(axis)
    t = (points - rig.starts[bone]) @ axis / length**2
    radial = points - (rig.starts[bone] + np.clip(t, 0, 1)[:, None] * axis)
    return t, radial, length


class _BoneCoordinates(NamedTuple):
    """The points [N] relative to the finger bones [B] (FINGER_BONES, in order)."""

    t: np.ndarray  # [N, B] axial parameter (0 at the joint, 1 at the bone end)
    dist: np.ndarray  # [N, B] radial distance from the bone, metres
    pad: np.ndarray  # [N, B] radial offset · the bone's pad direction, metres
    length: np.ndarray  # [B] bone lengths, metres


def _finger_bone_coordinates(points: np.ndarray, rig: HandRig) -> _BoneCoordinates:
    """Coordinates of points [N,3] relative to every finger bone."""
    t, dist, pad, length = [], [], [], []
    for bone in FINGER_BONES:
        bone_t, radial, bone_length = _bone_coordinates(points, rig, bone)
        t.append(bone_t)
        squares = radial * radial
        dist.append(np.sqrt((squares[:, 0] + squares[:, 1]) + squares[:, 2]))  # np.linalg.norm(axis=1), summed alike
        pad.append(radial @ rig.pads[bone])
        length.append(bone_length)
    return _BoneCoordinates(np.stack(t, axis=1), np.stack(dist, axis=1), np.stack(pad, axis=1), np.array(length))


def _joint_creases(bones: _BoneCoordinates) -> np.ndarray:
    """Darkening [N] of palmar flexion creases (one per finger joint) and dorsal knuckle wrinkles.

    Each is confined to points within 16 mm of the bone: elsewhere it is exactly 0.
    """
    near = bones.dist < 0.016
    axial = (bones.t * bones.length)[near]  # metres from the joint along the bone
    palmar = (bones.pad / (bones.dist + 1e-9))[near]
    crease = np.zeros(near.shape)
    crease[near] = np.clip(palmar, 0, 1) ** 2 * np.exp(-((axial + 0.001) / 0.0008) ** 2)
    wrinkles = []
    for ring in (-0.002, 0.0, 0.002):  # a few fine wrinkles on the back of each knuckle
        wrinkle = np.zeros(near.shape)
        wrinkle[near] = 0.35 * np.clip(-palmar, 0, 1) ** 2 * np.exp(-((axial - ring) / 0.0004) ** 2)
        wrinkles.append(wrinkle)
    out = np.zeros(len(near))
    for bone in range(near.shape[1]):  # bone by bone, each joint's crease then its wrinkles
        out += crease[:, bone]
        for wrinkle in wrinkles:
            out += wrinkle[:, bone]
    return out


def _palm_lines(points: np.ndarray) -> np.ndarray:
    """Darkening [N] of three palm lines (heart, head, life) on the palmar face (y < 0)."""
    lines = (
        np.array([[-0.075, -0.035], [-0.070, 0.000], [-0.062, 0.025]]),  # heart line, under the fingers
        np.array([[-0.050, 0.030], [-0.052, 0.000], [-0.046, -0.030]]),  # head line, across the palm
        np.array([[-0.060, 0.030], [-0.035, 0.022], [-0.012, 0.010]]),  # life line, around the thumb
    )
    xz = points[:, [0, 2]]
    out = np.zeros(len(points))
    for polyline in lines:
        dist = np.full(len(points), np.inf)
        for a, b in zip(polyline[:-1], polyline[1:]):
            t = np.clip((xz - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
            dist = np.minimum(dist, np.linalg.norm(xz - (a + t[:, None] * (b - a)), axis=1))
        out += np.exp(-(dist / 0.0007) ** 2)
    return out * (points[:, 1] < -0.008)


def _nails(bones: _BoneCoordinates) -> tuple[np.ndarray, np.ndarray]:
    """Nail coverage [N] and free-edge coverage [N], both in [0,1], on each distal phalanx's back."""
    nail = np.zeros(len(bones.t))
    edge = np.zeros(len(bones.t))
    for bone in DISTAL_BONES:
        column = FINGER_BONES.index(bone)
        t, dist = bones.t[:, column], bones.dist[:, column]
        dorsal = -bones.pad[:, column] / (dist + 1e-9)
        covered = _smoothstep(0.35, 0.45, dorsal) * _smoothstep(0.38, 0.45, t) * (dist < 0.015)
        nail = np.maximum(nail, covered)
        edge = np.maximum(edge, covered * _smoothstep(0.93, 0.97, t))
    return nail, edge


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    s = np.clip((x - lo) / (hi - lo), 0, 1)
    return s * s * (3 - 2 * s)
