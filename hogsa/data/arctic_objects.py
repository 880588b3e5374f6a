"""ARCTIC object templates (``meta/object_vtemplates/<object>/``) read into and written from
``hogsa.articulated.ArticulatedObject``.

Conventions:

* Templates on disk are in millimetres; the reader and writer convert to metres.
* ``parts.json`` labels: **0 = top (articulated), 1 = bottom (root)**. This is what
  ARCTIC's code does (``parts_ids = parts + 1`` and ``top_idx = parts_ids == 1``)
  and what its released results use; ARCTIC's documentation states the opposite.
  We follow the code.
* ``mesh.obj`` keeps its vertex order (``parts.json`` indexes it); UVs follow the OBJ
  convention (``v`` up).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from hogsa.articulated import ArticulatedObject, max_pairwise_distance
from hogsa.data.arctic import MM_PER_M
from hogsa.io import atomic_directory, save_image

GREY_TEXTURE = np.full((1, 1, 3), 128, dtype=np.uint8)  # [1,1,3]: a template without a texture image


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
    if not mtl_path.is_file():
        warnings.warn(f"{mtl_path}: material file not found; using a flat grey texture", stacklevel=2)
        return GREY_TEXTURE.copy()
    for line in mtl_path.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "map_Kd" and len(parts) > 1:
            image_path = mtl_path.parent / parts[-1]  # options such as -s come before the file
            if not image_path.is_file():
                warnings.warn(f"{mtl_path}: map_Kd image {image_path} not found; using a flat grey texture", stacklevel=2)
                return GREY_TEXTURE.copy()
            with Image.open(image_path) as image:
                return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    return GREY_TEXTURE.copy()


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
    top_mask = _read_top_mask(parts_path, len(obj.vertices))
    params = _read_json(params_path) if params_path.is_file() else {}
    if not isinstance(params, dict):
        raise ValueError(f"{params_path}: expected a JSON object")
    name = str(params.get("name", object_dir.name))
    vertices = obj.vertices / MM_PER_M
    face_uvs, texture = _appearance(obj, mesh_path)
    diameter = _meta_diameter(object_dir, name)
    if diameter is None:
        diameter = float(params["diameter"]) if "diameter" in params else max_pairwise_distance(vertices)
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


def _read_top_mask(parts_path: Path, count: int) -> np.ndarray:
    """[count] bool: the vertices ``parts.json`` labels 0 (top, articulated); ValueError unless it holds
    one label 0 or 1 per mesh.obj vertex."""
    labels = np.asarray(_read_json(parts_path))
    if labels.ndim != 1 or len(labels) != count:
        raise ValueError(
            f"{parts_path}: expected a list with one part label per mesh.obj vertex "
            f"({count}), got shape {labels.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        unexpected = sorted(set(labels.tolist()) - {0, 1})
        raise ValueError(f"{parts_path}: part labels must be 0 (top) or 1 (bottom), found {unexpected}")
    return labels == 0


def _appearance(obj: _ObjData, mesh_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """[F,3,2] face UVs and the [H,W,3] uint8 texture; without UVs, every corner at the centre of a
    flat grey texture."""
    if obj.face_uv_idx is None:
        return np.full((len(obj.faces), 3, 2), 0.5), GREY_TEXTURE.copy()
    texture = _read_mtl_texture(mesh_path.parent / obj.mtllib) if obj.mtllib else GREY_TEXTURE.copy()
    return obj.uvs[obj.face_uv_idx], texture


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
    (``name``, ``articulated``, ``diameter`` in metres, ``up_axis``), as one folder that replaces any
    existing one (``hogsa.io.atomic_directory``).
    """
    vertices_mm = obj.vertices.detach().cpu().double().numpy() * MM_PER_M
    faces = obj.faces.cpu().numpy()
    top = obj.top_mask.cpu().numpy()
    uvs, uv_idx = np.unique(obj.face_uvs.detach().cpu().double().numpy().reshape(-1, 2), axis=0, return_inverse=True)
    with atomic_directory(object_dir) as staging:
        (staging / "mesh.obj").write_text(_obj_text(vertices_mm, faces, uvs, uv_idx.reshape(-1, 3), "mesh.mtl"))
        (staging / "mesh.mtl").write_text(
            "newmtl material_0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\nmap_Kd texture.png\n"
        )
        save_image(staging / "texture.png", obj.texture.cpu().numpy())
        for part_name, keep in (("top", top), ("bottom", ~top)):
            (staging / f"{part_name}.obj").write_text(_obj_text(*_submesh(vertices_mm, faces, keep)))
        (staging / "parts.json").write_text(json.dumps(np.where(top, 0, 1).tolist()))
        params = {"name": obj.name, "articulated": obj.articulated, "diameter": obj.diameter, "up_axis": obj.up_axis}
        (staging / "object_params.json").write_text(json.dumps(params, indent=2))
    return Path(object_dir)


def read_object_template(root: str | Path, object_name: str) -> ArticulatedObject:
    """The object template ``root/meta/object_vtemplates/<object_name>`` as an ``ArticulatedObject``."""
    folder = Path(root) / "meta" / "object_vtemplates" / object_name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: object template folder (mesh.obj, parts.json, ...) not found")
    return load_arctic_template(folder)
