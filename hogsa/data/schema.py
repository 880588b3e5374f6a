"""Dataset records shared by every reader and writer: cameras and sequences.

Conventions (once for hogsa's data records):
- Every array is a numpy float64 array (``hand_valid`` is bool), metres and radians, validated on
  construction: right shape, no NaN or infinity; poses are ``hogsa.hand.HandPose`` and
  ``hogsa.articulated.ObjectPose`` records of one row per frame. Records are frozen and own copies of their arrays;
  treat those as read-only (they stay writeable because scipy and torch.from_numpy need that).
- Views are numbered as ARCTIC's: 0 egocentric, 1-8 allocentric. ``SequenceRecord.cameras`` always has
  ``NUM_VIEWS`` entries, ``None`` where the dataset has no such view.
- Cameras are OpenCV pinholes (x right, y down, z forward): ``world2cam`` 4×4 and ``K`` 3×3 with
  hogsa's pixel-centre convention, centres at integer + 0.5 (as gsplat). Dataset files store OpenCV
  calibrations with centres at integers; readers convert with ``K_from_dataset`` and writers with
  ``K_to_dataset`` (cx, cy shifted by half a pixel).
- The egocentric camera moves: its per-frame extrinsics are ``SequenceRecord.ego_world2cam`` [F, 4, 4] and
  ``cameras[0]`` holds its intrinsics, size and distortion with frame 0's extrinsics.
  ``SequenceRecord.camera(view, frame)`` gives the camera of any view at any frame.
- MANO hand pose is ABSOLUTE axis-angle of the 15 finger joints (flat-hand-mean semantics). Betas are
  per frame ([F, 10]); datasets that fit one shape per subject repeat it on every row.
- Images are uint8 [H, W, 3] RGB; part masks uint8 [H, W] with 0 background, 1 right hand, 2 left hand,
  3 object. Both are loaded lazily from paths the dataset's reader supplies.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from hogsa.articulated import ObjectPose
from hogsa.hand import POSE_WIDTHS, HandPose

NUM_VIEWS = 9  # ARCTIC's numbering: 0 egocentric, 1-8 allocentric
EGO_VIEW = 0
SIDES = ("right", "left")
NUM_BETAS = POSE_WIDTHS["betas"]
NUM_HAND_POSE = POSE_WIDTHS["hand_pose"]  # 15 finger joints × axis-angle
MASK_LABELS = {"background": 0, "right": 1, "left": 2, "object": 3}
PIXEL_CENTER_SHIFT = 0.5  # hogsa's pixel centres (integer + 0.5) minus OpenCV's (integer)


def checked_array(value, shape: tuple[int | None, ...], where: str, field: str) -> np.ndarray:
    """``value`` as a float64 array (a copy) of ``shape`` (None: any size), all finite.

    Raises ValueError naming ``where`` (a file or a sequence), the field and the expected shape.
    """
    expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: field {field!r} is not numeric ({err}); expected numbers of shape {expected}") from err
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        raise ValueError(f"{where}: field {field!r} has shape {array.shape}, expected {expected}")
    if not np.isfinite(array).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(f"{where}: field {field!r} holds NaN or infinite values (first at index {bad}); expected finite numbers")
    return array


def K_from_dataset(K: np.ndarray) -> np.ndarray:
    """[3, 3] OpenCV calibration (pixel centres at integers) → hogsa's K (centres at integer + 0.5)."""
    K = np.array(K, dtype=np.float64)
    K[:2, 2] += PIXEL_CENTER_SHIFT
    return K


def K_to_dataset(K: np.ndarray) -> np.ndarray:
    """Inverse of ``K_from_dataset``: hogsa's K → [3, 3] OpenCV calibration as dataset files store it."""
    K = np.array(K, dtype=np.float64)
    K[:2, 2] -= PIXEL_CENTER_SHIFT
    return K


def check_rigid(matrix: np.ndarray, where: str, field: str, atol: float = 1e-3) -> None:
    """Raise ValueError unless [..., 4, 4] ``matrix`` is rigid: last row [0,0,0,1], rotation orthonormal, det +1."""
    rot = matrix[..., :3, :3]
    bottom_ok = np.allclose(matrix[..., 3, :], [0, 0, 0, 1], atol=atol)
    ortho_ok = np.allclose(rot @ np.swapaxes(rot, -1, -2), np.eye(3), atol=atol)
    if not (bottom_ok and ortho_ok and (np.linalg.det(rot) > 0).all()):
        raise ValueError(f"{where}: field {field!r} is not a rigid transform (rotation + translation, last row 0 0 0 1)")


