"""Read and write H2O sequences (REFERENCES §7) as hogsa's ``SequenceRecord``, and H2O object meshes.

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
egocentric camera 4 per frame as ``SequenceRecord.ego_world2cam``. When ``cam`` is 4 the world moves with
the head, so view 0 has identity extrinsics at every frame and no other view is given.

Views follow ARCTIC's numbering: H2O camera 4 (egocentric) is view 0, cameras 0-3 are views 1-4.
Pose is already absolute (flat_hand_mean=True), so no hands_mean applies. H2O has no part masks.

Writing (``write_sequence``) is the inverse: every camera folder gets the annotations in its own frame,
and ``cam_pose`` takes the sequence's world as H2O's world. A hand moved into a camera's frame by the
world → camera transform (R, t) gets global orient R·R_g and transl R (J0 + transl) + t − J0
(``hogsa.data.grasp.compose``), so skinning the written parameters gives the world vertices mapped
into that camera.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from scipy.spatial.transform import Rotation

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.data.grasp import compose
from hogsa.data.schema import (
    EGO_VIEW,
    NUM_BETAS,
    NUM_VIEWS,
    SIDES,
    Camera,
    K_from_dataset,
    K_to_dataset,
    SequenceRecord,
    check_rigid,
    checked_array,
)
from hogsa.geometry import axis_angle_to_matrix, invert_rigid, rigid_matrix
from hogsa.hand import HandModel, HandPose, rest_wrists
from hogsa.io import atomic_directory, save_image

H2O_OBJECTS = {1: "book", 2: "espresso", 3: "lotion", 4: "spray", 5: "milk", 6: "cocoa", 7: "chips", 8: "cappuccino"}
EGO_CAM = 4
NUM_CAMS = 5
HAND_POSE_DIRS = ("hand_pose_MANO", "hand_pose_mano")
OBJ_POSE_DIRS = ("obj_pose_RT", "obj_pose_rt")
HAND_FIELDS = 62  # valid, trans 3, global orient 3, finger pose 45, betas 10
HAND_OFFSETS = {"left": 0, "right": HAND_FIELDS}
MAX_OBJECT_EXTENT_M = 2.0  # a larger H2O mesh is not in metres
OBJ_DIGITS = 10  # decimals of the OBJ files written: 1e-10 m, below float32's resolution of a metre-sized mesh


def view_of_cam(cam: int) -> int:
    """ARCTIC-style view number of H2O camera ``cam`` (4 → 0, 0-3 → 1-4)."""
    return EGO_VIEW if cam == EGO_CAM else cam + 1


def cam_of_view(view: int) -> int:
    """H2O camera of view number ``view`` (inverse of ``view_of_cam``)."""
    return EGO_CAM if view == EGO_VIEW else view - 1


def read_sequence(seq_dir: str | Path, cam: int = 0) -> SequenceRecord:
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

    return SequenceRecord(
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

    Reads the mesh found by ``find_object_mesh`` with trimesh (metres, as H2O's poses), its UVs in the
    OBJ convention and its material's texture image; without UVs or texture the object is a flat
    grey. Vertices that trimesh splits where texture coordinates differ are welded back (one vertex
    per position, in file order; the UVs stay per face corner), so a closed mesh stays closed for the
    inside tests of contact and penetration. The diameter is the largest vertex-to-vertex distance.
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
    first_of_position, vertex_of = trimesh.grouping.unique_rows(vertices, keep_order=True)
    vertices, faces = vertices[first_of_position], vertex_of[faces]
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


def write_sequence(
    root: str | Path,
    seq: SequenceRecord,
    hands: Mapping[str, HandModel],
    images: Callable[[int, int], np.ndarray] | None = None,
) -> Path:
    """Write ``seq`` in H2O's layout as the folder ``root/<seq.name>`` (module doc); returns that folder.

    Views 0-4 become cameras 4, 0-3 (other views are dropped); each camera folder gets its
    intrinsics, per-frame ``cam_pose`` (camera → the sequence's world), and the hands
    (``hand_pose_MANO``, invalid frames with valid 0) and the object (``obj_pose_RT``) in that camera's
    frame. ``hands`` ({"right", "left"}: HandModel) give the rest wrists J0 of the frame change.
    ``images(view, frame)`` → uint8 [H, W, 3] is written as ``rgb/%06d.png`` for every written view
    and frame (None: no images). The folder is written whole (``hogsa.io.atomic_directory``).
    Raises ValueError for a name that is not "<subject>/<scene>/<seq>", an object that is not one of
    ``H2O_OBJECTS`` or one that is articulated (H2O's objects are rigid), or no view 0-4.
    """
    class_id = _class_id(seq)
    views = [view for view in seq.views if view < NUM_CAMS]
    if not views:
        raise ValueError(f"sequence {seq.name}: field 'cameras' has views {seq.views}; H2O's are 0-{NUM_CAMS - 1}")
    wrists = {side: rest_wrists(hands[side], seq.hands[side].betas) for side in SIDES}  # [F, 3] each
    folder = Path(root) / seq.name
    with atomic_directory(folder) as staging:
        for view in views:
            cam_dir = staging / f"cam{cam_of_view(view)}"
            camera = seq.cameras[view]
            dataset_K = K_to_dataset(camera.K)
            _write_numbers(cam_dir / "cam_intrinsics.txt", [dataset_K[0, 0], dataset_K[1, 1], dataset_K[0, 2],
                                                            dataset_K[1, 2], camera.width, camera.height])
            for frame in range(seq.frames):
                _write_frame(cam_dir, seq, view, frame, wrists, class_id)
                if images is not None:
                    _write_image(cam_dir / "rgb" / f"{frame:06d}.png", images(view, frame), seq, view)
    return folder


def write_object(object_root: str | Path, obj: ArticulatedObject) -> Path:
    """Write the rigid ``obj`` as H2O's ``<object_root>/<name>/<name>.obj`` with its UVs, material and
    texture (trimesh's OBJ export; the folder written whole), so that ``read_object`` reads it back;
    returns the mesh's path. Vertices are split where face corners give them different UVs.
    Raises ValueError for an articulated object or a name that is not one of ``H2O_OBJECTS``.
    """
    import trimesh
    from PIL import Image

    if obj.name not in H2O_OBJECTS.values():
        raise ValueError(f"object {obj.name!r}: not an H2O object; expected one of {sorted(H2O_OBJECTS.values())}")
    if obj.articulated or bool(obj.top_mask.any()):
        raise ValueError(f"object {obj.name!r}: is articulated; H2O's objects are rigid")
    corners = np.concatenate([obj.faces.numpy().reshape(-1, 1), obj.face_uvs.double().numpy().reshape(-1, 2)], axis=1)
    unique_corners, corner_vertex = np.unique(corners, axis=0, return_inverse=True)  # one vertex per (vertex, uv)
    material = trimesh.visual.material.SimpleMaterial(image=Image.fromarray(obj.texture.numpy()), name=obj.name)
    mesh = trimesh.Trimesh(obj.vertices.double().numpy()[unique_corners[:, 0].astype(np.int64)],
                           corner_vertex.reshape(-1, 3), process=False,
                           visual=trimesh.visual.TextureVisuals(uv=unique_corners[:, 1:], material=material))
    text, files = trimesh.exchange.obj.export_obj(mesh, return_texture=True, mtl_name=f"{obj.name}.mtl",
                                                  digits=OBJ_DIGITS)
    folder = Path(object_root) / obj.name
    with atomic_directory(folder) as staging:
        (staging / f"{obj.name}.obj").write_text(text)
        for name, data in files.items():
            (staging / name).write_bytes(data)
    return folder / f"{obj.name}.obj"


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


def _class_id(seq: SequenceRecord) -> int:
    """H2O's class id of ``seq``'s object, after checking that ``seq`` can be written as H2O."""
    parts = seq.name.split("/")
    if len(parts) != 3 or parts[0] != seq.subject:
        raise ValueError(f"sequence {seq.name}: field 'name' must be '<subject>/<scene>/<seq>' with the subject "
                         f"{seq.subject!r} first, as H2O's folders")
    class_ids = {name: class_id for class_id, name in H2O_OBJECTS.items()}
    if seq.object_name not in class_ids:
        raise ValueError(f"sequence {seq.name}: field 'object_name' is {seq.object_name!r}; H2O's objects are "
                         f"{sorted(class_ids)}")
    if np.any(seq.object_pose.articulation != 0):
        raise ValueError(f"sequence {seq.name}: field 'object_pose.articulation' is not 0; H2O's objects are rigid")
    return class_ids[seq.object_name]


def _write_numbers(path: Path, values) -> None:
    """``values`` on one line, each float written to round-trip exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(" ".join(repr(float(value)) for value in np.ravel(values)) + "\n")


def _write_frame(cam_dir: Path, seq: SequenceRecord, view: int, frame: int, wrists: dict[str, np.ndarray],
                 class_id: int) -> None:
    """cam_pose, hand_pose_MANO and obj_pose_RT of ``frame`` in ``view``'s camera frame."""
    world2cam = seq.camera(view, frame).world2cam
    rotation, translation = world2cam[:3, :3], world2cam[:3, 3]
    stem = f"{frame:06d}"
    _write_numbers(cam_dir / "cam_pose" / f"{stem}.txt", invert_rigid(torch.from_numpy(world2cam)).numpy())
    row = []
    for side in HAND_OFFSETS:  # left first
        pose = compose(rotation, translation, seq.hands[side].take(frame), wrists[side][frame])
        row += [float(seq.hand_valid[side][frame]), *pose.transl[0], *pose.global_orient[0], *pose.hand_pose[0],
                *pose.betas[0]]
    _write_numbers(cam_dir / HAND_POSE_DIRS[0] / f"{stem}.txt", row)
    obj = seq.object_pose.take(frame)
    obj2world = rigid_matrix(axis_angle_to_matrix(torch.from_numpy(obj.rot)), torch.from_numpy(obj.transl))[0]
    _write_numbers(cam_dir / OBJ_POSE_DIRS[0] / f"{stem}.txt", [class_id, *(world2cam @ obj2world.numpy()).ravel()])


def _write_image(path: Path, image: np.ndarray, seq: SequenceRecord, view: int) -> None:
    """Check ``image`` against the view's camera size and write it as PNG."""
    camera = seq.cameras[view]
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.shape != (camera.height, camera.width, 3):
        raise ValueError(f"{path}: image of sequence {seq.name} view {view} must be uint8 "
                         f"[{camera.height}, {camera.width}, 3], got {image.dtype} {list(image.shape)}")
    save_image(path, image)
