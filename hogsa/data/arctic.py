"""Read the ARCTIC on-disk layout (real ARCTIC and hogsa's embedded dataset share it; ``arctic_writer``
writes it).

Layout under ``root`` (see REFERENCES §4)::

    splits_json/protocol_p1.json        {"train": ["sXX/<seq>", ...], "val": [...], "test": [...]}
    meta/misc.json                       per subject: world2cam (8,4,4), intris_mat (8,3,3) of views 1-8,
                                         image_size (9 × [W,H], index 0 = ego), ioi_offset, gender
    meta/object_vtemplates/<object>/     object template (read by hogsa.data.arctic_objects)
    raw_seqs/sXX/<seq>.mano.npy          pickled dict {right, left}: rot (F,3), pose (F,45) relative to
                                         MANO's hands_mean, trans (F,3) m, shape (10,) or (F,10), fitting_err
    raw_seqs/sXX/<seq>.object.npy        (F,7): articulation rad, rot axis-angle (3), trans MILLIMETRES (3)
    raw_seqs/sXX/<seq>.egocam.dist.npy   optional pickled dict: R_k_cam_np (F,3,3), T_k_cam_np (F,3,1) m
                                         (world → ego camera), intrinsics (3,3), dist8 (8,)
    images/sXX/<seq>/<view>/%05d.jpg     image index = frame + ioi_offset
    masks/sXX/<seq>/<view>/%05d.png      hogsa's part masks (not in real ARCTIC), same numbering

Conversions at this edge: object translation mm ↔ m; hand pose hands_mean-relative ↔ absolute
(absolute = stored + hands_mean, per side, given by the caller: ``HandModel(side).hands_mean``; None
means zeros, right for hogsa's open hand); intrinsics OpenCV ↔ hogsa's pixel centres (see
``schema``). Pickled files are read with ``hogsa.safe_pickle`` (numpy classes only). In misc.json a view
with image size [0, 0] is absent (hogsa's writer uses this for datasets with fewer views; real ARCTIC
has all nine). ARCTIC has no per-hand validity: every frame reads as valid, and the writer refuses
invalid frames rather than drop them silently.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hogsa import safe_pickle
from hogsa.articulated import ObjectPose
from hogsa.data.schema import (
    EGO_VIEW,
    NUM_BETAS,
    NUM_HAND_POSE,
    NUM_VIEWS,
    SIDES,
    Camera,
    K_from_dataset,
    SequenceRecord,
    check_rigid,
    checked_array,
)
from hogsa.hand import HandPose

SPLITS_FILE = "splits_json/protocol_p1.json"
MISC_FILE = "meta/misc.json"
MM_PER_M = 1000.0
_NAME = re.compile(r"^(?P<subject>[^/]+)/(?P<object>[^/]+)_(?P<action>[^_/]+)_(?P<index>\d+)$")


def parse_name(name: str) -> tuple[str, str, str]:
    """Split "sXX/<object>_<action>_NN" into (subject, sequence folder name, object name)."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"sequence name {name!r} is not of the form 'sXX/<object>_<action>_NN'")
    return match["subject"], name.split("/")[1], match["object"]


def list_sequences(root: str | Path, split: str) -> list[str]:
    """SequenceRecord names ("sXX/<seq>") of ``split`` in ``root/splits_json/protocol_p1.json``, each checked."""
    path = Path(root) / SPLITS_FILE
    splits = read_json(path, 'the split lists {"train": ["sXX/<seq>", ...], "val": [...], "test": [...]}')
    if split not in splits:
        raise ValueError(f"{path}: unknown split {split!r}; valid splits are {sorted(splits)}")
    names = splits[split]
    if not isinstance(names, list):
        raise ValueError(f"{path}: field {split!r} is a {type(names).__name__}, expected a list of 'sXX/<seq>' names")
    for index, name in enumerate(names):
        if not isinstance(name, str) or _NAME.match(name) is None:
            raise ValueError(f"{path}: field '{split}[{index}]' is {name!r}, expected 'sXX/<object>_<action>_NN'")
    return list(names)


