"""Articulated objects in the ARCTIC convention, the ARCTIC template reader/writer,
and an open, procedurally generated object set.

Conventions (shared by everything in this module):

* Units are metres and radians. ARCTIC templates on disk are in millimetres; the
  reader and writer convert.
* An object has two parts. The *top* part is articulated; the *bottom* part is the
  object's root. Posing (ARCTIC ``ObjectTensors.forward_7d_batch``)::

      v_top <- Rz(-theta) v_top            # axis-angle [0, 0, -1] * theta
      v     <- R(rot) v + transl           # every vertex

  i.e. the hinge is the canonical z axis through the origin, and the closed /
  rest state is ``theta = 0``.
* ``parts.json`` labels: **0 = top (articulated), 1 = bottom (root)**. This is what
  ARCTIC's code does (``parts_ids = parts + 1`` and ``top_idx = parts_ids == 1``)
  and what its released results use; ARCTIC's documentation states the opposite.
  We follow the code.
* UVs follow the OBJ convention: ``v`` points up, so texture row ``= (1 - v) * H``.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from torch import Tensor

__all__ = [
    "ArticulatedObject",
    "OPEN_OBJECTS",
    "load_arctic_template",
    "open_object",
    "write_arctic_template",
]

_MM_PER_M = 1000.0
_GREY = (128, 128, 128)


# --------------------------------------------------------------------------- #
# The object
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class ArticulatedObject:
    """A textured two-part object whose top part rotates about the canonical z axis.

    Rigid objects have an all-False ``top_mask``; articulation then has no effect.
    """

    name: str
    vertices: Tensor  # [V,3] float32, canonical (closed) state, metres
    faces: Tensor  # [F,3] int64, counter-clockwise seen from outside
    top_mask: Tensor  # [V] bool, True for the articulated (top) part
    face_uvs: Tensor  # [F,3,2] float32 in [0,1], OBJ convention (row = (1-v)*H)
    texture: Tensor  # [H,W,3] uint8
    articulated: bool
    diameter: float  # metres
    up_axis: int = 1  # canonical axis (0 x, 1 y, 2 z) pointing up when the object rests on a table

    def __post_init__(self) -> None:
        v, f = self.vertices, self.faces
        if self.up_axis not in (0, 1, 2):
            raise ValueError(f"{self.name}: up_axis must be 0, 1 or 2, got {self.up_axis!r}")
        if v.ndim != 2 or v.shape[1] != 3 or not v.is_floating_point():
            raise ValueError(f"{self.name}: vertices must be a float [V,3] tensor, got {tuple(v.shape)} {v.dtype}")
        if f.ndim != 2 or f.shape[1] != 3 or f.dtype != torch.int64:
            raise ValueError(f"{self.name}: faces must be an int64 [F,3] tensor, got {tuple(f.shape)} {f.dtype}")
        if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
            raise ValueError(f"{self.name}: faces index outside [0, {v.shape[0]})")
        if self.top_mask.shape != (v.shape[0],) or self.top_mask.dtype != torch.bool:
            raise ValueError(f"{self.name}: top_mask must be a bool [V] tensor with V={v.shape[0]}")
        if self.face_uvs.shape != (f.shape[0], 3, 2):
            raise ValueError(
                f"{self.name}: face_uvs must be [F,3,2] with F={f.shape[0]}, got {tuple(self.face_uvs.shape)}"
            )
        t = self.texture
        if t.ndim != 3 or t.shape[2] != 3 or t.dtype != torch.uint8:
            raise ValueError(f"{self.name}: texture must be a uint8 [H,W,3] tensor, got {tuple(t.shape)} {t.dtype}")

    def __repr__(self) -> str:
        return (
            f"ArticulatedObject(name={self.name!r}, V={self.vertices.shape[0]}, F={self.faces.shape[0]}, "
            f"top={int(self.top_mask.sum())}, texture={tuple(self.texture.shape)}, "
            f"articulated={self.articulated}, diameter={self.diameter:.4f})"
        )

    def to(self, device: torch.device | str) -> ArticulatedObject:
        """A copy with every tensor on ``device``."""
        return replace(
            self, vertices=self.vertices.to(device), faces=self.faces.to(device), top_mask=self.top_mask.to(device),
            face_uvs=self.face_uvs.to(device), texture=self.texture.to(device),
        )

    @property
    def bottom_centroid(self) -> Tensor:
        """Mean of the bottom (root) part's canonical vertices. [3] metres."""
        return self.vertices[~self.top_mask].mean(dim=0)

    def pose(
        self,
        articulation: Tensor,  # [B] radians (ARCTIC's [B,1] is accepted too)
        rot: Tensor,  # [B,3] axis-angle
        transl: Tensor,  # [B,3] metres
        vertices: Tensor | None = None,  # [V,3] canonical vertices to pose instead of the object's own
    ) -> Tensor:  # [B,V,3] metres
        """Articulate the top part by ``theta`` about ``[0,0,-1]``, then apply the
        rigid transform ``v <- R(rot) v + transl`` to every vertex.

        ``vertices`` poses a modified canonical mesh (e.g. one being trained) with this object's
        parts. Differentiable with respect to all inputs; the result has their (promoted) dtype
        and ``rot``'s device.
        """
        if articulation.ndim == 2 and articulation.shape[1] == 1:
            articulation = articulation[:, 0]
        batch = articulation.shape[0]
        if articulation.ndim != 1 or rot.shape != (batch, 3) or transl.shape != (batch, 3):
            raise ValueError(
                f"pose expects articulation [B], rot [B,3], transl [B,3]; got "
                f"{tuple(articulation.shape)}, {tuple(rot.shape)}, {tuple(transl.shape)}"
            )
        dtype = torch.promote_types(torch.promote_types(articulation.dtype, rot.dtype), transl.dtype)
        if vertices is not None:
            if vertices.shape != self.vertices.shape:
                raise ValueError(f"{self.name}: vertices must have shape {tuple(self.vertices.shape)}, got {tuple(vertices.shape)}")
            dtype = torch.promote_types(dtype, vertices.dtype)
        verts = (self.vertices if vertices is None else vertices).to(device=rot.device, dtype=dtype)
        mask = self.top_mask.to(rot.device)[None, :, None]  # [1,V,1]
        opened = torch.einsum("bij,vj->bvi", _hinge_rotation(articulation.to(dtype)), verts)
        local = torch.where(mask, opened, verts[None])  # [B,V,3]
        rotation = _axis_angle_to_matrix(rot.to(dtype))  # [B,3,3]
        return torch.einsum("bij,bvj->bvi", rotation, local) + transl.to(dtype)[:, None, :]

    def sample_texture(
        self,
        face_idx: Tensor,  # [N] int64
        bary: Tensor,  # [N,3] barycentric weights
    ) -> Tensor:  # [N,3] float32 RGB in [0,1]
        """Nearest-texel colour at barycentric points of faces (OBJ UV convention)."""
        uv = torch.einsum("nk,nkc->nc", bary.to(self.face_uvs.dtype), self.face_uvs[face_idx])
        height, width = self.texture.shape[:2]
        col = (uv[:, 0] * width).floor().long().clamp(0, width - 1)
        row = ((1.0 - uv[:, 1]) * height).floor().long().clamp(0, height - 1)
        return self.texture[row, col].float() / 255.0


