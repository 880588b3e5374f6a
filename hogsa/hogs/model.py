"""HOGS (paper §3.2): the two hands and the object of one (subject, object) group as mesh-bound Gaussians.

Parts are ``PARTS = ("right", "left", "object")``, labelled 1, 2, 3 as in the datasets' part masks.
Each part's canonical mesh is its template plus a trained per-vertex offset δ [V, 3] (initialised to 0).
To render a frame, each canonical mesh is posed and its Gaussians (``binding.MeshGaussians``, k per
face) are rebound to the posed vertices: the hands by linear blend skinning of their canonical
vertices (``HandModel.forward(..., v_template=template + δ)``, with the subject's betas so the joints
stay those of the data), the object by its articulation and rigid pose (``ArticulatedObject.pose(...,
vertices=template + δ)``).

L_R (paper eq. 9, "the distance of each trained canonical vertex to the initial template mesh M") is
read as the distance of each vertex to ITS OWN initial position, ‖δ‖, averaged over the vertices of all
three parts. That is an upper bound of the point-to-surface distance and, unlike it, also keeps
vertices from sliding along the surface, which would stretch faces and their Gaussians.

Shading (hogsa's addition; ``shading="none"`` is the paper's model). The Gaussians' colours are fixed
in the canonical space, so the shading of a part that turns under a fixed light is baked in wrongly
at every other pose; the embedded dataset is lit by one directional light plus ambient, which makes this
a large error on the moving hands (1.4 dB of held-out PSNR on s01/box). With ``shading="sh2"`` a
colour is the SH colour (an albedo) times the irradiance at the Gaussian's normal, a degree-2
spherical-harmonic function of the world-frame normal shared by the whole scene (Ramamoorthi &
Hanrahan 2001: 9 coefficients per channel represent the irradiance of any distant lighting to within a
few percent); it starts at 1 everywhere. The normal is
the Gaussian's thinnest axis (for HOGS, the face normal), turned towards the camera (two-sided, as a
thin Gaussian is seen from both sides). Cast shadows are not modelled.

``GaussianScene`` is the interface shared with the 3DGS ablation (``hogsa.hogs.pointcloud``): posed
Gaussians per part, the regulariser, optimizer groups, colour initialisation and ``render``.

Conventions: metres; a frame's poses are one-row ``hogsa.hand.HandPose`` (each hand) and
``hogsa.articulated.ObjectPose`` records of float32 tensors (``hogsa.data.groups.frame_poses``); B frames
are the same records with B rows (``concat_poses``), posed and rendered together (``render_frames``:
one skinning, binding and rasterizer pass for a training step's crops); cameras are OpenCV (``world2cam`` 4×4, ``K`` 3×3 with pixel centres at
integer + 0.5, as ``hogsa.render.rasterize``); colours RGB in [0, 1]; world up is +z.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple, Protocol

import numpy as np
import torch
from kornia.geometry.conversions import quaternion_to_rotation_matrix
from torch import Tensor, nn

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.data.schema import MASK_LABELS
from hogsa.hand import HandModel, HandPose
from hogsa.hogs.binding import GaussianSet, MeshGaussians
from hogsa.render import rasterize
from hogsa.compiled import lazily_compiled
from hogsa.render.sh import SH_C0, rgb_to_sh_dc, sh_bases, sh_colors

PARTS = ("right", "left", "object")
PART_LABELS = tuple(MASK_LABELS[part] for part in PARTS)  # (1, 2, 3)
HOGS_LR_KEYS = ("vertices", "bary", "scale", "opacity", "sh_dc", "sh_rest", "lighting")
Shading = Literal["none", "sh2"]
SHADINGS = ("none", "sh2")


class CameraLike(Protocol):
    K: np.ndarray | Tensor  # [3, 3] pixels, centres at integer + 0.5
    world2cam: np.ndarray | Tensor  # [4, 4] world → camera, OpenCV
    width: int
    height: int


class RenderOutput(NamedTuple):
    rgb: Tensor  # [3, H, W] in [0, 1] (the layout networks take), background composited behind
    alpha: Tensor  # [H, W] accumulated opacity
    depth: Tensor  # [H, W] expected camera depth of the rendered surface, metres; 0 where alpha = 0


class GaussianScene(nn.Module, abc.ABC):
    """Gaussians of the three parts, posed per frame; rendered together. Subclasses own the Gaussians'
    parameters; this base owns the scene's ``lighting`` [9, 3] (irradiance SH coefficients) when shaded."""

    def __init__(self, sh_degree: int, shading: Shading) -> None:
        super().__init__()
        if shading not in SHADINGS:
            raise ValueError(f"shading must be one of {SHADINGS}, got {shading!r}")
        self.sh_degree = sh_degree
        self.shading = shading
        self.lighting = None
        if shading == "sh2":
            uniform = torch.zeros(9, 3)
            uniform[0] = 1.0 / SH_C0  # irradiance 1 in every direction
            self.lighting = nn.Parameter(uniform)

    @abc.abstractmethod
    def posed_frames(self, right: HandPose, left: HandPose, obj: ObjectPose) -> dict[str, GaussianSet]:
        """Each part's Gaussians in the world at each of the B rows of the poses, ``{part: GaussianSet}``
        in ``PARTS`` order, fields with a leading B."""

    def posed_gaussians(self, right: HandPose, left: HandPose, obj: ObjectPose) -> dict[str, GaussianSet]:
        """Each part's Gaussians in the world at this one-row pose, ``{part: GaussianSet}`` (unbatched)."""
        return {part: GaussianSet(*(field[0] for field in g))
                for part, g in self.posed_frames(right, left, obj).items()}

    @abc.abstractmethod
    def regularizer(self) -> Tensor:  # [] metres
        """L_R: mean distance of the trained positions to their initial ones."""

    @abc.abstractmethod
    def param_groups(self, lr: Mapping[str, float]) -> list[dict]:
        """Adam groups (each with a ``name``) covering exactly ``trainable_parameters()``; ``lr["lighting"]``
        is the lighting's (unused without shading)."""

    @abc.abstractmethod
    def sh_dc(self, part: str) -> nn.Parameter:  # [N, 1, 3]
        """The degree-0 SH coefficients of ``part``'s Gaussians (what colour initialisation sets)."""

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """Named parameters that training updates and checkpoints hold (the hand rigs are not among them)."""
        return {name: p for name, p in self.named_parameters() if not name.startswith("hands.")}

    @torch.no_grad()
    def set_colors(self, part: str, rgb: Tensor, where: Tensor) -> None:
        """Set the base colour (SH degree 0) of ``part``'s Gaussians ``where`` [N] bool to ``rgb`` [N, 3]."""
        dc = self.sh_dc(part)
        dc[where] = rgb_to_sh_dc(rgb[where])[:, None, :].to(dc)

    def center(self, right: HandPose, left: HandPose, obj: ObjectPose) -> Tensor:  # [3] metres
        """Mean of all Gaussian centres at this pose: the interaction's centre."""
        with torch.no_grad():
            return torch.cat([g.means for g in self.posed_gaussians(right, left, obj).values()]).mean(dim=0)

    def render(
        self,
        camera: CameraLike,
        right: HandPose,
        left: HandPose,
        obj: ObjectPose,
        background: tuple[float, float, float] = (0.0, 0.0, 0.0),  # RGB in [0, 1] composited behind
    ) -> RenderOutput:
        """Render the scene at this one-row pose from ``camera`` over ``background`` (training and
        evaluation use the crops' black; augmentation composites renders on other backgrounds)."""
        out = self.render_frames([camera], right, left, obj, background)
        return RenderOutput(out.rgb[0], out.alpha[0], out.depth[0])

    def render_frames(
        self,
        cameras: Sequence[CameraLike],  # B cameras of one image size, camera b for frame b
        right: HandPose,  # B rows
        left: HandPose,
        obj: ObjectPose,
        background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> RenderOutput:
        """B frames, frame b at row b of the poses seen from ``cameras[b]``, in one pass: RenderOutput with
        a leading B (rgb [B, 3, H, W])."""
        return render_gaussians(self.posed_frames(right, left, obj), cameras, self.sh_degree, background,
                                self.lighting)

    @torch.no_grad()
    def snapshot(self, camera: CameraLike, right: HandPose, left: HandPose, obj: ObjectPose) -> dict[str, Tensor]:
        """The posed Gaussians as ``rasterize`` takes them, colours evaluated towards ``camera``, and the
        camera: means [N, 3], quats [N, 4], scales [N, 3], opacities [N], colors [N, 3], viewmat [4, 4],
        K [3, 3], size [2] (W, H). What bench/render.py times as a trained scene."""
        merged = merge_parts(self.posed_gaussians(right, left, obj))
        viewmat = torch.as_tensor(camera.world2cam, dtype=merged.means.dtype)
        colors = view_colors(merged, torch.linalg.inv(viewmat)[:3, 3], self.sh_degree, self.lighting)
        return {"means": merged.means, "quats": merged.quats, "scales": merged.scales, "opacities": merged.opacities,
                "colors": colors, "viewmat": viewmat, "K": torch.as_tensor(camera.K, dtype=merged.means.dtype),
                "size": torch.tensor([int(camera.width), int(camera.height)])}

    def lighting_groups(self, lr: Mapping[str, float]) -> list[dict]:
        """The lighting's Adam group, or none without shading."""
        if self.lighting is None:
            return []
        return [{"params": [self.lighting], "lr": float(lr["lighting"]), "name": "lighting"}]


class HOGS(GaussianScene):
    """Mesh-bound Gaussians on both hands and the object of one group (module docstring).

    Parameters: ``deltas[part]`` [V, 3] canonical vertex offsets (metres, init 0) and, in
    ``surfaces[part]``, the ``MeshGaussians`` appearance (barycentric logits, in-plane log scale
    factors, opacity logits, SH). The hand rigs are registered (they move with ``.to``) but not trained.
    """

    def __init__(
        self,
        hands: Mapping[str, HandModel],  # {"right": ..., "left": ...}
        obj: ArticulatedObject,
        generator: torch.Generator,  # seeds the barycentric initialisation
        gaussians_per_face: int,  # paper: k = 2
        sh_degree: int,
        init_opacity: float,
        shading: Shading = "none",
    ) -> None:
        super().__init__(sh_degree, shading)
        self.hands = nn.ModuleDict({side: hands[side] for side in PARTS[:2]})
        self.obj = obj
        self.register_buffer("object_template", obj.vertices.clone())
        faces = {"right": hands["right"].faces, "left": hands["left"].faces, "object": obj.faces}
        self.deltas = nn.ParameterDict({part: nn.Parameter(torch.zeros_like(self.template(part))) for part in PARTS})
        self.surfaces = nn.ModuleDict({
            part: MeshGaussians(faces[part], generator, gaussians_per_face, sh_degree, init_opacity) for part in PARTS
        })

    def template(self, part: str) -> Tensor:  # [V, 3] the initial canonical mesh
        return self.object_template if part == "object" else self.hands[part].v_template

    def canonical(self, part: str) -> Tensor:  # [V, 3] the trained canonical mesh
        return self.template(part) + self.deltas[part]

    def posed_vertices(self, right: HandPose, left: HandPose, obj: ObjectPose) -> dict[str, Tensor]:
        """Each part's trained canonical mesh at each of the B rows of the poses, ``{part: [B, V, 3]}``."""
        posed = {side: pose_hand(self.hands[side], pose, self.canonical(side)) for side, pose in
                 (("right", right), ("left", left))}
        posed["object"] = pose_object(self.obj, obj, self.canonical("object"))
        return posed

    def posed_frames(self, right: HandPose, left: HandPose, obj: ObjectPose) -> dict[str, GaussianSet]:
        return {part: self.surfaces[part].gaussians(v) for part, v in self.posed_vertices(right, left, obj).items()}

    def regularizer(self) -> Tensor:
        return torch.cat([self.deltas[part] for part in PARTS]).norm(dim=-1).mean()

    def param_groups(self, lr: Mapping[str, float]) -> list[dict]:
        """``lr`` keys ``HOGS_LR_KEYS``: ``vertices`` for the offsets δ, the rest as ``MeshGaussians``'s."""
        if set(lr) != set(HOGS_LR_KEYS):
            raise ValueError(f"HOGS learning rates need exactly the keys {HOGS_LR_KEYS}, got {sorted(lr)}")
        groups = [{"params": list(self.deltas.values()), "lr": float(lr["vertices"]), "name": "vertices"}]
        groups += self.lighting_groups(lr)
        appearance = {key: lr[key] for key in HOGS_LR_KEYS if key not in ("vertices", "lighting")}
        for part in PARTS:
            for group in self.surfaces[part].param_groups(appearance):
                groups.append({**group, "name": f"{part}/{group['name']}"})
        return groups

    def sh_dc(self, part: str) -> nn.Parameter:
        return self.surfaces[part].sh_dc


def pose_hand(hand: HandModel, pose: HandPose, canonical: Tensor | None = None) -> Tensor:  # [B, V, 3]
    """Vertices of ``hand`` at each row of ``pose`` (LBS of ``canonical`` [V, 3], default the model's template)."""
    return hand(*pose, v_template=canonical).vertices


def pose_object(obj: ArticulatedObject, pose: ObjectPose, canonical: Tensor | None = None) -> Tensor:  # [B, V, 3]
    """Vertices of ``obj`` at each row of ``pose`` (articulation, then rigid motion of ``canonical`` [V, 3])."""
    return obj.pose(*pose, vertices=canonical)


def concat_poses(poses: Sequence[HandPose | ObjectPose]) -> HandPose | ObjectPose:
    """One record with the rows of all ``poses`` (records of one type), in order."""
    return type(poses[0])(*(torch.cat(fields) for fields in zip(*poses)))


def render_gaussians(
    gaussians: Mapping[str, GaussianSet],  # {part: GaussianSet}, fields with a leading B
    cameras: Sequence[CameraLike],  # B cameras of one image size, camera b for set b
    sh_degree: int,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),  # RGB in [0, 1] behind the Gaussians
    lighting: Tensor | None = None,  # [9, 3] irradiance SH coefficients; None: unshaded SH colours
) -> RenderOutput:
    """Rasterize the parts' Gaussians of each of B sets together, set b from ``cameras[b]``, in one
    rasterizer call ("RGB+ED": colour and expected depth); outputs with a leading B."""
    merged = merge_parts(gaussians)
    device, dtype = merged.means.device, merged.means.dtype
    sizes = {(int(c.width), int(c.height)) for c in cameras}
    if len(sizes) != 1 or len(cameras) != merged.means.shape[0]:
        raise ValueError(f"render_gaussians: {merged.means.shape[0]} sets need as many cameras of one size, "
                         f"got {len(cameras)} of sizes {sorted(sizes)}")
    (width, height), = sizes
    viewmats = torch.stack([torch.as_tensor(c.world2cam, dtype=dtype, device=device) for c in cameras])[:, None]
    Ks = torch.stack([torch.as_tensor(c.K, dtype=dtype, device=device) for c in cameras])[:, None]  # [B, 1, 3, 3]
    common = {"viewmats": viewmats, "Ks": Ks, "width": width, "height": height}
    backgrounds = torch.tensor([background], dtype=dtype, device=device).expand(len(cameras), 1, 3)
    if lighting is None:  # the rasterizer evaluates the SH colours
        colors, alphas, _ = rasterize(merged.means, merged.quats, merged.scales, merged.opacities, merged.sh,
                                      sh_degree=sh_degree, backgrounds=backgrounds, render_mode="RGB+ED", **common)
    else:
        centres = torch.linalg.inv(viewmats[:, 0])[:, None, :3, 3]  # [B, 1, 3]
        shaded = shaded_colors(merged, centres, sh_degree, lighting)
        colors, alphas, _ = rasterize(merged.means, merged.quats, merged.scales, merged.opacities, shaded,
                                      backgrounds=backgrounds, render_mode="RGB+ED", **common)
    colors, alphas = colors[:, 0], alphas[:, 0]  # [B, H, W, 4], [B, H, W, 1]
    return RenderOutput(rgb=colors[..., :3].permute(0, 3, 1, 2), alpha=alphas[..., 0], depth=colors[..., 3])