def read_sequence(root: str | Path, name: str, hands_mean: Mapping[str, np.ndarray] | None = None) -> SequenceRecord:
    """Read sequence ``name`` ("sXX/<object>_<action>_NN") of the ARCTIC layout under ``root``.

    ``hands_mean``: {"right": [45], "left": [45]} of the MANO model the poses were fitted with (ARCTIC
    stores pose relative to it); None means zeros. Each hand's ``shape`` fills the betas of every
    frame; a (F,10) one reads as its first frame's (ARCTIC fits one shape per subject). Missing files
    raise FileNotFoundError, malformed ones ValueError, both naming the file and field; a pickled file
    that is truncated or names a class other than numpy's raises pickle.UnpicklingError naming the file.
    """
    root = Path(root)
    subject, seq, object_name = parse_name(name)
    raw = root / "raw_seqs" / subject
    hands = _read_mano(raw / f"{seq}.mano.npy", hands_mean_or_zeros(hands_mean))
    obj_file = raw / f"{seq}.object.npy"
    obj = _read_object_poses(obj_file)
    frames = obj.shape[0]
    for side, pose in hands.items():
        if len(pose) != frames:
            raise ValueError(f"{raw / f'{seq}.mano.npy'}: field {side!r} has {len(pose)} frames, {obj_file} has "
                             f"{frames}; expected the same frames in both")

    misc_path = root / MISC_FILE
    meta = read_subject_entry(misc_path, subject)
    cameras = _allocentric_cameras(meta, misc_path, subject)
    ego_world2cam = None
    ego_file = raw / f"{seq}.egocam.dist.npy"
    if ego_file.is_file():
        cameras[EGO_VIEW], ego_world2cam = _read_ego(ego_file, frames, meta["image_size"][EGO_VIEW], misc_path)
    offset = meta["ioi_offset"]
    masks = root / "masks" / subject / seq

    def image_file(view: int, frame: int) -> Path:
        return root / "images" / subject / seq / str(view) / f"{frame + offset:05d}.jpg"

    def mask_file(view: int, frame: int) -> Path | None:  # None: this sequence has no masks
        return masks / str(view) / f"{frame + offset:05d}.png" if masks.is_dir() else None

    return SequenceRecord(
        name=name,
        subject=subject,
        object_name=object_name,
        frames=frames,
        cameras=cameras,
        hands=hands,
        hand_valid={side: np.ones(frames, dtype=bool) for side in SIDES},  # ARCTIC has no per-hand validity
        object_pose=ObjectPose(articulation=obj[:, 0], rot=obj[:, 1:4], transl=obj[:, 4:7] / MM_PER_M),
        ego_world2cam=ego_world2cam,
        gender=meta["gender"],
        image_file=image_file,
        mask_file=mask_file,
    )


# ----------------------------------------------------------------------------------------------------
# Reading helpers (the first three serve the writer too)
# ----------------------------------------------------------------------------------------------------
def read_json(path: Path, contents: str) -> Any:
    """The JSON value in ``path``; FileNotFoundError or ValueError naming the file and its ``contents``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; it should hold {contents}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); it should hold {contents}") from err


def hands_mean_or_zeros(hands_mean: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """{side: [45]} float64, zeros when None."""
    if hands_mean is None:
        return {side: np.zeros(NUM_HAND_POSE) for side in SIDES}
    missing = [side for side in SIDES if side not in hands_mean]
    if missing:
        raise ValueError(f"hands_mean: missing sides {missing}; expected {{'right': [45], 'left': [45]}}")
    return {side: checked_array(hands_mean[side], (NUM_HAND_POSE,), "hands_mean", side) for side in SIDES}


def _field(record: Mapping[str, Any], key: str, path: Path, prefix: str = "") -> Any:
    if key not in record:
        raise ValueError(f"{path}: field {prefix + key!r} is missing")
    return record[key]


def _load_pickled_dict(path: Path, contents: str) -> dict[str, Any]:
    """A pickled dict (``np.save`` of a dict), read with the restricted unpickler."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; it should hold {contents}")
    data = safe_pickle.load(path)
    if isinstance(data, np.ndarray) and data.dtype == object and data.shape == ():
        data = data.item()
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a pickled dict holding {contents}, found {type(data).__name__}")
    return data


def _read_mano(path: Path, hands_mean: dict[str, np.ndarray]) -> dict[str, HandPose]:
    """Both hands of a ``.mano.npy``, pose made absolute with ``hands_mean``, the shape on every frame."""
    data = _load_pickled_dict(path, "the MANO parameters {right, left} of each frame")
    hands = {}
    for side in SIDES:
        record = _field(data, side, path)
        if not isinstance(record, dict):
            raise ValueError(f"{path}: field {side!r} is a {type(record).__name__}, expected a dict of rot, pose, trans, shape")
        rot = checked_array(_field(record, "rot", path, f"{side}."), (None, 3), str(path), f"{side}.rot")
        frames = rot.shape[0]
        pose = checked_array(_field(record, "pose", path, f"{side}."), (frames, NUM_HAND_POSE), str(path), f"{side}.pose")
        trans = checked_array(_field(record, "trans", path, f"{side}."), (frames, 3), str(path), f"{side}.trans")
        shape = _field(record, "shape", path, f"{side}.")
        if np.ndim(shape) == 2:  # per-frame copies of the subject's one shape: take the first frame's
            betas = checked_array(shape, (frames, NUM_BETAS), str(path), f"{side}.shape")[0]
        else:
            betas = checked_array(shape, (NUM_BETAS,), str(path), f"{side}.shape")
        hands[side] = HandPose(global_orient=rot, hand_pose=pose + hands_mean[side],
                               betas=np.tile(betas, (frames, 1)), transl=trans)
    if len(hands["right"]) != len(hands["left"]):
        raise ValueError(f"{path}: field 'right' has {len(hands['right'])} frames, 'left' {len(hands['left'])}; "
                         "expected the same frames for both hands")
    return hands