@dataclass(frozen=True, eq=False)
class ObjectPose:
    """An articulated object's state for B poses: numpy arrays or torch tensors (all alike).

    Iterating yields the fields in ``ArticulatedObject.pose``'s argument order: ``obj.pose(*pose)``.
    """

    articulation: np.ndarray | Tensor  # [B] radians about the canonical hinge
    rot: np.ndarray | Tensor  # [B, 3] axis-angle of the global orientation, radians
    transl: np.ndarray | Tensor  # [B, 3] metres

    def __post_init__(self) -> None:
        batch = self.articulation.shape[0] if self.articulation.ndim == 1 else None
        for name, shape in (("articulation", (batch,)), ("rot", (batch, 3)), ("transl", (batch, 3))):
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"ObjectPose: field {name!r} has shape {tuple(getattr(self, name).shape)}, "
                                 f"expected ({', '.join(str(d or 'B') for d in shape)}{',' if len(shape) == 1 else ''})")

    def __len__(self) -> int:
        return self.articulation.shape[0]

    def __iter__(self):
        return iter((self.articulation, self.rot, self.transl))

    def take(self, index) -> ObjectPose:
        """The poses at ``index`` (a slice, an int array or a bool mask; an int keeps the batch axis)."""
        index = [index] if isinstance(index, (int, np.integer)) else index
        return ObjectPose(*(field[index] for field in self))

    def torch(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> ObjectPose:
        """The same poses as tensors (a copy from numpy; a cast otherwise)."""
        return ObjectPose(*(torch.as_tensor(field, dtype=dtype, device=device) for field in self))

    def numpy(self) -> ObjectPose:
        """The same poses as float64 numpy arrays (detached from any graph)."""
        return ObjectPose(*(np.asarray(f.detach().cpu().double().numpy() if isinstance(f, Tensor) else f,
                                       dtype=np.float64) for f in self))

    @staticmethod
    def concatenate(poses: list[ObjectPose]) -> ObjectPose:
        """One pose batch of every pose in ``poses``, in order (numpy)."""
        return ObjectPose(*(np.concatenate([np.asarray(field) for field in fields]) for fields in zip(*poses)))


def upright_rotation(obj: ArticulatedObject) -> np.ndarray:
    """[3,3] rotation taking ``obj``'s canonical up axis to +z (a world with z up), float64."""
    rotations = {0: [[0, 0, -1], [0, 1, 0], [1, 0, 0]], 1: [[1, 0, 0], [0, 0, -1], [0, 1, 0]], 2: np.eye(3)}
    return np.asarray(rotations[obj.up_axis], dtype=np.float64)


def _hinge_rotation(theta: Tensor) -> Tensor:  # [B] rad -> [B,3,3]
    """Rotation by axis-angle ``[0,0,-1] * theta``, i.e. ``Rz(-theta)``."""
    c, s = torch.cos(theta), torch.sin(theta)
    zero, one = torch.zeros_like(theta), torch.ones_like(theta)
    rows = (torch.stack([c, s, zero], -1), torch.stack([-s, c, zero], -1), torch.stack([zero, zero, one], -1))
    return torch.stack(rows, dim=-2)


def _axis_angle_to_matrix(aa: Tensor) -> Tensor:  # [B,3] -> [B,3,3]
    """Rodrigues' formula, with Taylor expansions near zero so gradients stay finite."""
    theta2 = (aa * aa).sum(-1)[:, None, None]  # [B,1,1]
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(theta2_safe)
    sin_term = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    cos_term = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack(
        [torch.stack([zero, -z, y], -1), torch.stack([z, zero, -x], -1), torch.stack([-y, x, zero], -1)], dim=-2
    )
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(skew)
    return eye + sin_term * skew + cos_term * (skew @ skew)


def _max_pairwise_distance(vertices: np.ndarray) -> float:  # [V,3] -> scalar
    """Object diameter: the largest distance between two vertices (via the convex hull)."""
    points = np.asarray(vertices, dtype=np.float64)
    if len(points) > 64:
        try:
            points = points[ConvexHull(points).vertices]
        except Exception:  # degenerate (flat) point sets: fall back to all points
            pass
    return float(pdist(points).max()) if len(points) > 1 else 0.0


# --------------------------------------------------------------------------- #
# ARCTIC template I/O
# --------------------------------------------------------------------------- #
class _ObjData(NamedTuple):
    vertices: np.ndarray  # [V,3] as written in the file
    uvs: np.ndarray  # [T,2]
    faces: np.ndarray  # [F,3] 0-based vertex indices
    face_uv_idx: np.ndarray | None  # [F,3] 0-based vt indices, None without vt
    mtllib: str | None


def _resolve_index(token: str, count: int, path: Path, lineno: int) -> int:
    """OBJ index (1-based, or negative = relative to the end) -> 0-based."""
    index = int(token)
    resolved = index - 1 if index > 0 else count + index
    if index == 0 or not 0 <= resolved < count:
        raise ValueError(f"{path}:{lineno}: face index {index} is outside the {count} elements defined so far")
    return resolved


def _parse_obj(path: Path) -> _ObjData:
    """Read ``v``, ``vt``, ``f`` and ``mtllib`` lines, keeping the file's vertex order.

    Faces may be ``f a b c``, ``f a/b ...``, ``f a//n ...`` or ``f a/b/n ...``;
    polygons are fan-triangulated.
    """
    vertices: list[list[float]] = []
    uvs: list[list[float]] = []
    faces: list[tuple[int, int, int]] = []
    face_uvs: list[tuple[int, int, int]] = []
    faces_without_uv = 0
    mtllib = None
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        if key == "v":
            vertices.append([float(x) for x in parts[1:4]])
        elif key == "vt":
            uvs.append([float(x) for x in parts[1:3]])
        elif key == "mtllib" and mtllib is None:
            mtllib = line.split(None, 1)[1].strip()
        elif key == "f":
            if len(parts) < 4:
                raise ValueError(f"{path}:{lineno}: face needs at least 3 vertices: {line!r}")
            corners = [p.split("/") for p in parts[1:]]
            v_idx = [_resolve_index(c[0], len(vertices), path, lineno) for c in corners]
            has_uv = [len(c) > 1 and c[1] != "" for c in corners]
            if all(has_uv):
                t_idx = [_resolve_index(c[1], len(uvs), path, lineno) for c in corners]
            elif any(has_uv):
                raise ValueError(f"{path}:{lineno}: face mixes corners with and without vt: {line!r}")
            else:
                faces_without_uv += 1
            for k in range(1, len(v_idx) - 1):  # fan triangulation
                faces.append((v_idx[0], v_idx[k], v_idx[k + 1]))
                if all(has_uv):
                    face_uvs.append((t_idx[0], t_idx[k], t_idx[k + 1]))
    if not vertices or not faces:
        raise ValueError(f"{path}: expected 'v' and 'f' lines, found {len(vertices)} vertices and {len(faces)} faces")
    if face_uvs and faces_without_uv:
        raise ValueError(f"{path}: {faces_without_uv} faces have no vt index while others do; expected all or none")
    vertex_array = np.asarray(vertices, dtype=np.float64)
    if vertex_array.shape[1] != 3:
        raise ValueError(f"{path}: every 'v' line needs x y z")
    return _ObjData(
        vertices=vertex_array,
        uvs=np.asarray(uvs, dtype=np.float64).reshape(-1, 2),
        faces=np.asarray(faces, dtype=np.int64),
        face_uv_idx=np.asarray(face_uvs, dtype=np.int64) if face_uvs else None,
        mtllib=mtllib,
    )


def _read_mtl_texture(mtl_path: Path) -> np.ndarray:  # -> [H,W,3] uint8
    """The first ``map_Kd`` image of an MTL file, or a flat grey 1x1 texture."""
    grey = np.array([[_GREY]], dtype=np.uint8)
    if not mtl_path.is_file():
        warnings.warn(f"{mtl_path}: material file not found; using a flat grey texture", stacklevel=2)
        return grey
    for line in mtl_path.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "map_Kd" and len(parts) > 1:
            image_path = mtl_path.parent / parts[-1]  # options such as -s come before the file
            if not image_path.is_file():
                warnings.warn(f"{mtl_path}: map_Kd image {image_path} not found; using a flat grey texture", stacklevel=2)
                return grey
            with Image.open(image_path) as image:
                return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    return grey


def _read_json(path: Path) -> object:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: required ARCTIC template file is missing")
    with path.open() as f:
        return json.load(f)


def _meta_diameter(object_dir: Path, name: str) -> float | None:
    """Diameter (m) from ``meta/object_meta.json`` two levels up, if it lists the object."""
    meta_path = object_dir.parent.parent / "object_meta.json"
    if not meta_path.is_file():
        return None
    meta = _read_json(meta_path)
    base_name = "".join(ch for ch in name if not ch.isdigit())  # ARCTIC strips digits
    for key in (name, base_name):
        if isinstance(meta, dict) and isinstance(meta.get(key), dict) and "diameter" in meta[key]:
            return float(meta[key]["diameter"])
    return None


def load_arctic_template(object_dir: Path) -> ArticulatedObject:
    """Load an ARCTIC object template folder (``meta/object_vtemplates/<obj>/``).

    Reads ``mesh.obj`` (millimetres; vertex order kept exactly as its ``v`` lines,
    since ``parts.json`` indexes them), its MTL ``map_Kd`` texture (flat grey 1x1
    if absent), ``parts.json`` (per-vertex label, **0 = top/articulated,
    1 = bottom/root**, as in ARCTIC's code) and, if present, ``object_params.json``
    (``name``, ``articulated`` and ``diameter`` keys are used when there). The
    diameter comes from ``meta/object_meta.json``, else ``object_params.json``,
    else the largest vertex-to-vertex distance. ``top.obj`` / ``bottom.obj`` are
    not needed. Everything returned is in metres.
    """
    object_dir = Path(object_dir)
    mesh_path, parts_path, params_path = (object_dir / n for n in ("mesh.obj", "parts.json", "object_params.json"))
    if not mesh_path.is_file():
        raise FileNotFoundError(f"{mesh_path}: required ARCTIC template file is missing")
    obj = _parse_obj(mesh_path)
    if not np.isfinite(obj.vertices).all():
        bad = int((~np.isfinite(obj.vertices)).any(axis=1).sum())
        raise ValueError(f"{mesh_path}: field 'v' has {bad} vertices with NaN/inf coordinates; expected finite values")

    labels = np.asarray(_read_json(parts_path))
    if labels.ndim != 1 or len(labels) != len(obj.vertices):
        raise ValueError(
            f"{parts_path}: expected a list with one part label per mesh.obj vertex "
            f"({len(obj.vertices)}), got shape {labels.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        unexpected = sorted(set(labels.tolist()) - {0, 1})
        raise ValueError(f"{parts_path}: part labels must be 0 (top) or 1 (bottom), found {unexpected}")
    top_mask = labels == 0

    params = _read_json(params_path) if params_path.is_file() else {}
    if not isinstance(params, dict):
        raise ValueError(f"{params_path}: expected a JSON object")
    name = str(params.get("name", object_dir.name))
    vertices = obj.vertices / _MM_PER_M

    if obj.face_uv_idx is None:
        face_uvs = np.full((len(obj.faces), 3, 2), 0.5)
        texture = np.array([[_GREY]], dtype=np.uint8)
    else:
        face_uvs = obj.uvs[obj.face_uv_idx]
        texture = _read_mtl_texture(mesh_path.parent / obj.mtllib) if obj.mtllib else np.array([[_GREY]], np.uint8)

    diameter = _meta_diameter(object_dir, name)
    if diameter is None:
        diameter = float(params["diameter"]) if "diameter" in params else _max_pairwise_distance(vertices)
    return ArticulatedObject(
        name=name,
        vertices=torch.as_tensor(vertices, dtype=torch.float32),
        faces=torch.as_tensor(obj.faces, dtype=torch.int64),
        top_mask=torch.as_tensor(top_mask),
        face_uvs=torch.as_tensor(face_uvs, dtype=torch.float32),
        texture=torch.as_tensor(texture),
        articulated=bool(params.get("articulated", top_mask.any())),
        diameter=diameter,
        up_axis=int(params.get("up_axis", 1)),
    )


def _obj_text(
    vertices_mm: np.ndarray,  # [V,3]
    faces: np.ndarray,  # [F,3] 0-based
    uvs: np.ndarray | None = None,  # [T,2]
    face_uv_idx: np.ndarray | None = None,  # [F,3] 0-based
    mtllib: str | None = None,
) -> str:
    lines = [f"mtllib {mtllib}", "usemtl material_0"] if mtllib else []
    lines += [f"v {x:.10g} {y:.10g} {z:.10g}" for x, y, z in vertices_mm]
    if uvs is None:
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    else:
        lines += [f"vt {u:.10g} {v:.10g}" for u, v in uvs]
        lines += [
            f"f {a + 1}/{ta + 1} {b + 1}/{tb + 1} {c + 1}/{tc + 1}"
            for (a, b, c), (ta, tb, tc) in zip(faces, face_uv_idx)
        ]
    return "\n".join(lines) + "\n"


def _submesh(vertices: np.ndarray, faces: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``keep`` [V] bool and the faces lying entirely on them, re-indexed."""
    face_keep = keep[faces].all(axis=1)
    new_index = np.cumsum(keep) - 1
    return vertices[keep], new_index[faces[face_keep]]


def write_arctic_template(obj: ArticulatedObject, object_dir: Path) -> Path:
    """Write ``obj`` as an ARCTIC template folder (millimetres) and return its path.

    Writes ``mesh.obj`` (+ ``mesh.mtl`` and ``texture.png``), ``top.obj``,
    ``bottom.obj``, ``parts.json`` (0 = top, 1 = bottom) and ``object_params.json``
    (``name``, ``articulated``, ``diameter`` in metres). The folder is written to a
    temporary sibling and renamed into place, replacing any existing folder; temporary siblings left
    by a writer that was killed are removed first.
    """
    object_dir = Path(object_dir)
    object_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in object_dir.parent.glob(f".{object_dir.name}.*"):
        shutil.rmtree(stale, ignore_errors=True)
    vertices_mm = obj.vertices.detach().cpu().double().numpy() * _MM_PER_M
    faces = obj.faces.cpu().numpy()
    top = obj.top_mask.cpu().numpy()
    uvs, uv_idx = np.unique(obj.face_uvs.detach().cpu().double().numpy().reshape(-1, 2), axis=0, return_inverse=True)

    staging = Path(tempfile.mkdtemp(prefix=f".{object_dir.name}.", dir=object_dir.parent))
    try:
        (staging / "mesh.obj").write_text(_obj_text(vertices_mm, faces, uvs, uv_idx.reshape(-1, 3), "mesh.mtl"))
        (staging / "mesh.mtl").write_text(
            "newmtl material_0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\nmap_Kd texture.png\n"
        )
        Image.fromarray(obj.texture.cpu().numpy()).save(staging / "texture.png")
        for part_name, keep in (("top", top), ("bottom", ~top)):
            (staging / f"{part_name}.obj").write_text(_obj_text(*_submesh(vertices_mm, faces, keep)))
        (staging / "parts.json").write_text(json.dumps(np.where(top, 0, 1).tolist()))
        params = {"name": obj.name, "articulated": obj.articulated, "diameter": obj.diameter, "up_axis": obj.up_axis}
        (staging / "object_params.json").write_text(json.dumps(params, indent=2))
        _replace_dir(staging, object_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return object_dir


def _replace_dir(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; an existing ``target`` is restored if that fails."""
    if not target.exists():
        new.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    target.rename(retired / target.name)
    try:
        new.rename(target)
    except BaseException:
        (retired / target.name).rename(target)
        retired.rmdir()
        raise
    shutil.rmtree(retired)


# --------------------------------------------------------------------------- #
# Procedural geometry: closed parts with per-face UVs into a texture atlas
# --------------------------------------------------------------------------- #
_TILE_PX = 256  # tile size in pixels
_ATLAS = 2 * _TILE_PX  # texture size in pixels: a 2x2 grid of tiles


@dataclass(frozen=True)
class _Tile:
    """A pixel rectangle ``[x0,x1) x [y0,y1)`` of the texture atlas."""

    x0: int
    y0: int
    x1: int
    y1: int

    def uv(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:  # [...], [...] in [0,1] -> [...,2]
        """Map tile coordinates (s right, t up) to atlas UVs at texel centres."""
        col = self.x0 + 0.5 + s * (self.x1 - self.x0 - 1)
        row = self.y0 + 0.5 + (1.0 - t) * (self.y1 - self.y0 - 1)
        return np.stack([col / _ATLAS, 1.0 - row / _ATLAS], axis=-1)


_TILES = tuple(_Tile(x, y, x + _TILE_PX, y + _TILE_PX) for y in (0, _TILE_PX) for x in (0, _TILE_PX))


class _Part(NamedTuple):
    vertices: np.ndarray  # [V,3] metres
    faces: np.ndarray  # [F,3]
    face_uvs: np.ndarray  # [F,3,2]


def _outward(vertices: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray) -> _Part:
    """Flip the winding of a closed part if its signed volume is negative."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    if np.einsum("ij,ij->", a, np.cross(b, c)) < 0:
        faces, face_uvs = faces[:, ::-1], face_uvs[:, ::-1]
    return _Part(vertices, np.ascontiguousarray(faces), np.ascontiguousarray(face_uvs))


# side -> (normal axis, normal sign, s axis, s sign, t axis, t sign), with s x t = normal.
# Vertical sides have t = +y; the +-y sides have s = +z.
_BOX_SIDES = {
    "+x": (0, 1, 2, -1, 1, 1),
    "-x": (0, -1, 2, 1, 1, 1),
    "+z": (2, 1, 0, 1, 1, 1),
    "-z": (2, -1, 0, -1, 1, 1),
    "+y": (1, 1, 2, 1, 0, 1),
    "-y": (1, -1, 2, 1, 0, -1),
}


def _grid_box(lo: Sequence[float], hi: Sequence[float], spacing: float, tiles: Mapping[str, _Tile]) -> _Part:
    """Closed axis-aligned box ``lo..hi`` (m) meshed as a grid of ~``spacing`` squares.

    Each side maps onto ``tiles[side]`` (keys ``+x -x +y -y +z -z``) with the
    tile's up direction along ``+y`` for vertical sides and ``+x`` / ``-x`` for
    the top / bottom sides, seen from outside.
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    counts = np.maximum(1, np.ceil((hi - lo) / spacing - 1e-9).astype(int))  # cells per axis
    lattice, faces, uvs = [], [], []
    for side, (k, k_sign, a, a_sign, b, b_sign) in _BOX_SIDES.items():
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


def _wall_arc(profile: np.ndarray, radius: float, heights: Sequence[float]) -> np.ndarray:
    """Arc-length fractions (the lathe's ``t``) at ``heights`` on the profile's vertical wall of ``radius``."""
    wall = np.isclose(profile[:, 0], radius)
    return np.interp(heights, profile[wall, 1], _arc_fraction(profile)[wall])


def _lathe(profile: np.ndarray, tile: _Tile, sections: int = 64, max_step: float = 0.01) -> _Part:
    """Closed surface of revolution about the y axis.

    ``profile`` [N,2] lists ``(radius, y)`` in metres, starting and ending on the
    axis (radius 0). UVs: ``s`` = angle / 2pi, ``t`` = arc-length fraction along
    the (resampled) profile, so callers can place texture bands with
    ``_arc_fraction``.
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


def _prism(polygon: np.ndarray, z0: float, z1: float, cap_tile: _Tile, side_tile: _Tile) -> _Part:
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


def _ring(
    centre: Sequence[float],
    radii: tuple[float, float],
    tube: float,
    tile: _Tile,
    axes: tuple[int, int] = (0, 1),
    sections: tuple[int, int] = (48, 12),
) -> _Part:
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


def _assemble(name: str, top: Sequence[_Part], bottom: Sequence[_Part], texture: np.ndarray,
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
        diameter=_max_pairwise_distance(vertices),
        up_axis=up_axis,
    )


# --------------------------------------------------------------------------- #
# Procedural textures (float RGB in [0,1], row 0 = top of a tile, i.e. t = 1)
# --------------------------------------------------------------------------- #

def _noise(rng: np.random.Generator, sigma: float | tuple[float, float], size: int = _TILE_PX) -> np.ndarray:
    """Smooth zero-mean noise with unit standard deviation. [size,size]"""
    field = gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return field / field.std()


def _flat(colour: Sequence[float], size: int = _TILE_PX) -> np.ndarray:  # -> [size,size,3]
    return np.broadcast_to(np.asarray(colour, float), (size, size, 3)).copy()


def _shade(img: np.ndarray, field: np.ndarray, amount: float) -> np.ndarray:
    """Modulate brightness by ``1 + amount * field``."""
    return img * (1.0 + amount * field)[..., None]


def _text_block(img: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int], colour: Sequence[float],
                line_height: int, gap: int = 3) -> None:
    """Draw lines of 'words' (filled rectangles) inside ``box = (y0, y1, x0, x1)``."""
    y0, y1, x0, x1 = box
    for top in range(y0, y1 - line_height + 1, line_height + gap):
        x = x0
        end = x1 - int(rng.integers(0, max(1, (x1 - x0) // 3)))
        while x < end:
            width = int(rng.integers(line_height, 4 * line_height + 1))
            img[top : top + line_height, x : min(x + width, end)] = colour
            x += width + max(2, line_height // 2)


def _tile_row(t: float) -> int:
    """Row of a tile image at tile coordinate ``t`` (1 = top row)."""
    return int(round((1.0 - t) * (_TILE_PX - 1)))


def _disc(img: np.ndarray, cy: float, cx: float, radius: float, colour: Sequence[float]) -> None:
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    img[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = colour


def _barcode(img: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int]) -> None:
    y0, y1, x0, x1 = box
    x = x0
    while x < x1:
        width = int(rng.integers(1, 4))
        img[y0:y1, x : min(x + width, x1)] = (0.05, 0.05, 0.05)
        x += width + int(rng.integers(1, 4))


def _atlas(tiles: Sequence[np.ndarray]) -> np.ndarray:  # up to 4 [256,256,3] floats -> [512,512,3] uint8
    """Place tile images in ``_TILES`` order; unused tiles stay mid-grey."""
    texture = np.full((_ATLAS, _ATLAS, 3), 0.5)
    for tile, img in zip(_TILES, tiles):
        texture[tile.y0 : tile.y1, tile.x0 : tile.x1] = img
    return (np.clip(texture, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def _cardboard(rng: np.random.Generator, tone: float = 1.0) -> np.ndarray:
    img = _flat((0.72 * tone, 0.55 * tone, 0.35 * tone))
    img = _shade(img, _noise(rng, (0.6, 8.0)), 0.05)
    return _shade(img, np.sin(np.arange(_TILE_PX) * 2 * np.pi / 9.0)[None, :].repeat(_TILE_PX, 0), 0.02)


# --------------------------------------------------------------------------- #
# The open object set. Canonical frames: hinge = z axis through the origin,
# closed at theta = 0, a positive theta opens. Up is +y (box, laptop, book,
# bottle, mug) or +z for the scissors, which lie flat with their pivot on z.
# --------------------------------------------------------------------------- #
def _box() -> ArticulatedObject:
    """Cardboard box (22 x 9 x 15 cm) with a hinged lid along its back top edge (x = 0)."""
    rng = np.random.default_rng(1)
    side = _cardboard(rng)
    side[200:226] = (0.62, 0.12, 0.10)  # printed red band
    _text_block(side, rng, (30, 80, 24, 150), (0.12, 0.08, 0.05), 12)
    for cx in (190, 222):  # 'this way up' arrows
        for k in range(22):
            side[110 + k, cx - k // 2 : cx + k // 2 + 1] = (0.12, 0.08, 0.05)
        side[132:160, cx - 4 : cx + 5] = (0.12, 0.08, 0.05)
    lid = _cardboard(rng)
    lid[:, 108:148] = lid[:, 108:148] * 0.85 + 0.12  # packing tape
    lid[40:150, 30:200] = (0.96, 0.96, 0.93)  # shipping label
    _text_block(lid, rng, (50, 110, 40, 190), (0.1, 0.1, 0.1), 7, gap=5)
    _barcode(lid, rng, (118, 142, 44, 150))
    lid[170:200, 180:236] = (0.15, 0.35, 0.70)
    plain_tile, side_tile, lid_tile = _TILES[:3]
    depth, height, width, lid_t, lip = 0.22, 0.09, 0.15, 0.012, 0.003
    base = _grid_box((-depth, -height, -width / 2), (0.0, 0.0, width / 2), 0.015,
                     {"+x": side_tile, "-x": side_tile, "+z": side_tile, "-z": side_tile,
                      "+y": plain_tile, "-y": plain_tile})
    top = _grid_box((-depth - lip, 0.0, -width / 2 - lip), (0.0, lid_t, width / 2 + lip), 0.015,
                    {"+x": plain_tile, "-x": plain_tile, "+z": plain_tile, "-z": plain_tile,
                     "+y": lid_tile, "-y": plain_tile})
    return _assemble("box", [top], [base], _atlas([_cardboard(rng, 0.85), side, lid]))


def _laptop() -> ArticulatedObject:
    """Laptop (26 x 18 cm): base with keyboard, screen lid hinged along the back edge (x = 0)."""
    rng = np.random.default_rng(2)
    shell = _shade(_flat((0.74, 0.75, 0.78)), _noise(rng, (0.5, 12.0)), 0.03)
    deck = shell.copy()  # base top: up = +x (hinge), right = +z
    deck[14:150, 14:242] = (0.16, 0.16, 0.18)
    key_w, key_h = 228 / 14, 136 / 6
    for row in range(6):
        col = 0
        for span in [1] * 14 if row < 5 else [1, 1, 1, 1, 6, 1, 1, 1, 1]:  # bottom row: space bar
            y, x, x_end = int(14 + row * key_h + 2), int(14 + col * key_w + 2), int(14 + (col + span) * key_w - 2)
            deck[y : int(y + key_h - 4), x:x_end] = (0.05, 0.05, 0.06)
            deck[y : y + 2, x:x_end] = (0.30, 0.30, 0.33)
            col += span
    deck[175:245, 78:178] = (0.64, 0.65, 0.69)  # touchpad
    screen = _flat((0.03, 0.03, 0.04))  # lid inside: up = far edge, right = +z
    rows = np.linspace(0.0, 1.0, 220)[:, None, None]
    screen[12:232, 12:244] = (1 - rows) * np.array([0.10, 0.35, 0.75]) + rows * np.array([0.55, 0.20, 0.60])
    screen[215:232, 12:244] = (0.12, 0.12, 0.15)  # task bar
    for y, x, h, w, c in ((40, 40, 110, 120, (0.95, 0.95, 0.95)), (80, 120, 100, 100, (0.98, 0.94, 0.80))):
        screen[y : y + h, x : x + w] = c
        screen[y : y + 10, x : x + w] = (0.2, 0.45, 0.85)
        _text_block(screen, rng, (y + 16, y + h - 6, x + 6, x + w - 6), (0.3, 0.3, 0.3), 4)
    back = _shade(_flat((0.32, 0.33, 0.36)), _noise(rng, (0.5, 12.0)), 0.03)
    _disc(back, 128, 128, 22, (0.80, 0.82, 0.86))
    shell_tile, deck_tile, screen_tile, back_tile = _TILES
    depth, width, base_t, lid_t = 0.18, 0.26, 0.016, 0.006
    sides = {"+x": shell_tile, "-x": shell_tile, "+z": shell_tile, "-z": shell_tile}
    base = _grid_box((-depth, -base_t, -width / 2), (0.0, 0.0, width / 2), 0.01,
                     {**sides, "+y": deck_tile, "-y": shell_tile})
    lid = _grid_box((-depth, 0.0, -width / 2), (0.0, lid_t, width / 2), 0.01,
                    {**sides, "+y": back_tile, "-y": screen_tile})
    return _assemble("laptop", [lid], [base], _atlas([shell, deck, screen, back]))


def _book() -> ArticulatedObject:
    """Hard-cover book (16 x 23 x 3 cm) lying flat; the front cover is hinged at the spine (x = 0)."""
    rng = np.random.default_rng(3)
    red = (0.55, 0.07, 0.10)
    gold = (0.85, 0.68, 0.25)
    leather = _shade(_flat(red), _noise(rng, 2.0), 0.06)
    cover = leather.copy()  # drawn upright (spine on the left), then turned to tile axes
    cover[10:14, 16:246] = cover[242:246, 16:246] = gold
    cover[10:246, 16:20] = cover[10:246, 242:246] = gold
    _text_block(cover, rng, (40, 90, 44, 220), gold, 18, gap=8)
    _disc(cover, 160, 130, 28, gold)
    _disc(cover, 160, 130, 20, red)
    _text_block(cover, rng, (205, 225, 70, 190), gold, 8)
    cover = np.rot90(cover, k=-1)  # tile: up = +x (spine), right = +z
    spine = _shade(_flat((0.08, 0.14, 0.38)), _noise(rng, 2.0), 0.06)  # long axis along s
    for x in (20, 28, 228, 236):
        spine[:, x : x + 3] = gold
    _text_block(spine, rng, (100, 156, 60, 200), gold, 16, gap=8)
    pages = _flat((0.95, 0.92, 0.82))
    pages[::3] *= 0.88
    pages = _shade(pages, _noise(rng, (0.3, 20.0)), 0.03)
    cover_tile, plain_tile, spine_tile, pages_tile = _TILES
    depth, width, pages_t, cover_t = 0.16, 0.23, 0.025, 0.003
    z_lo, z_hi = -width / 2 - 0.003, width / 2 + 0.003
    plain = {side: plain_tile for side in _BOX_SIDES}
    front = _grid_box((-depth, 0.0, z_lo), (0.0, cover_t, z_hi), 0.01, {**plain, "+y": cover_tile})
    back = _grid_box((-depth, -pages_t - cover_t, z_lo), (0.0, -pages_t, z_hi), 0.01, plain)
    block = _grid_box((-depth + 0.004, -pages_t, -width / 2), (-0.001, 0.0, width / 2), 0.01,
                      {side: pages_tile for side in _BOX_SIDES})
    spine_part = _grid_box((0.0, -pages_t - cover_t, z_lo), (cover_t, cover_t, z_hi), 0.01,
                           {**plain, "+x": spine_tile})
    return _assemble("book", [front], [back, block, spine_part], _atlas([cover, leather, spine, pages]))


def _scissors() -> ArticulatedObject:
    """Scissors (20 cm) lying flat (up = +z), pivot on the z axis; blades point along +x.

    The bottom part is the lower blade with its handle on the -y side and the
    pivot screw; the top part is the mirrored upper blade.
    """
    rng = np.random.default_rng(4)
    steel = _shade(_flat((0.70, 0.72, 0.76)), _noise(rng, (0.4, 30.0)), 0.10)
    steel *= np.linspace(1.12, 0.82, _TILE_PX)[:, None, None]
    handle = _shade(_flat((0.95, 0.42, 0.06)), _noise(rng, 3.0), 0.05)
    handle[::32] = handle[1::32] = (0.70, 0.25, 0.03)
    steel_tile, handle_tile = _TILES[0], _TILES[1]
    thickness = 0.0025
    blade = np.array([(-0.012, -0.0075), (0.0, -0.0095), (0.04, -0.0085), (0.085, -0.0045), (0.112, 0.0),
                      (0.108, 0.0012), (0.03, 0.0055), (-0.012, 0.0075)])
    shank = np.array([(-0.046, -0.027), (-0.010, -0.009), (-0.006, 0.0), (-0.044, -0.011)])

    def half(mirror: bool, z0: float, z1: float) -> list[_Part]:
        """Blade + shank + handle ring with the handle on -y, or on +y if ``mirror``."""
        flip = np.array([1.0, -1.0 if mirror else 1.0])
        return [
            _prism(blade * flip, z0, z1, steel_tile, steel_tile),
            _prism(shank * flip, z0, z1, steel_tile, steel_tile),
            _ring((-0.064, -0.021 * flip[1], (z0 + z1) / 2), (0.021, 0.013), 0.0035, handle_tile),
        ]

    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    screw = _prism(0.0042 * np.column_stack([np.cos(angles), np.sin(angles)]), -thickness - 0.001,
                   thickness + 0.001, steel_tile, steel_tile)
    return _assemble("scissors", half(True, 0.0, thickness), half(False, -thickness, 0.0) + [screw],
                     _atlas([steel, handle]), up_axis=2)  # lies flat: its hinge (z) points up


def _bottle() -> ArticulatedObject:
    """Rigid plastic bottle (23.5 cm tall, 7 cm wide) with a labelled body and a red cap."""
    rng = np.random.default_rng(5)
    body_profile = np.array([(0.0, 0.0), (0.030, 0.0), (0.034, 0.003), (0.035, 0.008), (0.035, 0.150),
                             (0.032, 0.165), (0.024, 0.178), (0.016, 0.188), (0.0135, 0.195), (0.0135, 0.215),
                             (0.0, 0.215)])
    label_lo, label_hi = _wall_arc(body_profile, 0.035, (0.035, 0.125))
    body = _shade(_flat((0.10, 0.42, 0.28)), _noise(rng, 4.0), 0.08)
    body[:, 40:56] = body[:, 40:56] * 0.6 + 0.4  # specular streak
    row_hi, row_lo = _tile_row(label_hi), _tile_row(label_lo)
    body[row_hi:row_lo] = (0.97, 0.95, 0.88)
    body[row_hi : row_hi + 6] = body[row_lo - 6 : row_lo] = (0.80, 0.10, 0.12)
    mid = (row_hi + row_lo) // 2
    for x in (64, 192):  # logo + text on both sides of the bottle
        _disc(body, mid - 8, x, 14, (0.80, 0.10, 0.12))
        _text_block(body, rng, (mid + 12, row_lo - 10, x - 40, x + 40), (0.15, 0.15, 0.2), 4, gap=3)
    cap = _shade(_flat((0.85, 0.12, 0.10)), _noise(rng, 2.0), 0.05)
    cap[:, ::8] *= 0.7  # grip ridges
    body_tile, cap_tile = _TILES[0], _TILES[1]
    cap_profile = np.array([(0.0, 0.205), (0.0158, 0.205), (0.0158, 0.232), (0.0145, 0.235), (0.0, 0.235)])
    return _assemble("bottle", [], [_lathe(body_profile, body_tile), _lathe(cap_profile, cap_tile, max_step=0.004)],
                     _atlas([body, cap]))


def _mug() -> ArticulatedObject:
    """Rigid ceramic mug (10 cm tall, 8.4 cm wide) with a hollow inside and a handle on +x."""
    rng = np.random.default_rng(6)
    profile = np.array([(0.0, 0.0), (0.040, 0.0), (0.042, 0.003), (0.042, 0.098), (0.041, 0.100), (0.039, 0.100),
                        (0.038, 0.098), (0.038, 0.012), (0.036, 0.010), (0.0, 0.010)])
    band_lo, band_hi = _wall_arc(profile, 0.042, (0.025, 0.080))
    ceramic = _shade(_flat((0.94, 0.93, 0.90)), _noise(rng, 3.0), 0.02)
    body = ceramic.copy()
    row_hi, row_lo = _tile_row(band_hi), _tile_row(band_lo)
    body[row_hi:row_lo] = (0.12, 0.25, 0.60)
    for k, y in enumerate(range(row_hi + 8, row_lo - 4, 14)):  # polka dots
        for x in range(8 + 7 * (k % 2), _TILE_PX, 14):
            _disc(body, y, x, 3.5, (0.95, 0.85, 0.30))
    body[row_hi - 5 : row_hi - 2] = body[row_lo + 2 : row_lo + 5] = (0.12, 0.25, 0.60)
    body_tile, handle_tile = _TILES[0], _TILES[1]
    handle = _ring((0.064, 0.052, 0.0), (0.020, 0.030), 0.0055, handle_tile)
    return _assemble("mug", [], [_lathe(profile, body_tile), handle], _atlas([body, ceramic]))


_BUILDERS: dict[str, Callable[[], ArticulatedObject]] = {
    "box": _box,
    "laptop": _laptop,
    "book": _book,
    "scissors": _scissors,
    "bottle": _bottle,
    "mug": _mug,
}
OPEN_OBJECTS: tuple[str, ...] = tuple(_BUILDERS)


def open_object(name: str) -> ArticulatedObject:
    """Build one object of the open procedural set (deterministic; metres).

    Articulated: ``box``, ``laptop``, ``book``, ``scissors``; rigid: ``bottle``, ``mug``.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown open object {name!r}; valid names: {', '.join(OPEN_OBJECTS)}")
    return _BUILDERS[name]()
