"""Articulated objects in the ARCTIC convention: ``ArticulatedObject`` and ``ObjectPose``.

Conventions (shared by every object, whatever its source):

* Units are metres and radians.
* An object has two parts. The *top* part is articulated; the *bottom* part is the
  object's root. Posing (ARCTIC ``ObjectTensors.forward_7d_batch``)::

      v_top <- Rz(-theta) v_top            # axis-angle [0, 0, -1] * theta (hogsa.geometry.hinge_rotation)
      v     <- R(rot) v + transl           # every vertex

  i.e. the hinge is the canonical z axis through the origin, and the closed /
  rest state is ``theta = 0``.
* UVs follow the OBJ convention: ``v`` points up, so texture row ``= (1 - v) * H``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from torch import Tensor

from hogsa.batched import BatchedRecord
from hogsa.geometry import axis_angle_to_matrix, hinge_rotation


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
        opened = torch.einsum("bij,vj->bvi", hinge_rotation(articulation.to(dtype)), verts)
        local = torch.where(mask, opened, verts[None])  # [B,V,3]
        rotation = axis_angle_to_matrix(rot.to(dtype))  # [B,3,3]
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
class ObjectPose(BatchedRecord):
    """An articulated object's state for B poses (a ``hogsa.batched`` record: numpy or torch, all alike);
    ``obj.pose(*pose)`` poses it."""

    TRAILING: ClassVar[dict[str, tuple[int, ...]]] = {"articulation": (), "rot": (3,), "transl": (3,)}

    articulation: np.ndarray | Tensor  # [B] radians about the canonical hinge
    rot: np.ndarray | Tensor  # [B, 3] axis-angle of the global orientation, radians
    transl: np.ndarray | Tensor  # [B, 3] metres


def upright_rotation(obj: ArticulatedObject) -> np.ndarray:
    """[3,3] rotation taking ``obj``'s canonical up axis to +z (a world with z up), float64."""
    rotations = {0: [[0, 0, -1], [0, 1, 0], [1, 0, 0]], 1: [[1, 0, 0], [0, 0, -1], [0, 1, 0]], 2: np.eye(3)}
    return np.asarray(rotations[obj.up_axis], dtype=np.float64)


def max_pairwise_distance(vertices: np.ndarray) -> float:  # [V,3] -> scalar
    """Object diameter: the largest distance between two vertices (via the convex hull)."""
    points = np.asarray(vertices, dtype=np.float64)
    if len(points) > 64:
        try:
            points = points[ConvexHull(points).vertices]
        except Exception:  # degenerate (flat) point sets: fall back to all points
            pass
    return float(pdist(points).max()) if len(points) > 1 else 0.0