def _read_object_poses(path: Path) -> np.ndarray:
    """(F,7) object poses as stored: articulation rad, axis-angle, translation mm."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; it should hold the (F,7) object poses "
                                "[articulation rad, axis-angle (3), translation mm (3)]")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as err:  # a pickled object, a truncated or an empty file
        raise ValueError(f"{path}: expected a plain (F,7) float array ({err})") from err
    return checked_array(array, (None, 7), str(path), "object pose")


def read_subject_entry(path: Path, subject: str) -> dict[str, Any]:
    """The validated misc.json entry of ``subject`` (arrays as numpy)."""
    misc = read_json(path, "per-subject cameras: world2cam, intris_mat, image_size, ioi_offset, gender")
    if subject not in misc:
        raise ValueError(f"{path}: no entry for subject {subject!r}; subjects present: {sorted(misc)}")
    entry = misc[subject]
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: field {subject!r} is a {type(entry).__name__}, expected an object with "
                         "world2cam, intris_mat, image_size, ioi_offset, gender")
    where = f"{path} [{subject}]"
    sizes = checked_array(_field(entry, "image_size", path, f"{subject}."), (NUM_VIEWS, 2), where, "image_size")
    if (sizes < 0).any() or (sizes != np.round(sizes)).any():
        raise ValueError(f"{where}: field 'image_size' must hold non-negative integers [W, H]")
    offset = _field(entry, "ioi_offset", path, f"{subject}.")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError(f"{where}: field 'ioi_offset' must be a non-negative integer, got {offset!r}")
    return {
        "world2cam": checked_array(_field(entry, "world2cam", path, f"{subject}."), (NUM_VIEWS - 1, 4, 4), where, "world2cam"),
        "intris_mat": checked_array(_field(entry, "intris_mat", path, f"{subject}."), (NUM_VIEWS - 1, 3, 3), where, "intris_mat"),
        "image_size": sizes.astype(int),
        "ioi_offset": offset,
        "gender": entry.get("gender"),
    }


def _allocentric_cameras(meta: dict[str, Any], path: Path, subject: str) -> list[Camera | None]:
    """NUM_VIEWS entries: None for view 0 and for views whose image size is [0, 0]."""
    cameras: list[Camera | None] = [None] * NUM_VIEWS
    for view in range(1, NUM_VIEWS):
        width, height = meta["image_size"][view]
        if width == 0 and height == 0:
            continue
        world2cam = meta["world2cam"][view - 1]
        check_rigid(world2cam, f"{path} [{subject}]", f"world2cam[{view - 1}]")
        cameras[view] = Camera(K=K_from_dataset(meta["intris_mat"][view - 1]), world2cam=world2cam,
                               width=int(width), height=int(height))
    return cameras


def _read_ego(path: Path, frames: int, size: np.ndarray, misc_path: Path) -> tuple[Camera, np.ndarray]:
    """Egocentric camera (intrinsics, size, distortion, frame 0's extrinsics) and [F,4,4] world2cam."""
    data = _load_pickled_dict(path, "the egocentric camera: R_k_cam_np, T_k_cam_np, intrinsics, dist8")
    where = str(path)
    rot = checked_array(_field(data, "R_k_cam_np", path), (frames, 3, 3), where, "R_k_cam_np")
    trans = np.asarray(_field(data, "T_k_cam_np", path))
    trans = checked_array(trans.reshape(frames, 3) if trans.size == frames * 3 else trans, (frames, 3), where, "T_k_cam_np")
    world2cam = np.tile(np.eye(4), (frames, 1, 1))
    world2cam[:, :3, :3], world2cam[:, :3, 3] = rot, trans
    check_rigid(world2cam, where, "R_k_cam_np")
    K = checked_array(_field(data, "intrinsics", path), (3, 3), where, "intrinsics")
    dist = np.asarray(_field(data, "dist8", path))
    dist = checked_array(dist.reshape(-1) if dist.size == 8 else dist, (8,), where, "dist8")
    width, height = (int(s) for s in size)
    if width == 0 or height == 0:
        raise ValueError(f"{misc_path}: field 'image_size[0]' is [0, 0] but {path} gives an egocentric camera")
    return Camera(K=K_from_dataset(K), world2cam=world2cam[0], width=width, height=height, dist=dist), world2cam
