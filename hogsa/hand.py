"""The hand model: MANO (real or the open hand) through smplx, MANO-HD subdivision, 21 joints.

Pose convention: ``hand_pose`` is ABSOLUTE axis-angle of the 15 finger joints (flat-hand-mean
semantics); a dataset whose poses are relative to MANO's ``hands_mean`` (ARCTIC) is converted by its
reader with ``HandModel.hands_mean``. Joints come in the MANO/ARCTIC 21-joint order: 0 wrist, 1-3 index,
4-6 middle, 7-9 pinky, 10-12 ring, 13-15 thumb, then the tips thumb, index, middle, ring, pinky.

Model files are read with a restricted unpickler (``hogsa.safe_pickle``): the official MANO pickles
hold chumpy objects and a scipy.sparse ``J_regressor``; both are mapped to plain arrays without
importing chumpy, and no other class can be loaded.
"""

from __future__ import annotations

import contextlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import scipy.sparse
import smplx
import torch
import trimesh
from smplx.lbs import batch_rigid_transform, batch_rodrigues, blend_shapes, lbs, vertices2joints
from smplx.utils import Struct
from torch import Tensor, nn

from hogsa import safe_pickle
from hogsa.batched import BatchedRecord
from hogsa.open_hand import open_hand_file

Side = Literal["right", "left"]

MANO_TIP_IDS = (744, 320, 443, 554, 671)  # thumb, index, middle, ring, pinky (ARCTIC's convention)
MANO_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
MANO_DOWNLOAD_HINT = (
    "MANO is a licensed download (https://mano.is.tue.mpg.de, 'Models & Code'); put MANO_RIGHT.pkl "
    "and MANO_LEFT.pkl from its models/ folder in one directory and set hand.model_dir in params.yaml "
    "to it, or leave hand.model_dir null to use hogsa's open hand"
)

# field: (dimensions, which may be None for free, or V / J placeholders resolved on load)
_REQUIRED_FIELDS = {
    "v_template": ("V", 3),
    "f": (None, 3),
    "J_regressor": (16, "V"),
    "kintree_table": (2, 16),
    "weights": ("V", 16),
    "posedirs": ("V", 3, 135),
    "shapedirs": ("V", 3, None),
    "hands_mean": (45,),
}


Array = np.ndarray | Tensor
POSE_WIDTHS = {"global_orient": 3, "hand_pose": 45, "betas": 10, "transl": 3}


@dataclass(frozen=True, eq=False)
class HandPose(BatchedRecord):
    """MANO parameters of one hand for B poses (a sequence's frames, a grasp set's samples, a batch).

    A ``hogsa.batched`` record: all numpy arrays or all torch tensors; ``hand_pose`` is ABSOLUTE
    axis-angle of the 15 finger joints (flat-hand-mean semantics); ``hand(*pose)`` skins it.
    """

    TRAILING: ClassVar[dict[str, tuple[int, ...]]] = {name: (width,) for name, width in POSE_WIDTHS.items()}

    global_orient: Array  # [B, 3] axis-angle of the wrist, radians
    hand_pose: Array  # [B, 45] absolute axis-angle of the 15 finger joints, radians
    betas: Array  # [B, 10] shape coefficients
    transl: Array  # [B, 3] metres

    @staticmethod
    def zeros(batch: int) -> HandPose:
        """``batch`` rest poses (zero rotation, pose, shape and translation), numpy float64."""
        return HandPose(*(np.zeros((batch, width)) for width in POSE_WIDTHS.values()))


class HandOutput(NamedTuple):
    """A posed hand batch (``HandModel.forward``)."""

    vertices: Tensor  # [B, V, 3] metres
    joints: Tensor  # [B, 21, 3] metres, MANO/ARCTIC order


