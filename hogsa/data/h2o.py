"""Read H2O sequences (REFERENCES §7) into hogsa's ``Sequence``, and H2O object meshes.

Layout of one sequence ``<root>/subjectN/<scene>/<seq>/`` (per-frame files named ``%06d``)::

    cam{0..4}/                    cam0-3 static, cam4 egocentric (head-mounted, moving)
      rgb/%06d.png                1280×720 colour
      cam_intrinsics.txt          fx fy cx cy width height
      cam_pose/%06d.txt           16 floats, row-major 4×4 camera → H2O world
      hand_pose_MANO/%06d.txt     124 floats (folder also spelt hand_pose_mano): per hand (left first,
                                  then right) valid, trans (3) m, global orient (3), finger pose (45),
                                  betas (10); in this camera's frame, MANO flat_hand_mean=True
      obj_pose_RT/%06d.txt        17 floats (folder also spelt obj_pose_rt): class id, row-major 4×4
                                  object → this camera

Frame choice. H2O annotates hands and object in the frame of the camera whose folder holds them.
Moving a MANO hand to another frame is not a rigid change of ``global_orient``/``transl`` alone (MANO
rotates about the rest wrist joint J0, which depends on betas), so the reader keeps the annotations of camera
``cam`` untouched and makes that camera's frame the sequence's world: its ``world2cam`` is the
identity. The other cameras found in the sequence folder are expressed in that world through
``cam_pose``: static cameras (0-3) from frame 0's pose (they do not move within a sequence), the
egocentric camera 4 per frame as ``Sequence.ego_world2cam``. When ``cam`` is 4 the world moves with
the head, so view 0 has identity extrinsics at every frame and no other view is given.

Views follow ARCTIC's numbering: H2O camera 4 (egocentric) is view 0, cameras 0-3 are views 1-4.
Pose is already absolute (flat_hand_mean=True), so no hands_mean applies. H2O has no part masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from scipy.spatial.transform import Rotation

from hogsa.data.schema import (
    EGO_VIEW,
    NUM_BETAS,
    NUM_VIEWS,
    Camera,
    K_from_dataset,
    Sequence,
    check_rigid,
    checked_array,
)
from hogsa.geometry import invert_rigid
from hogsa.hand import HandPose
from hogsa.articulated import ArticulatedObject, ObjectPose

H2O_OBJECTS = {1: "book", 2: "espresso", 3: "lotion", 4: "spray", 5: "milk", 6: "cocoa", 7: "chips", 8: "cappuccino"}
EGO_CAM = 4
NUM_CAMS = 5
HAND_POSE_DIRS = ("hand_pose_MANO", "hand_pose_mano")
OBJ_POSE_DIRS = ("obj_pose_RT", "obj_pose_rt")
HAND_FIELDS = 62  # valid, trans 3, global orient 3, finger pose 45, betas 10
HAND_OFFSETS = {"left": 0, "right": HAND_FIELDS}
MAX_OBJECT_EXTENT_M = 2.0  # a larger H2O mesh is not in metres


def view_of_cam(cam: int) -> int:
    """ARCTIC-style view number of H2O camera ``cam`` (4 → 0, 0-3 → 1-4)."""
    return EGO_VIEW if cam == EGO_CAM else cam + 1


def cam_of_view(view: int) -> int:
    """H2O camera of view number ``view`` (inverse of ``view_of_cam``)."""
    return EGO_CAM if view == EGO_VIEW else view - 1


def read_sequence(seq_dir: str | Path, cam: int = 0) -> Sequence:
    """Read the H2O sequence folder ``seq_dir`` with the annotations of camera ``cam`` (0-4).

    The sequence's world is camera ``cam``'s frame (see the module doc). ``betas`` of each hand are
    those of its first valid frame on every frame (H2O fits one shape per subject; zeros if the hand
    is never valid).
    Missing files raise FileNotFoundError, malformed ones ValueError, both naming the file and field.
    """
    seq_dir = Path(seq_dir)
    if cam not in range(NUM_CAMS):
        raise ValueError(f"cam must be one of 0-{NUM_CAMS - 1}, got {cam!r}")
    cam_dir = seq_dir / f"cam{cam}"
    if not cam_dir.is_dir():
        raise FileNotFoundError(f"{cam_dir}: camera folder not found in the H2O sequence {seq_dir}")
    hand_dir = _find_dir(cam_dir, HAND_POSE_DIRS, "per-frame MANO annotations (124 floats each)")
    stems = _frame_stems(hand_dir)
    rows = np.stack([_read_floats(hand_dir / f"{stem}.txt", 2 * HAND_FIELDS, hand_dir.name) for stem in stems])
    hands = {side: _hand_pose(rows[:, offset : offset + HAND_FIELDS]) for side, offset in HAND_OFFSETS.items()}

    obj_dir = _find_dir(cam_dir, OBJ_POSE_DIRS, "per-frame object poses (class id + 4×4 object→camera)")
    object_poses = [_read_object_pose(obj_dir / f"{stem}.txt") for stem in stems]
    extra = sorted({path.name for path in obj_dir.glob("*.txt")} - {f"{stem}.txt" for stem in stems})
    if extra:
        raise ValueError(f"{hand_dir}: no file for frames {extra} that {obj_dir.name} has; "
                         "expected the same per-frame files in both")
    classes = sorted({class_id for class_id, _ in object_poses})
    if len(classes) != 1:
        raise ValueError(f"{obj_dir}: field 'class id' takes the values {classes}; expected one object per sequence")
    obj2cam = np.stack([matrix for _, matrix in object_poses])

    cameras, ego_world2cam = _cameras(seq_dir, cam, stems)
    frames = len(stems)

    def image_file(view: int, frame: int) -> Path:
        return seq_dir / f"cam{cam_of_view(view)}" / "rgb" / f"{stems[frame]}.png"

    return Sequence(
        name="/".join(seq_dir.parts[-3:]),  # subjectN/<scene>/<seq>
        subject=seq_dir.parts[-3] if len(seq_dir.parts) >= 3 else seq_dir.name,
        object_name=H2O_OBJECTS[classes[0]],
        frames=frames,
        cameras=cameras,
        hands=hands,
        hand_valid={side: rows[:, offset] != 0 for side, offset in HAND_OFFSETS.items()},
        object_pose=ObjectPose(articulation=np.zeros(frames), rot=Rotation.from_matrix(obj2cam[:, :3, :3]).as_rotvec(),
                               transl=obj2cam[:, :3, 3]),
        ego_world2cam=ego_world2cam,
        image_file=image_file,
    )


def find_object_mesh(object_dir: str | Path, name: str) -> Path:
    """``<object_dir>/<name>/<name>.obj``, else the only ``.obj`` in ``<object_dir>/<name>/``
    (H2O's spray is ``spray/lotion_spray.obj``)."""
    folder = Path(object_dir) / name
    if (folder / f"{name}.obj").is_file():
        return folder / f"{name}.obj"
    meshes = sorted(folder.glob("*.obj")) if folder.is_dir() else []
    if len(meshes) != 1:
        raise FileNotFoundError(
            f"{folder}: expected the H2O object mesh {name}.obj or a single .obj file, found {[m.name for m in meshes]}"
        )
    return meshes[0]


def read_object(object_dir: str | Path, name: str):
    """H2O object ``name`` as a rigid ``hogsa.articulated.ArticulatedObject`` (top_mask all False).

    Reads the mesh found by ``find_object_mesh`` with trimesh (metres, as H2O's poses; vertices are
    split where texture coordinates differ), its UVs in the OBJ convention and its material's
    texture image; without UVs or texture the object is a flat grey. The diameter is the largest
    vertex-to-vertex distance.
    """
    import trimesh

    path = find_object_mesh(object_dir, name)
    mesh = trimesh.load(path, force="mesh")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(vertices) < 4 or len(faces) == 0 or not np.isfinite(vertices).all():
        raise ValueError(f"{path}: field 'v'/'f' must give a finite mesh, got {len(vertices)} vertices, {len(faces)} faces")
    extent = float(np.linalg.norm(np.ptp(vertices, axis=0)))
    if extent > MAX_OBJECT_EXTENT_M:
        raise ValueError(f"{path}: mesh spans {extent:.1f} units; H2O object meshes are expected in metres")
    uv = getattr(mesh.visual, "uv", None)
    material = getattr(mesh.visual, "material", None)
    image = getattr(material, "image", None) or getattr(material, "baseColorTexture", None)
    if uv is None or image is None:
        face_uvs = np.full((len(faces), 3, 2), 0.5)
        texture = np.full((1, 1, 3), 128, dtype=np.uint8)
    else:
        face_uvs = np.asarray(uv, dtype=np.float64)[faces]
        texture = np.asarray(image.convert("RGB"), dtype=np.uint8)
    hull = vertices[ConvexHull(vertices).vertices]
    return ArticulatedObject(
        name=name,
        vertices=torch.as_tensor(vertices, dtype=torch.float32),
        faces=torch.as_tensor(faces),
        top_mask=torch.zeros(len(vertices), dtype=torch.bool),
        face_uvs=torch.as_tensor(face_uvs, dtype=torch.float32),
        texture=torch.as_tensor(texture.copy()),
        articulated=False,
        diameter=float(pdist(hull).max()),
    )


def _find_dir(cam_dir: Path, names: tuple[str, ...], contents: str) -> Path:
    """The first of ``names`` that exists under ``cam_dir``."""
    for name in names:
        if (cam_dir / name).is_dir():
            return cam_dir / name
    raise FileNotFoundError(f"{cam_dir}: no {' or '.join(names)} folder; it should hold {contents}")


def _frame_stems(folder: Path) -> list[str]:
    """File stems "000000", "000001", ... of ``folder``'s .txt files, checked to be contiguous from 0."""
    stems = sorted(path.stem for path in folder.glob("*.txt"))
    if not stems:
        raise FileNotFoundError(f"{folder}: no per-frame %06d.txt files")
    expected = [f"{index:06d}" for index in range(len(stems))]
    if stems != expected:
        index = next(i for i, (stem, want) in enumerate(zip(stems, expected)) if stem != want)
        raise ValueError(f"{folder}: frame files must be numbered 000000.txt onwards without gaps; "
                         f"expected {expected[index]}.txt, found {stems[index]}.txt")
    return stems


def _read_floats(path: Path, count: int, field: str) -> np.ndarray:
    """The ``count`` whitespace-separated numbers of ``path`` as float64, all finite."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; it should hold the {count} numbers of {field}")
    try:
        values = np.array(path.read_text().split(), dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{path}: field {field!r} holds non-numeric text ({err}); expected {count} numbers") from err
    return checked_array(values, (count,), str(path), field)


def _hand_pose(rows: np.ndarray) -> HandPose:
    """HandPose of one hand's [F, 62] rows (valid, trans, global orient, pose, betas); every frame gets
    the betas of the first valid one (zeros if none is)."""
    valid = rows[:, 0] != 0
    first_valid = int(np.argmax(valid)) if valid.any() else None
    betas = rows[first_valid, 52 : 52 + NUM_BETAS] if first_valid is not None else np.zeros(NUM_BETAS)
    return HandPose(global_orient=rows[:, 4:7], hand_pose=rows[:, 7:52], betas=np.tile(betas, (len(rows), 1)),
                    transl=rows[:, 1:4])


def _read_object_pose(path: Path) -> tuple[int, np.ndarray]:
    """(class id, [4, 4] object → camera) of one obj_pose_RT file."""
    values = _read_floats(path, 17, path.parent.name)
    class_id = int(values[0])
    if class_id != values[0] or class_id not in H2O_OBJECTS:
        raise ValueError(f"{path}: field 'class id' is {values[0]}, expected one of {H2O_OBJECTS}")
    matrix = values[1:].reshape(4, 4)
    check_rigid(matrix, str(path), "object→camera")
    return class_id, matrix


def _read_cam2world(path: Path) -> np.ndarray:
    matrix = _read_floats(path, 16, "cam_pose").reshape(4, 4)
    check_rigid(matrix, str(path), "cam_pose")
    return matrix


def _intrinsics(cam_dir: Path) -> tuple[np.ndarray, int, int]:
    """(K in hogsa's convention, width, height) from ``cam_intrinsics.txt``."""
    path = cam_dir / "cam_intrinsics.txt"
    fx, fy, cx, cy, width, height = _read_floats(path, 6, "cam_intrinsics (fx fy cx cy width height)")
    if min(width, height) <= 0 or width != int(width) or height != int(height):
        raise ValueError(f"{path}: field 'width height' is {width:g} {height:g}, expected positive integers")
    return K_from_dataset([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]), int(width), int(height)


def _cameras(seq_dir: Path, cam: int, stems: list[str]) -> tuple[list[Camera | None], np.ndarray | None]:
    """Cameras of every camera folder present, in camera ``cam``'s frame, and view 0's [F, 4, 4] extrinsics."""
    cameras: list[Camera | None] = [None] * NUM_VIEWS
    identity = np.tile(np.eye(4), (len(stems), 1, 1))
    if cam == EGO_CAM:
        K, width, height = _intrinsics(seq_dir / f"cam{cam}")
        cameras[EGO_VIEW] = Camera(K=K, world2cam=np.eye(4), width=width, height=height)
        return cameras, identity
    world2h2o = _read_cam2world(seq_dir / f"cam{cam}" / "cam_pose" / f"{stems[0]}.txt")  # this world → H2O world
    ego_world2cam = None
    for other in range(NUM_CAMS):
        cam_dir = seq_dir / f"cam{other}"
        if not cam_dir.is_dir():
            continue
        K, width, height = _intrinsics(cam_dir)
        if other == EGO_CAM:
            cam2h2o = np.stack([_read_cam2world(cam_dir / "cam_pose" / f"{stem}.txt") for stem in stems])
            ego_world2cam = invert_rigid(torch.from_numpy(cam2h2o)).numpy() @ world2h2o
            world2cam = ego_world2cam[0]
        elif other == cam:
            world2cam = np.eye(4)
        else:
            cam2h2o = _read_cam2world(cam_dir / "cam_pose" / f"{stems[0]}.txt")
            world2cam = invert_rigid(torch.from_numpy(cam2h2o)).numpy() @ world2h2o
        cameras[view_of_cam(other)] = Camera(K=K, world2cam=world2cam, width=width, height=height)
    return cameras, ego_world2cam