def _checked_hand_pose(pose: HandPose, field: str, frames: int, where: str) -> HandPose:
    """``pose`` as a float64 HandPose (copies) of ``frames`` rows, all finite; raises ValueError
    naming ``where``, the field (``<field>.<name>``) and the expectation."""
    if not isinstance(pose, HandPose):
        raise ValueError(f"{where}: field {field!r} must be a HandPose of {frames} rows, got {type(pose).__name__}")
    return HandPose(*(checked_array(value, (frames, width), where, f"{field}.{name}")
                      for (name, width), value in zip(POSE_WIDTHS.items(), pose)))


def _checked_valid(valid: np.ndarray, field: str, frames: int, where: str) -> np.ndarray:
    """``valid`` as a [frames] bool array (a copy); raises ValueError naming ``where`` and the field."""
    array = np.array(valid)
    if array.dtype != bool or array.shape != (frames,):
        raise ValueError(f"{where}: field {field!r} must be bool of shape ({frames},), got {array.dtype} {array.shape}")
    return array


def _checked_object_pose(pose: ObjectPose, frames: int, where: str) -> ObjectPose:
    """``pose`` as a float64 ObjectPose (copies) of ``frames`` rows, all finite; raises ValueError
    naming ``where`` and the field (``object_pose.<name>``)."""
    if not isinstance(pose, ObjectPose):
        raise ValueError(f"{where}: field 'object_pose' must be an ObjectPose of {frames} rows, got {type(pose).__name__}")
    shapes = {"articulation": (frames,), "rot": (frames, 3), "transl": (frames, 3)}
    return ObjectPose(*(checked_array(value, shape, where, f"object_pose.{name}")
                        for (name, shape), value in zip(shapes.items(), pose)))


@dataclass(frozen=True, eq=False)
class Camera:
    """One pinhole camera (see the module doc for conventions)."""

    K: np.ndarray  # [3, 3] float64 intrinsics, pixels, centres at integer + 0.5
    world2cam: np.ndarray  # [4, 4] float64 world → camera, metres
    width: int  # pixels
    height: int  # pixels
    dist: np.ndarray | None = None  # [8] OpenCV distortion (k1 k2 p1 p2 k3 k4 k5 k6) of the images; None: none

    def __post_init__(self):
        object.__setattr__(self, "K", checked_array(self.K, (3, 3), "Camera", "K"))
        object.__setattr__(self, "world2cam", checked_array(self.world2cam, (4, 4), "Camera", "world2cam"))
        check_rigid(self.world2cam, "Camera", "world2cam")
        if self.dist is not None:
            object.__setattr__(self, "dist", checked_array(self.dist, (8,), "Camera", "dist"))
        for field in ("width", "height"):
            value = getattr(self, field)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Camera: field {field!r} must be a positive integer, got {value!r}")
            object.__setattr__(self, field, int(value))


