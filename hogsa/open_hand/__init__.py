"""The open hand: a procedural, license-free hand model written in MANO's pickle format.

hogsa's default hand when no licensed MANO download is configured. ``open_hand_file(side)`` builds
``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` once and caches it; the file loads through
``smplx.MANO(..., use_pca=False, flat_hand_mean=True, num_betas=10)`` like the official one. It holds
only plain Python containers, strings and numbers, numpy arrays and a scipy.sparse ``J_regressor``,
so hogsa's restricted unpickler accepts it.

Construction (deterministic; metres, right hand; the left one is its mirror image), one module a step:

1. ``skeleton``: each finger and the thumb is a planar chain of three tapered capsules; joints in
   MANO order (0 wrist, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring, 13-15 thumb CMC/MCP/IP), their
   pivots 0.35 digit radii palmward of the capsule axis.
2. ``sdf``: a rounded palm slab and a forearm stub, smoothly united with the digits.
3. ``surface``: marching cubes on a 5 mm grid gives ~2,300 vertices with even edges; tangential
   relaxation keeps them on the surface. One closed, consistently wound, outward genus-0 manifold.
4. ``rig``: skinning weights (a vertex follows its bone, each joint blends parent and child over 1.5
   digit radii; fingertips and the palm away from the knuckles are rigid) and a sparse
   ``J_regressor`` reproducing each designed joint from a ring of nearby vertices.
5. ``shape``: ten shape components (``shape_names``), displacement fields of about 5 % per unit beta.
6. ``landmarks``: fingertip vertices and the palmar contact regions.

Canonical frame: wrist joint at the origin, fingers along -x, palm facing -y (back of the hand +y),
thumb on the +z side. The left hand mirrors the right through x = 0 (same vertex order and tip ids,
faces re-wound); with MANO's axis-angle convention the left pose (rx, ry, rz) equals the right pose
(rx, -ry, -rz).

Pose: the open hand has no pose-corrective blend shapes — ``posedirs`` is zero and posing is pure
linear blend skinning. ``flexion_axes`` (16, 3) holds each joint's flexion axis in the template
frame: a positive rotation about it curls the bone toward the palm (right hand: close to +z for the
fingers, (0.60, -0.64, 0.48) for the thumb). ``poses`` builds the fist and the pinch from them.

Entries beyond MANO's: ``tip_ids`` (5,) fingertip vertices (thumb, index, middle, ring, pinky),
``shape_names`` (10 str), ``bone_segments`` (16, 2, 3) start/end of each joint's bone (joint 0:
wrist to middle MCP), ``flexion_axes`` (16, 3), ``palm_vertex_ids`` and ``fingerpad_vertex_ids``
(palmar surface of the palm and of the distal phalanges: hand-centric contact priors) and
``open_hand_version``.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hogsa.code_identity import code_digest
from hogsa.open_hand.landmarks import contact_regions, tip_ids
from hogsa.open_hand.rig import joint_regressor, skinning_weights
from hogsa.open_hand.shape import SHAPE_NAMES, shapedirs
from hogsa.open_hand.skeleton import NUM_JOINTS, PARENTS, Side, build_skeleton, check_side
from hogsa.open_hand.surface import extract_surface

OPEN_HAND_VERSION = 1  # bump when the geometry or rig changes, so cached files are rebuilt
ROOT_PARENT = 4294967295  # MANO's kintree_table marks the root's parent as uint32(-1)


def _build_right() -> dict[str, Any]:
    """MANO-format dict of the right open hand (about a second)."""
    skel = build_skeleton()
    verts, faces = extract_surface(skel)
    weights = skinning_weights(verts, faces, skel)
    regressor = joint_regressor(verts, skel)
    palm_ids, fingerpad_ids = contact_regions(verts, faces, weights, skel)
    return {
        "v_template": verts,
        "f": faces,
        "J_regressor": regressor,
        "J": regressor @ verts,
        "kintree_table": np.stack([np.where(PARENTS < 0, ROOT_PARENT, PARENTS), np.arange(NUM_JOINTS)]),
        "weights": weights,
        "posedirs": np.zeros((len(verts), 3, 9 * (NUM_JOINTS - 1))),
        "shapedirs": shapedirs(verts, weights, skel),
        "shape_names": list(SHAPE_NAMES),
        "hands_components": np.eye(45),
        "hands_mean": np.zeros(45),
        "hands_coeffs": np.zeros((1, 45)),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "tip_ids": tip_ids(verts, weights, skel),
        "bone_segments": np.stack([skel.joints, skel.bone_ends], axis=1),
        "flexion_axes": skel.flexion_axes,
        "palm_vertex_ids": palm_ids,
        "fingerpad_vertex_ids": fingerpad_ids,
        "open_hand_version": OPEN_HAND_VERSION,
    }


def _mirror(right: dict[str, Any]) -> dict[str, Any]:
    """The left hand: the right one mirrored through x = 0, faces re-wound to stay outward.

    Positions and displacements get x negated; axial vectors (flexion axes) get y and z negated as a
    mirrored rotation does, so the left pose (rx, -ry, -rz) gives the mirror of the right pose (rx, ry, rz).
    """
    flip = np.array([-1.0, 1.0, 1.0])
    left = dict(right)
    left.update(
        v_template=right["v_template"] * flip,
        f=right["f"][:, ::-1].copy(),
        J=right["J"] * flip,
        shapedirs=right["shapedirs"] * flip[None, :, None],
        bone_segments=right["bone_segments"] * flip,
        flexion_axes=right["flexion_axes"] * -flip,
    )
    return left


_BUILT: dict[str, Any] = {}  # the right hand, built once per process


def build_open_hand(side: Side) -> dict[str, Any]:
    """MANO-format dict of the open hand for one side (deterministic, no randomness).

    Keys as in the official MANO pkl — ``v_template`` (V, 3) m, ``f`` (F, 3) int64, ``J_regressor``
    (16, V) csc, ``J`` (16, 3), ``kintree_table`` (2, 16), ``weights`` (V, 16), ``posedirs``
    (V, 3, 135) zero, ``shapedirs`` (V, 3, 10), ``hands_components`` (45, 45) identity,
    ``hands_mean`` (45,) zero, ``hands_coeffs`` (1, 45) zero, ``bs_style``, ``bs_type`` — plus
    ``tip_ids``, ``shape_names``, ``bone_segments``, ``flexion_axes``, ``palm_vertex_ids``,
    ``fingerpad_vertex_ids`` and ``open_hand_version`` (see the package docstring). Each call returns
    fresh copies.
    """
    check_side(side)
    if not _BUILT:
        _BUILT.update(_build_right())
    right = {key: (value.copy() if hasattr(value, "copy") else value) for key, value in _BUILT.items()}
    return right if side == "right" else _mirror(right)


def default_cache_dir() -> Path:
    """``$HOGSA_CACHE/open_hand/v<VERSION>-<code digest>`` (default cache root ``~/.cache/hogsa``).

    The digest of every hogsa source file the build runs (``code_digest`` of this package's import
    closure) keys the cache too, so an edited construction never reuses a file built by older code
    even when the version was not bumped.
    """
    root = Path(os.environ["HOGSA_CACHE"]) if os.environ.get("HOGSA_CACHE") else Path.home() / ".cache" / "hogsa"
    return root / "open_hand" / f"v{OPEN_HAND_VERSION}-{code_digest(__name__)}"


def open_hand_file(side: Side, cache_dir: str | Path | None = None) -> Path:
    """Path to ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` of the open hand, built on first use and cached.

    ``cache_dir`` defaults to ``default_cache_dir()``. The file is written atomically (a temporary
    file in the same folder, then ``os.replace``), so concurrent callers never read a partial file.
    """
    check_side(side)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"MANO_{side.upper()}.pkl"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    data = build_open_hand(side)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=path.name, suffix=".tmp", delete=False) as tmp:
        try:
            pickle.dump(data, tmp, protocol=4)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.chmod(tmp.name, 0o644)  # temporary files are created private; the cache is a normal file
    os.replace(tmp.name, path)
    return path
