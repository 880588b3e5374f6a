"""The paper's 3DGS ablation: free Gaussians initialised at the canonical mesh vertices (supplement §2.1,
"we define the initial points as the vertices of the mesh in the canonical space and use the same
training strategy and loss function").

One Gaussian per canonical vertex of each part, with a trained position offset (canonical centre =
vertex + offset, offset init 0), rotation (wxyz quaternion, init identity), log-scales (init isotropic,
a standard deviation of half the part's mean edge length: neighbours, about one edge apart, then cover
the surface without gaps, while 3DGS's own choice, σ ≈ the neighbour distance, swells a coarse mesh such
as the box's 15 mm grid several millimetres beyond its silhouette), opacity and SH colour. The count is
fixed, as for HOGS (no densification, no pruning). The mesh itself is not trained.

Posing: a Gaussian is carried by the transform of the vertex it was initialised at (its nearest
canonical vertex at initialisation; the binding is kept fixed so that a drifting Gaussian does not
jump between transforms): hands by that vertex's LBS transform (``HandModel.vertex_transforms``,
which maps the SHAPED canonical mesh, so canonical centres are the shaped vertices plus the offsets),
the object by the rigid transform of the vertex's part. The Gaussian's rotation is composed with the
transform's 3×3 block orthonormalised (a blend of bone rotations is not a rotation; its nearest
rotation, by SVD, is used; it is not differentiated). L_R is the mean ‖offset‖ over all Gaussians, as HOGS's over vertices.

Conventions as ``hogsa.hogs.model``; quaternions wxyz.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import rotation_matrix_to_quaternion
from torch import Tensor, nn

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.hand import HandModel, HandPose
from hogsa.hogs.binding import GaussianSet
from hogsa.hogs.model import PARTS, GaussianScene, Shading, pose_hand, pose_object

POINT_LR_KEYS = ("position", "rotation", "scale", "opacity", "sh_dc", "sh_rest", "lighting")


class PointGaussians(nn.Module):
    """Free Gaussians, one per vertex of one canonical mesh (parameters unconstrained, activated in use)."""

    def __init__(
        self,
        vertices: Tensor,  # [V, 3] canonical mesh, metres (initial centres)
        faces: Tensor,  # [F, 3] long (only for the mean edge length)
        sh_degree: int,
        init_opacity: float,
    ) -> None:
        super().__init__()
        if not 0.0 < init_opacity < 1.0:
            raise ValueError(f"init_opacity must lie in (0, 1), got {init_opacity}")
        n = vertices.shape[0]
        self.offsets = nn.Parameter(torch.zeros(n, 3))
        self.quats = nn.Parameter(torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1))
        self.log_scales = nn.Parameter(torch.full((n, 3), 0.5 * mean_edge_length(vertices, faces)).log())
        self.opacity_logits = nn.Parameter(torch.full((n,), init_opacity).logit())
        self.sh_dc = nn.Parameter(torch.zeros(n, 1, 3))  # colour 0.5 grey
        self.sh_rest = nn.Parameter(torch.zeros(n, (sh_degree + 1) ** 2 - 1, 3))

    def posed(
        self,
        canonical: Tensor,  # [B, V, 3] or [V, 3] the vertices the transforms map from
        transforms: Tensor,  # [B, V, 4, 4] per-vertex transforms canonical → world
    ) -> GaussianSet:  # fields with a leading B
        rotation, translation = transforms[..., :3, :3], transforms[..., :3, 3]
        means = (rotation @ (canonical + self.offsets)[..., None])[..., 0] + translation
        # the carried rotation takes no gradient: the SVD's backward is infinite where singular values repeat
        # (a vertex moved by one bone alone is a pure rotation), and pose corrections learn from the means
        carried = rotation_matrix_to_quaternion(nearest_rotation(rotation.detach()).contiguous())  # [B, V, 4] wxyz
        quats = quaternion_multiply(carried, F.normalize(self.quats, dim=-1))
        sh = torch.cat([self.sh_dc, self.sh_rest], dim=1)
        batch = means.shape[0]
        return GaussianSet(means, quats, self.log_scales.exp().expand(batch, -1, -1),
                           torch.sigmoid(self.opacity_logits).expand(batch, -1), sh.expand(batch, *sh.shape))

    def param_groups(self, lr: Mapping[str, float]) -> list[dict]:
        params = {"position": self.offsets, "rotation": self.quats, "scale": self.log_scales,
                  "opacity": self.opacity_logits, "sh_dc": self.sh_dc, "sh_rest": self.sh_rest}
        return [{"params": [param], "lr": float(lr[key]), "name": key} for key, param in params.items()]


class PointCloudGaussians(GaussianScene):
    """The 3DGS ablation of HOGS for one group: ``points[part]`` are ``PointGaussians`` (module docstring)."""

    def __init__(
        self,
        hands: Mapping[str, HandModel],
        obj: ArticulatedObject,
        sh_degree: int,
        init_opacity: float,
        shading: Shading = "none",
    ) -> None:
        super().__init__(sh_degree, shading)
        self.hands = nn.ModuleDict({side: hands[side] for side in PARTS[:2]})
        self.obj = obj
        meshes = {"right": (hands["right"].v_template, hands["right"].faces),
                  "left": (hands["left"].v_template, hands["left"].faces), "object": (obj.vertices, obj.faces)}
        self.points = nn.ModuleDict({
            part: PointGaussians(verts, faces, sh_degree, init_opacity) for part, (verts, faces) in meshes.items()
        })

    def posed_frames(self, right: HandPose, left: HandPose, obj: ObjectPose) -> dict[str, GaussianSet]:
        posed = {}
        for side, pose in (("right", right), ("left", left)):
            hand = self.hands[side]
            shaped = pose_hand(hand, shaped_rest_pose(pose))  # [B, V, 3] the shaped canonical meshes
            posed[side] = self.points[side].posed(shaped, hand.vertex_transforms(*pose))
        template = self.obj.vertices.to(obj.rot)
        posed["object"] = self.points["object"].posed(template, object_vertex_transforms(self.obj, obj))
        return posed

    def regularizer(self) -> Tensor:
        return torch.cat([self.points[part].offsets for part in PARTS]).norm(dim=-1).mean()

    def param_groups(self, lr: Mapping[str, float]) -> list[dict]:
        """``lr`` keys ``POINT_LR_KEYS`` (3DGS's parameter groups; ``position`` for the offsets)."""
        if set(lr) != set(POINT_LR_KEYS):
            raise ValueError(f"3DGS learning rates need exactly the keys {POINT_LR_KEYS}, got {sorted(lr)}")
        return self.lighting_groups(lr) + [{**group, "name": f"{part}/{group['name']}"} for part in PARTS
                                           for group in self.points[part].param_groups(lr)]

    def sh_dc(self, part: str) -> nn.Parameter:
        return self.points[part].sh_dc


def object_vertex_transforms(obj: ArticulatedObject, pose: ObjectPose) -> Tensor:  # [B, V, 4, 4]
    """Each canonical vertex's rigid transform (that of its part) at each of the B rows of ``pose``.

    ``ArticulatedObject.pose`` is affine per vertex, so posing the template and the template shifted by
    each unit axis gives every vertex's translation and rotation columns exactly.
    """
    template = obj.vertices.to(pose.rot)
    base = pose_object(obj, pose, template)  # [B, V, 3]
    columns = [pose_object(obj, pose, template + axis) - base for axis in torch.eye(3).to(template)]
    rotation = torch.stack(columns, dim=-1)  # [B, V, 3, 3]
    translation = base - torch.einsum("bvij,vj->bvi", rotation, template)
    transforms = torch.zeros(*base.shape[:2], 4, 4).to(template)
    transforms[..., :3, :3], transforms[..., :3, 3], transforms[..., 3, 3] = rotation, translation, 1.0
    return transforms


def nearest_rotation(matrix: Tensor) -> Tensor:  # [..., 3, 3] → [..., 3, 3]
    """The rotation closest to ``matrix`` in Frobenius norm (polar factor U·Vᵀ, det forced to +1)."""
    u, _, vh = torch.linalg.svd(matrix)
    sign = torch.sign(torch.linalg.det(u @ vh))
    u = torch.cat([u[..., :2], u[..., 2:] * sign[..., None, None]], dim=-1)
    return u @ vh


def quaternion_multiply(a: Tensor, b: Tensor) -> Tensor:  # [..., 4] wxyz each → [..., 4]
    """Hamilton product a ⊗ b (rotation b first, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)


def mean_edge_length(vertices: Tensor, faces: Tensor) -> float:  # [V, 3], [F, 3] → metres
    """Mean length of the faces' edges (shared edges counted twice: a mean, not a sum)."""
    tri = vertices[faces]  # [F, 3, 3]
    return float((tri - tri.roll(1, dims=1)).norm(dim=-1).mean())


def shaped_rest_pose(pose: HandPose) -> HandPose:
    """The same hand pose (each row) with zero rotations and translation: skinning it gives the shaped
    canonical mesh."""
    zeros = torch.zeros_like
    return HandPose(zeros(pose.global_orient), zeros(pose.hand_pose), pose.betas, zeros(pose.transl))