@dataclass(frozen=True, eq=False)
class SequenceRecord:
    """One recorded (or generated) sequence: cameras, both hands and the object over F frames.

    ``image_file(view, frame)`` and ``mask_file(view, frame)`` are the reader's path functions; the
    latter returns None when the dataset has no part masks for this sequence.
    """

    name: str  # ARCTIC: "sXX/<object>_<action>_NN"
    subject: str
    object_name: str
    frames: int  # F
    cameras: list[Camera | None]  # NUM_VIEWS entries, by ARCTIC view number
    hands: dict[str, HandPose]  # {"right": ..., "left": ...}, F rows each; invalid frames hold finite placeholders
    hand_valid: dict[str, np.ndarray]  # per side [F] bool, False where the dataset has no annotation of the hand
    object_pose: ObjectPose  # F rows: articulation about the revolute axis, axis-angle rot, transl (m)
    ego_world2cam: np.ndarray | None = None  # [F, 4, 4] view 0's per-frame extrinsics; None without view 0
    gender: str | None = None
    image_file: Callable[[int, int], Path] | None = None
    mask_file: Callable[[int, int], Path | None] | None = None

    def __post_init__(self):
        where = f"sequence {self.name}"
        frames = self.frames
        if not isinstance(frames, (int, np.integer)) or frames <= 0:
            raise ValueError(f"{where}: field 'frames' must be a positive integer, got {frames!r}")
        object.__setattr__(self, "frames", int(frames))
        object.__setattr__(self, "object_pose", _checked_object_pose(self.object_pose, frames, where))
        for field in ("hands", "hand_valid"):
            if sorted(getattr(self, field)) != sorted(SIDES):
                raise ValueError(f"{where}: field {field!r} must have keys {SIDES}, got {sorted(getattr(self, field))}")
        object.__setattr__(self, "hands", {side: _checked_hand_pose(self.hands[side], f"hands.{side}", frames, where)
                                           for side in SIDES})
        object.__setattr__(self, "hand_valid", {side: _checked_valid(self.hand_valid[side], f"hand_valid.{side}",
                                                                     frames, where) for side in SIDES})
        cameras = list(self.cameras)
        if len(cameras) != NUM_VIEWS or not all(c is None or isinstance(c, Camera) for c in cameras):
            raise ValueError(f"{where}: field 'cameras' must be {NUM_VIEWS} entries of Camera or None")
        object.__setattr__(self, "cameras", cameras)
        if (cameras[EGO_VIEW] is None) != (self.ego_world2cam is None):
            raise ValueError(f"{where}: field 'ego_world2cam' must be given exactly when cameras[0] is")
        if self.ego_world2cam is not None:
            ego = checked_array(self.ego_world2cam, (frames, 4, 4), where, "ego_world2cam")
            check_rigid(ego, where, "ego_world2cam")
            if not np.allclose(ego[0], cameras[EGO_VIEW].world2cam):
                raise ValueError(f"{where}: field 'cameras[0].world2cam' must equal ego_world2cam[0]")
            object.__setattr__(self, "ego_world2cam", ego)

    @property
    def views(self) -> list[int]:
        """View numbers that have a camera."""
        return [view for view, camera in enumerate(self.cameras) if camera is not None]

    def camera(self, view: int, frame: int) -> Camera:
        """The camera of ``view`` at ``frame`` (per-frame extrinsics for the egocentric view 0)."""
        self._check_view_frame(view, frame)
        camera = self.cameras[view]
        if view == EGO_VIEW:
            return dataclasses.replace(camera, world2cam=self.ego_world2cam[frame])
        return camera

    def image_path(self, view: int, frame: int) -> Path:
        """Where the dataset keeps the image of ``view`` at ``frame``."""
        self._check_view_frame(view, frame)
        if self.image_file is None:
            raise FileNotFoundError(f"sequence {self.name}: has no images (no image_file path function)")
        return Path(self.image_file(view, frame))

    def image(self, view: int, frame: int) -> np.ndarray:
        """uint8 [H, W, 3] RGB image of ``view`` at ``frame``, read from disk now."""
        path = self.image_path(view, frame)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image of sequence {self.name}, view {view}, frame {frame} not found")
        try:
            with Image.open(path) as img:
                image = np.asarray(img.convert("RGB"))
        except OSError as err:  # empty, truncated or not an image
            raise ValueError(f"{path}: image of sequence {self.name}, view {view}, frame {frame} is unreadable "
                             f"({err}); expected a complete JPEG or PNG") from err
        self._check_size(image.shape[:2], view, path)
        return image

    def mask(self, view: int, frame: int) -> np.ndarray | None:
        """uint8 [H, W] part mask (labels in MASK_LABELS) of ``view`` at ``frame``; None if the dataset has none."""
        self._check_view_frame(view, frame)
        path = None if self.mask_file is None else self.mask_file(view, frame)
        if path is None:
            return None
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: part mask of sequence {self.name}, view {view}, frame {frame} not found")
        try:
            with Image.open(path) as img:
                if img.mode not in ("L", "P"):
                    raise ValueError(f"{path}: part mask must be a single-channel 8-bit PNG, found mode {img.mode}")
                mask = np.asarray(img, dtype=np.uint8)
        except OSError as err:  # empty, truncated or not an image
            raise ValueError(f"{path}: part mask of sequence {self.name}, view {view}, frame {frame} is unreadable "
                             f"({err}); expected a complete single-channel 8-bit PNG") from err
        self._check_size(mask.shape, view, path)
        return mask

    def _check_view_frame(self, view: int, frame: int) -> None:
        if not 0 <= view < NUM_VIEWS or self.cameras[view] is None:
            raise ValueError(f"sequence {self.name}: view {view} is absent; present views are {self.views}")
        if not 0 <= frame < self.frames:
            raise ValueError(f"sequence {self.name}: frame {frame} is out of range [0, {self.frames})")

    def _check_size(self, shape: tuple[int, int], view: int, path: Path) -> None:
        camera = self.cameras[view]
        if tuple(shape) != (camera.height, camera.width):
            raise ValueError(
                f"{path}: size {shape[1]}×{shape[0]} differs from view {view}'s camera ({camera.width}×{camera.height})"
            )