def load_mano_file(path: str | Path) -> dict[str, Any]:
    """Read a MANO-format pkl (official or open hand) into numpy arrays, validating every field.

    Raises FileNotFoundError or ValueError naming the file, the field and the expectation.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MANO model file not found. {MANO_DOWNLOAD_HINT}")
    try:
        data = safe_pickle.load(path, allow_sparse=True, allow_chumpy=True)
    except pickle.UnpicklingError as err:  # truncated, foreign or refused; its message starts with the path
        reason = str(err).removeprefix(f"{path}: ")
        raise ValueError(f"{path}: not a readable MANO pkl ({reason}). {MANO_DOWNLOAD_HINT}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of MANO fields, found {type(data).__name__}")
    template_shape = np.shape(data.get("v_template"))
    n_verts = template_shape[0] if len(template_shape) == 2 else None  # else the check below reports it
    for field, dims in _REQUIRED_FIELDS.items():
        if field not in data:
            raise ValueError(f"{path}: field '{field}' is missing. {MANO_DOWNLOAD_HINT}")
        value = data[field]
        shape = value.shape if hasattr(value, "shape") else np.shape(value)
        expected = tuple(n_verts if d == "V" else d for d in dims)
        if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
            shown = ", ".join("*" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "")
            raise ValueError(f"{path}: field '{field}' has shape {tuple(shape)}, expected ({shown})")
        if not scipy.sparse.issparse(value) and np.asarray(value).dtype.kind == "f":
            if not np.isfinite(value).all():
                raise ValueError(f"{path}: field '{field}' contains NaN or infinite values; expected finite numbers")
    data["J_regressor"] = scipy.sparse.csr_matrix(data["J_regressor"])
    data.setdefault("tip_ids", np.asarray(MANO_TIP_IDS))
    return data


def subdivide_mano(data: dict[str, Any], levels: int, smooth_iterations: int = 3) -> dict[str, Any]:
    """MANO-HD: ``levels`` rounds of edge-midpoint subdivision (each triangle → 4; V' = V + E).

    New vertices take the mean of their edge endpoints' skinning weights, shapedirs and posedirs;
    ``J_regressor`` is zero-padded (joints still come from the original vertices). After the last
    round the INSERTED vertices get ``smooth_iterations`` of one-ring mean smoothing, which rounds the
    flat midpoint facets. HandAvatar smooths every vertex; hogsa keeps the original vertices where
    they are, because full smoothing pulls fingertips in by ~2 mm and so would move the tip joints and
    the regressed joints away from the annotations. Original vertices keep their indices and places,
    so tip ids, joints and the rest pose at those vertices are unchanged.
    """
    if levels <= 0:
        return data
    verts = np.asarray(data["v_template"], dtype=np.float64)
    faces = np.asarray(data["f"], dtype=np.int64)
    n_shape = data["shapedirs"].shape[-1]
    attributes = {
        "weights": np.asarray(data["weights"], dtype=np.float64),
        "shapedirs": np.asarray(data["shapedirs"], dtype=np.float64).reshape(len(verts), -1),
        "posedirs": np.asarray(data["posedirs"], dtype=np.float64).reshape(len(verts), -1),
    }
    for _ in range(levels):  # trimesh gives each midpoint the mean of its edge endpoints' attributes
        verts, faces, attributes = trimesh.remesh.subdivide(verts, faces, vertex_attributes=attributes)
    n_original = len(data["v_template"])
    neighbours = trimesh.Trimesh(verts, faces, process=False).vertex_neighbors[n_original:]
    for _ in range(smooth_iterations):
        verts[n_original:] = np.stack([verts[n].mean(axis=0) for n in neighbours])
    out = dict(data)
    n_verts = len(verts)
    jreg = scipy.sparse.csr_matrix(data["J_regressor"])
    out.update(
        v_template=verts,
        f=faces,
        weights=attributes["weights"],
        shapedirs=attributes["shapedirs"].reshape(n_verts, 3, n_shape),
        posedirs=attributes["posedirs"].reshape(n_verts, 3, -1),
        J_regressor=scipy.sparse.csr_matrix((jreg.data, jreg.indices, jreg.indptr), shape=(16, n_verts)),
    )
    return out


class HandModel(nn.Module):
    """One MANO-format hand (``side``), real MANO from ``model_dir`` or hogsa's open hand.

    ``forward(global_orient [B,3], hand_pose [B,45], betas [B,10], transl [B,3])`` →
    ``HandOutput(vertices [B,V,3], joints [B,21,3])``; ``hand_pose`` is absolute axis-angle.
    Pass ``v_template [V,3]`` or ``[B,V,3]`` to skin a modified canonical mesh with the same rig.

    Vertex ids read from the model file (int64 buffers; MANO-HD keeps the original vertices' ids):
    ``tip_ids`` [5] the fingertips (thumb, index, middle, ring, pinky; MANO's when the file has none),
    ``palm_ids`` and ``fingerpad_ids`` the palmar surfaces of the palm and of the distal phalanges
    (the open hand's ``palm_vertex_ids`` and ``fingerpad_vertex_ids``; empty for real MANO, which
    defines none).
    """

    def __init__(self, side: Side, model_dir: str | Path | None = None, hd_level: int = 0):
        super().__init__()
        if side not in ("right", "left"):
            raise ValueError(f"side must be 'right' or 'left', got {side!r}")
        if hd_level < 0:
            raise ValueError(f"hd_level must be >= 0, got {hd_level}")
        self.side = side
        self.is_open_hand = model_dir is None
        path = open_hand_file(side) if model_dir is None else Path(model_dir) / f"MANO_{side.upper()}.pkl"
        data = load_mano_file(path)
        if side == "left" and model_dir is not None:
            data["shapedirs"] = _fixed_left_shapedirs(data["shapedirs"], Path(model_dir) / "MANO_RIGHT.pkl")
        data = subdivide_mano(data, hd_level)
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for MANO's 10 betas
            self.layer = smplx.MANO(
                model_path=str(path), data_struct=Struct(**data), is_rhand=side == "right",
                use_pca=False, flat_hand_mean=True, num_betas=data["shapedirs"].shape[-1],
                create_global_orient=False, create_hand_pose=False, create_betas=False, create_transl=False,
            )
        self.register_buffer("hands_mean", torch.as_tensor(np.asarray(data["hands_mean"]), dtype=torch.float32))
        self.register_buffer("tip_ids", torch.as_tensor(np.asarray(data["tip_ids"]), dtype=torch.long))
        for name, key in (("palm_ids", "palm_vertex_ids"), ("fingerpad_ids", "fingerpad_vertex_ids")):
            self.register_buffer(name, torch.as_tensor(np.asarray(data.get(key, []), dtype=np.int64)))

    @property
    def faces(self) -> Tensor:  # [F, 3] int64
        return self.layer.faces_tensor

    @property
    def weights(self) -> Tensor:  # [V, 16] skinning weights
        return self.layer.lbs_weights

    @property
    def parents(self) -> Tensor:  # [16] parent joint, -1 for the wrist
        return self.layer.parents

    @property
    def v_template(self) -> Tensor:  # [V, 3] canonical vertices, metres
        return self.layer.v_template

    @property
    def num_betas(self) -> int:
        return self.layer.shapedirs.shape[-1]

    def forward(
        self,
        global_orient: Tensor,  # [B, 3] axis-angle of the wrist
        hand_pose: Tensor,  # [B, 45] absolute axis-angle of the 15 finger joints
        betas: Tensor,  # [B, 10] shape coefficients
        transl: Tensor,  # [B, 3] metres
        v_template: Tensor | None = None,  # [V, 3] or [B, V, 3] canonical mesh, default the model's
    ) -> HandOutput:
        batch = global_orient.shape[0]
        for name, value, width in (("hand_pose", hand_pose, 45), ("betas", betas, self.num_betas),
                                   ("transl", transl, 3), ("global_orient", global_orient, 3)):
            if value.shape != (batch, width):
                raise ValueError(f"{name} must have shape ({batch}, {width}), got {tuple(value.shape)}")
        template = self.layer.v_template if v_template is None else v_template
        vertices, joints = lbs(
            betas, torch.cat([global_orient, hand_pose], dim=1), template, self.layer.shapedirs,
            self.layer.posedirs, self.layer.J_regressor, self.layer.parents, self.layer.lbs_weights,
        )
        joints = torch.cat([joints, vertices[:, self.tip_ids]], dim=1)
        offset = transl[:, None, :]
        return HandOutput(vertices=vertices + offset, joints=joints + offset)

    def vertex_transforms(
        self,
        global_orient: Tensor,  # [B, 3]
        hand_pose: Tensor,  # [B, 45] absolute axis-angle
        betas: Tensor,  # [B, 10]
        transl: Tensor,  # [B, 3] metres
        v_template: Tensor | None = None,  # [V, 3] canonical mesh, default the model's
    ) -> Tensor:  # [B, V, 4, 4]
        """Per-vertex LBS transforms taking the SHAPED canonical mesh to the posed one.

        For a point p attached to vertex v, ``T[v] @ [p, 1]`` moves it as the skin moves (pose
        correctives excluded), which carries free Gaussians along with the hand.
        """
        template = self.layer.v_template if v_template is None else v_template
        shaped = template + blend_shapes(betas, self.layer.shapedirs)
        joints = vertices2joints(self.layer.J_regressor, shaped)
        rotations = batch_rodrigues(torch.cat([global_orient, hand_pose], dim=1).reshape(-1, 3)).reshape(-1, 16, 3, 3)
        _, joint_transforms = batch_rigid_transform(rotations, joints, self.layer.parents, dtype=shaped.dtype)
        per_vertex = torch.einsum("vj,bjkl->bvkl", self.layer.lbs_weights, joint_transforms)
        offset = torch.zeros_like(per_vertex)
        offset[..., :3, 3] = transl[:, None, :]
        return per_vertex + offset

    def rest(self, batch: int = 1) -> HandOutput:
        """The template in the rest pose (zero pose, shape and translation)."""
        zeros = self.v_template.new_zeros
        return self(zeros(batch, 3), zeros(batch, 45), zeros(batch, self.num_betas), zeros(batch, 3))


@torch.no_grad()
def hand_vertices(hand: HandModel, pose: HandPose) -> np.ndarray:
    """[B, V, 3] float64 world vertices (m) of ``hand`` in the B ``pose`` rows (skinned in float32)."""
    return hand(*pose.torch()).vertices.double().numpy()


@torch.no_grad()
def rest_wrists(hand: HandModel, betas: np.ndarray) -> np.ndarray:
    """[B, 3] float64 shaped rest wrist J0 (m; the centre MANO's global rotation turns about) of [B, 10] betas."""
    zeros = torch.zeros(len(betas), 3)
    out = hand(zeros, torch.zeros(len(betas), 45), torch.as_tensor(betas, dtype=torch.float32), zeros)
    return out.joints[:, 0].double().numpy()


def _fixed_left_shapedirs(left: np.ndarray, right_file: Path) -> np.ndarray:
    """Official left MANO has shapedirs[:, 0, :] with the wrong sign (smplx issue 48); flip it.

    Detected as ARCTIC does: the left x-components equal the right ones instead of their negation.
    """
    if not right_file.is_file():
        return left
    right = load_mano_file(right_file)["shapedirs"]
    left = np.array(left, dtype=np.float64)
    if np.abs(left[:, 0, :] - right[:, 0, :]).sum() < 1:
        left[:, 0, :] *= -1
    return left


@dataclass(frozen=True)
class HandConfig:
    """params.yaml ``hand`` section."""

    model_dir: str | None  # folder with MANO_RIGHT.pkl / MANO_LEFT.pkl; None = the open hand
    hd_level: int  # MANO-HD subdivision rounds


def hand_models(cfg: HandConfig) -> dict[Side, HandModel]:
    """Both hands as configured: ``{"right": HandModel, "left": HandModel}``."""
    return {side: HandModel(side, cfg.model_dir, cfg.hd_level) for side in ("right", "left")}