def merge_parts(gaussians: Mapping[str, GaussianSet]) -> GaussianSet:
    """One GaussianSet of all parts, in the mapping's order (batched or not: joined along N)."""
    first = next(iter(gaussians.values()))
    axis = first.means.dim() - 2
    return GaussianSet(*(torch.cat(fields, dim=axis) for fields in zip(*gaussians.values())))


def view_colors(
    gaussians: GaussianSet,  # unbatched, N Gaussians
    camera_center: Tensor,  # [3] world, metres
    sh_degree: int,
    lighting: Tensor | None,  # [9, 3] irradiance SH coefficients; None: unshaded
) -> Tensor:  # [N, 3]
    """Each Gaussian's colour seen from ``camera_center``: the SH colour as gsplat evaluates it
    (+ 0.5, clamped at 0), times the irradiance at its normal when shaded."""
    if lighting is not None:
        return shaded_colors(gaussians, camera_center, sh_degree, lighting)
    return sh_colors(sh_degree, gaussians.means - camera_center, gaussians.sh)


@lazily_compiled
def shaded_colors(
    gaussians: GaussianSet,  # N Gaussians, fields [(B,) N, ...]
    camera_center: Tensor,  # [3] world, metres; [B, 1, 3] for batched Gaussians
    sh_degree: int,
    lighting: Tensor,  # [9, 3] irradiance SH coefficients (world frame)
) -> Tensor:  # [(B,) N, 3]
    """Albedo (SH colour towards the camera, as the rasterizer computes it) × irradiance at the normal."""
    directions = gaussians.means - camera_center  # [(B,) N, 3] camera → Gaussian
    albedo = sh_colors(sh_degree, directions, gaussians.sh)
    normals = gaussian_normals(gaussians)
    normals = torch.where((normals * directions).sum(-1, keepdim=True) > 0, -normals, normals)  # face the camera
    irradiance = (sh_bases(2, normals) @ lighting).clamp_min(0.0)  # [(B,) N, 3]
    return albedo * irradiance


def gaussian_normals(gaussians: GaussianSet) -> Tensor:  # [(B,) N, 3] unit
    """Each Gaussian's thinnest axis (for mesh-bound Gaussians, the face normal with its sign)."""
    axes = quaternion_to_rotation_matrix(nn.functional.normalize(gaussians.quats, dim=-1))  # [(B,) N, 3, 3] columns
    thinnest = gaussians.scales.argmin(dim=-1)  # [(B,) N]
    return axes.gather(-1, thinnest[..., None, None].expand(*thinnest.shape, 3, 1))[..., 0]
