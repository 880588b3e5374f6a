"""Malformed inputs: every reader and loader refuses them with an error naming the file, the field and
what was expected, and leaves the files it read as they were (no temporary or partial output).

Each case writes a small valid fixture (the helpers of test_arctic_io and test_h2o), corrupts one
thing and returns the public call that must fail.
"""

import copy
import json
import os
import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image
from test_arctic_io import NAME, edit_mano, write_arctic_fixture
from test_h2o import hand_row, object_pose, write_h2o_fixture, write_line

from hogsa.config import load_params, section
from hogsa.data import arctic, arctic_objects, h2o
from hogsa.data.dataset import DataConfig, DatasetIndex
from hogsa.hand import HandConfig, hand_models, load_mano_file
from hogsa.open_hand import build_open_hand

ROOT = Path(__file__).resolve().parents[1]
RAW = "raw_seqs/s01"
MANO = f"{RAW}/box_grab_01.mano.npy"
OBJECT = f"{RAW}/box_grab_01.object.npy"
EGOCAM = f"{RAW}/box_grab_01.egocam.dist.npy"
MISC = "meta/misc.json"
SPLITS = "splits_json/protocol_p1.json"
IMAGE = "images/s01/box_grab_01/1/00001.jpg"  # view 1, frame 0 (ioi_offset 1)
MASK = "masks/s01/box_grab_01/1/00001.png"
MARKER = "code-ran"  # what the pickled payloads would create

CASES = []


def case(case_id: str, error: type[Exception], *expected: str):
    """Register the decorated ``setup(root) -> call`` as a case: ``call()`` must raise ``error``
    with every one of ``expected`` in its message."""

    def register(setup):
        CASES.append(pytest.param(setup, error, expected, id=case_id))
        return setup

    return register


class Payload:
    """Pickles as the call ``func(*args)``: a file that would run code when unpickled."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


PAYLOADS = {  # each creates the file ``marker`` when unpickled by a plain unpickler
    "system": lambda marker: Payload(os.system, f"touch {marker}"),
    "open": lambda marker: Payload(open, str(marker), "w"),
}


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def with_bad_value(shape, index, value) -> np.ndarray:
    array = np.full(shape, 0.2)
    array[index] = value
    return array


def arctic_case(root: Path, edit) -> Callable[[], object]:
    """The ARCTIC fixture under ``root`` with ``edit(root)`` applied; the call reads the sequence."""
    write_arctic_fixture(root)
    edit(root)
    return lambda: arctic.read_sequence(root, NAME)


def write_egocam(root: Path, **changes) -> None:
    K = np.array([[1500.0, 0, 1400], [0, 1500, 1000], [0, 0, 1]])
    ego = {"R_k_cam_np": np.tile(np.eye(3), (3, 1, 1)), "T_k_cam_np": np.zeros((3, 3, 1)), "intrinsics": K,
           "dist8": np.zeros(8)}
    np.save(root / EGOCAM, {**ego, **changes})


def image_case(root: Path, corrupt, mask: bool = False) -> Callable[[], object]:
    """The ARCTIC fixture with a valid 1000×800 image (or mask) of view 1, frame 0, then ``corrupt(path)``."""
    write_arctic_fixture(root)
    path = root / (MASK if mask else IMAGE)
    path.parent.mkdir(parents=True)
    y, x = np.mgrid[:800, :1000]
    if mask:
        Image.fromarray(((x // 100 + y // 100) % 4).astype(np.uint8)).save(path)
    else:
        Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)).save(path, quality=90)
    corrupt(path)
    seq = arctic.read_sequence(root, NAME)
    return (lambda: seq.mask(1, 0)) if mask else (lambda: seq.image(1, 0))


# ----------------------------------------------------------------------------------------------------
# ARCTIC: .mano.npy
# ----------------------------------------------------------------------------------------------------
@case("mano-npy-truncated", pickle.UnpicklingError,
      "box_grab_01.mano.npy: truncated or corrupt", "pickle data was truncated", "expected a complete pickle")
def _(root):
    return arctic_case(root, lambda r: truncate(r / MANO))


@case("mano-npy-empty", pickle.UnpicklingError,
      "box_grab_01.mano.npy: truncated or corrupt", "Ran out of input", "expected a complete pickle")
def _(root):
    return arctic_case(root, lambda r: (r / MANO).write_bytes(b""))


@case("mano-npy-not-a-dict", ValueError,
      "box_grab_01.mano.npy: expected a pickled dict holding the MANO parameters", "found ndarray")
def _(root):
    return arctic_case(root, lambda r: np.save(r / MANO, np.array(["right", "left"], dtype=object)))


@case("mano-npy-plain-array", pickle.UnpicklingError,
      "box_grab_01.mano.npy: expected a pickled object .npy, found dtype float64")
def _(root):
    return arctic_case(root, lambda r: np.save(r / MANO, np.zeros((3, 45))))


@case("mano-npy-side-not-a-dict", ValueError,
      "box_grab_01.mano.npy: field 'left' is a ndarray, expected a dict of rot, pose, trans, shape")
def _(root):
    def edit(r):
        data = np.load(r / MANO, allow_pickle=True).item()
        data["left"] = np.zeros((3, 61))
        np.save(r / MANO, data)

    return arctic_case(root, edit)


@case("mano-npy-code-payload", pickle.UnpicklingError, "box_grab_01.mano.npy: refused to load class", "system",
      "only numpy objects are admitted")
def _(root):
    return arctic_case(root, lambda r: edit_mano(r, "right", "rot", PAYLOADS["system"](r / MARKER)))


MANO_FIELDS = [  # case id, side, field, bad value, expected message part
    ("mano-rot-shape", "right", "rot", np.zeros((3, 2)), "field 'right.rot' has shape (3, 2), expected (*, 3)"),
    ("mano-pose-shape", "left", "pose", np.zeros(45), "field 'left.pose' has shape (45,), expected (3, 45)"),
    ("mano-trans-shape", "right", "trans", np.zeros(3), "field 'right.trans' has shape (3,), expected (3, 3)"),
    ("mano-shape-length", "right", "shape", np.zeros(11), "field 'right.shape' has shape (11,), expected (10,)"),
    ("mano-shape-frames", "left", "shape", np.zeros((2, 10)), "field 'left.shape' has shape (2, 10), expected (3, 10)"),
    ("mano-pose-nan", "right", "pose", with_bad_value((3, 45), (1, 4), np.nan),
     "field 'right.pose' holds NaN or infinite values (first at index (1, 4)); expected finite numbers"),
    ("mano-pose-inf", "left", "pose", with_bad_value((3, 45), (2, 44), np.inf),
     "field 'left.pose' holds NaN or infinite values (first at index (2, 44)); expected finite numbers"),
    ("mano-trans-nan", "left", "trans", with_bad_value((3, 3), (0, 2), np.nan),
     "field 'left.trans' holds NaN or infinite values (first at index (0, 2)); expected finite numbers"),
    ("mano-trans-inf", "right", "trans", with_bad_value((3, 3), (2, 0), -np.inf),
     "field 'right.trans' holds NaN or infinite values (first at index (2, 0)); expected finite numbers"),
    ("mano-rot-inf", "right", "rot", with_bad_value((3, 3), (1, 1), np.inf),
     "field 'right.rot' holds NaN or infinite values (first at index (1, 1)); expected finite numbers"),
    ("mano-frames-within-hand", "left", "trans", np.zeros((2, 3)),
     "field 'left.trans' has shape (2, 3), expected (3, 3)"),
    ("mano-field-missing", "left", "pose", None, "field 'left.pose' is missing"),
]
for _id, _side, _field, _value, _expected in MANO_FIELDS:
    case(_id, ValueError, f"box_grab_01.mano.npy: {_expected}")(
        lambda root, side=_side, field=_field, value=_value:
            arctic_case(root, lambda r: edit_mano(r, side, field, value))
    )


@case("mano-pose-text", ValueError, "box_grab_01.mano.npy: field 'right.pose' is not numeric", "'x'",
      "expected numbers of shape (3, 45)")
def _(root):
    return arctic_case(root, lambda r: edit_mano(r, "right", "pose", np.full((3, 45), "x")))


@case("mano-frames-vs-object", ValueError,
      "box_grab_01.mano.npy: field 'right' has 3 frames",
      "box_grab_01.object.npy has 2; expected the same frames in both")
def _(root):
    return arctic_case(root, lambda r: np.save(r / OBJECT, np.load(r / OBJECT)[:2]))


@case("mano-frames-left-vs-right", ValueError,
      "box_grab_01.mano.npy: field 'right' has 3 frames, 'left' 2; expected the same frames for both hands")
def _(root):
    def edit(r):
        data = np.load(r / MANO, allow_pickle=True).item()
        data["left"] = {key: value[:2] for key, value in data["left"].items()}
        np.save(r / MANO, data)

    return arctic_case(root, edit)


# ----------------------------------------------------------------------------------------------------
# ARCTIC: .object.npy and .egocam.dist.npy
# ----------------------------------------------------------------------------------------------------
@case("object-width", ValueError, "box_grab_01.object.npy: field 'object pose' has shape (3, 8), expected (*, 7)")
def _(root):
    return arctic_case(root, lambda r: np.save(r / OBJECT, np.zeros((3, 8))))


@case("object-one-row-flat", ValueError, "box_grab_01.object.npy: field 'object pose' has shape (7,), expected (*, 7)")
def _(root):
    return arctic_case(root, lambda r: np.save(r / OBJECT, np.zeros(7)))


@case("object-pickled-payload", ValueError,
      "box_grab_01.object.npy: expected a plain (F,7) float array", "allow_pickle=False")
def _(root):
    payload = np.array([PAYLOADS["open"](root / MARKER)], dtype=object)
    return arctic_case(root, lambda r: np.save(r / OBJECT, payload, allow_pickle=True))


@case("object-truncated", ValueError, "box_grab_01.object.npy: expected a plain (F,7) float array",
      "Failed to read all data")
def _(root):
    return arctic_case(root, lambda r: truncate(r / OBJECT, keep=0.9))


@case("object-empty", ValueError, "box_grab_01.object.npy: expected a plain (F,7) float array (No data left in file)")
def _(root):
    return arctic_case(root, lambda r: (r / OBJECT).write_bytes(b""))


@case("object-trans-inf", ValueError,
      "box_grab_01.object.npy: field 'object pose' holds NaN or infinite values (first at index (2, 6))")
def _(root):
    return arctic_case(root, lambda r: np.save(r / OBJECT, with_bad_value((3, 7), (2, 6), np.inf)))


@case("egocam-intrinsics-shape", ValueError,
      "box_grab_01.egocam.dist.npy: field 'intrinsics' has shape (3, 4), expected (3, 3)")
def _(root):
    return arctic_case(root, lambda r: write_egocam(r, intrinsics=np.eye(3, 4)))


@case("egocam-rotation-frames", ValueError,
      "box_grab_01.egocam.dist.npy: field 'R_k_cam_np' has shape (2, 3, 3), expected (3, 3, 3)")
def _(root):
    return arctic_case(root, lambda r: write_egocam(r, R_k_cam_np=np.tile(np.eye(3), (2, 1, 1))))


# ----------------------------------------------------------------------------------------------------
# ARCTIC: meta/misc.json
# ----------------------------------------------------------------------------------------------------
def misc_case(root: Path, edit) -> Callable[[], object]:
    return arctic_case(root, lambda r: edit_json(r / MISC, edit))


@case("misc-invalid-json", ValueError, "misc.json: not valid JSON", "it should hold per-subject cameras")
def _(root):
    return arctic_case(root, lambda r: (r / MISC).write_text('{"s01": {"world2cam": [1, 2'))


@case("misc-subject-missing", ValueError, "misc.json: no entry for subject 's01'; subjects present: ['s02']")
def _(root):
    return misc_case(root, lambda misc: misc.update(s02=misc.pop("s01")))


@case("misc-subject-not-an-object", ValueError,
      "misc.json: field 's01' is a list, expected an object with world2cam, intris_mat, image_size")
def _(root):
    return misc_case(root, lambda misc: misc.update(s01=[]))


@case("misc-world2cam-missing", ValueError, "misc.json: field 's01.world2cam' is missing")
def _(root):
    return misc_case(root, lambda misc: misc["s01"].pop("world2cam"))


@case("misc-ioi-offset-missing", ValueError, "misc.json: field 's01.ioi_offset' is missing")
def _(root):
    return misc_case(root, lambda misc: misc["s01"].pop("ioi_offset"))


@case("misc-intrinsics-shape", ValueError,
      "misc.json [s01]: field 'intris_mat' has shape (8, 3, 4), expected (8, 3, 3)")
def _(root):
    return misc_case(root, lambda misc: misc["s01"].update(intris_mat=np.zeros((8, 3, 4)).tolist()))


@case("misc-world2cam-shape", ValueError, "misc.json [s01]: field 'world2cam' has shape (8, 4, 3), expected (8, 4, 4)")
def _(root):
    return misc_case(root, lambda misc: misc["s01"].update(world2cam=np.zeros((8, 4, 3)).tolist()))


@case("misc-world2cam-not-rigid", ValueError, "misc.json [s01]: field 'world2cam[1]' is not a rigid transform")
def _(root):
    return misc_case(root, lambda misc: misc["s01"]["world2cam"][1][0].__setitem__(0, 2.0))


@case("misc-image-size-negative", ValueError,
      "misc.json [s01]: field 'image_size' must hold non-negative integers [W, H]")
def _(root):
    return misc_case(root, lambda misc: misc["s01"]["image_size"].__setitem__(1, [-1000, 800]))


@case("misc-image-size-fraction", ValueError,
      "misc.json [s01]: field 'image_size' must hold non-negative integers [W, H]")
def _(root):
    return misc_case(root, lambda misc: misc["s01"]["image_size"].__setitem__(2, [1000.5, 800]))


@case("misc-image-size-views", ValueError, "misc.json [s01]: field 'image_size' has shape (8, 2), expected (9, 2)")
def _(root):
    return misc_case(root, lambda misc: misc["s01"]["image_size"].pop())


@case("misc-ioi-offset-negative", ValueError,
      "misc.json [s01]: field 'ioi_offset' must be a non-negative integer, got -1")
def _(root):
    return misc_case(root, lambda misc: misc["s01"].update(ioi_offset=-1))


@case("misc-ioi-offset-bool", ValueError,
      "misc.json [s01]: field 'ioi_offset' must be a non-negative integer, got True")
def _(root):
    return misc_case(root, lambda misc: misc["s01"].update(ioi_offset=True))


# ----------------------------------------------------------------------------------------------------
# ARCTIC: splits file, sequence names
# ----------------------------------------------------------------------------------------------------
def splits_case(root: Path, contents: str, split: str = "train") -> Callable[[], object]:
    (root / SPLITS).parent.mkdir(parents=True)
    (root / SPLITS).write_text(contents)
    return lambda: arctic.list_sequences(root, split)


@case("splits-file-missing", FileNotFoundError, "protocol_p1.json: not found; it should hold the split lists")
def _(root):
    return lambda: arctic.list_sequences(root, "train")


@case("splits-invalid-json", ValueError, "protocol_p1.json: not valid JSON", "it should hold the split lists")
def _(root):
    return splits_case(root, '{"train": ["s01/box_grab_01"')


@case("splits-split-missing", ValueError, "protocol_p1.json: unknown split 'val'; valid splits are ['test', 'train']")
def _(root):
    return splits_case(root, json.dumps({"train": [NAME], "test": []}), split="val")


@case("splits-not-a-list", ValueError, "protocol_p1.json: field 'train' is a str, expected a list of 'sXX/<seq>' names")
def _(root):
    return splits_case(root, json.dumps({"train": NAME}))


@case("splits-malformed-name", ValueError,
      "protocol_p1.json: field 'train[1]' is 's01/box_grab', expected 'sXX/<object>_<action>_NN'")
def _(root):
    return splits_case(root, json.dumps({"train": [NAME, "s01/box_grab"]}))


# ----------------------------------------------------------------------------------------------------
# ARCTIC: images and masks (read when asked for)
# ----------------------------------------------------------------------------------------------------
@case("image-missing", FileNotFoundError, "1/00001.jpg: image of sequence s01/box_grab_01, view 1, frame 0 not found")
def _(root):
    return image_case(root, Path.unlink)


@case("image-truncated", ValueError, "1/00001.jpg: image of sequence s01/box_grab_01, view 1, frame 0 is unreadable",
      "expected a complete JPEG or PNG")
def _(root):
    return image_case(root, truncate)


@case("image-zero-bytes", ValueError, "1/00001.jpg: image of sequence s01/box_grab_01, view 1, frame 0 is unreadable",
      "cannot identify image file", "expected a complete JPEG or PNG")
def _(root):
    return image_case(root, lambda path: path.write_bytes(b""))


@case("image-wrong-size", ValueError, "1/00001.jpg: size 16×12 differs from view 1's camera (1000×800)")
def _(root):
    return image_case(root, lambda path: Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(path, format="JPEG"))


@case("mask-truncated", ValueError, "1/00001.png: part mask of sequence s01/box_grab_01, view 1, frame 0 is unreadable",
      "expected a complete single-channel 8-bit PNG")
def _(root):
    return image_case(root, truncate, mask=True)


# ----------------------------------------------------------------------------------------------------
# ARCTIC: object templates
# ----------------------------------------------------------------------------------------------------
def template_case(root: Path, labels: list[int]) -> Callable[[], object]:
    folder = root / "meta/object_vtemplates/wedge"
    folder.mkdir(parents=True)
    (folder / "mesh.obj").write_text("v 0 0 0\nv 100 0 0\nv 0 100 0\nv 0 0 100\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    (folder / "parts.json").write_text(json.dumps(labels))
    return lambda: arctic_objects.read_object_template(root, "wedge")


@case("template-parts-count", ValueError,
      "wedge/parts.json: expected a list with one part label per mesh.obj vertex (4), got shape (3,)")
def _(root):
    return template_case(root, [1, 1, 0])


@case("template-parts-label", ValueError, "wedge/parts.json: part labels must be 0 (top) or 1 (bottom), found [2]")
def _(root):
    return template_case(root, [1, 1, 2, 0])


# ----------------------------------------------------------------------------------------------------
# The dataset index (data/index.json)
# ----------------------------------------------------------------------------------------------------
def index_case(root: Path, edit) -> Callable[[], object]:
    path = root / "index.json"
    DatasetIndex("embedded", "data/embedded", {"train": [NAME], "val": [], "test": []}, "relative", None,
                 "data/embedded").save(path)
    edit(path)
    return lambda: DatasetIndex.load(path, hands=hand_models(HandConfig(None, 0)))


@case("index-invalid-json", ValueError,
      "index.json: not valid JSON",
      "expected the dataset index (source, root, splits, pose_convention, h2o_cam, object_root)")
def _(root):
    return index_case(root, lambda path: truncate(path))


@case("index-key-missing", ValueError, "index.json: expected keys source, root, splits, pose_convention, h2o_cam, "
      "object_root; found ['h2o_cam', 'object_root', 'pose_convention', 'root', 'splits']")
def _(root):
    return index_case(root, lambda path: edit_json(path, lambda data: data.pop("source")))


@case("index-unknown-source", ValueError,
      "index.json: field 'source' is 'kinect', expected one of ('embedded', 'arctic', 'h2o')")
def _(root):
    return index_case(root, lambda path: edit_json(path, lambda data: data.update(source="kinect")))


@case("index-splits-not-lists", ValueError,
      "index.json: field 'splits' must map each split to a list of sequence names")
def _(root):
    return index_case(root, lambda path: edit_json(path, lambda data: data["splits"].update(train=NAME)))


@case("index-unknown-pose-convention", ValueError,
      "index.json: field 'pose_convention' is 'pca', expected one of ('relative', 'absolute')")
def _(root):
    return index_case(root, lambda path: edit_json(path, lambda data: data.update(pose_convention="pca")))


@case("index-h2o-without-camera", ValueError,
      "index.json: field 'h2o_cam' is None; expected an H2O camera number for an H2O dataset and null otherwise")
def _(root):
    return index_case(root, lambda path: edit_json(path, lambda data: data.update(source="h2o")))


@case("index-relative-poses-without-hands-mean", ValueError,
      "index.json: this dataset stores finger poses relative to MANO's mean pose; load its index with the hand models")
def _(root):
    index_case(root, lambda path: None)
    return lambda: DatasetIndex.load(root / "index.json")


# ----------------------------------------------------------------------------------------------------
# H2O
# ----------------------------------------------------------------------------------------------------
def h2o_case(root: Path, edit) -> Callable[[], object]:
    """The H2O fixture (cameras 0, 1, 4) with ``edit(sequence folder)`` applied; read with camera 0."""
    seq_dir = write_h2o_fixture(root, "hand_pose_MANO", "obj_pose_RT")
    edit(seq_dir)
    return lambda: h2o.read_sequence(seq_dir, cam=0)


@case("h2o-hand-line-short", ValueError,
      "cam0/hand_pose_MANO/000001.txt: field 'hand_pose_MANO' has shape (100,), expected (124,)")
def _(root):
    return h2o_case(root, lambda d: write_line(d / "cam0/hand_pose_MANO/000001.txt", hand_row(1)[:100]))


@case("h2o-hand-file-empty", ValueError,
      "cam0/hand_pose_MANO/000000.txt: field 'hand_pose_MANO' has shape (0,), expected (124,)")
def _(root):
    return h2o_case(root, lambda d: (d / "cam0/hand_pose_MANO/000000.txt").write_text(""))


@case("h2o-object-line-short", ValueError,
      "cam0/obj_pose_RT/000002.txt: field 'obj_pose_RT' has shape (16,), expected (17,)")
def _(root):
    return h2o_case(root, lambda d: write_line(d / "cam0/obj_pose_RT/000002.txt", object_pose(2).ravel()))


@case("h2o-cam-pose-line-short", ValueError,
      "cam1/cam_pose/000000.txt: field 'cam_pose' has shape (15,), expected (16,)")
def _(root):
    return h2o_case(root, lambda d: write_line(d / "cam1/cam_pose/000000.txt", np.eye(4).ravel()[:15]))


@case("h2o-intrinsics-line-short", ValueError,
      "cam1/cam_intrinsics.txt: field 'cam_intrinsics (fx fy cx cy width height)' has shape (5,), expected (6,)")
def _(root):
    return h2o_case(root, lambda d: write_line(d / "cam1/cam_intrinsics.txt", [636.0, 637.0, 635.0, 365.0, 1280]))


@case("h2o-letters-in-hand-pose", ValueError,
      "cam0/hand_pose_MANO/000001.txt: field 'hand_pose_MANO' holds non-numeric text", "'0.2abc'",
      "expected 124 numbers")
def _(root):
    def edit(d):
        path = d / "cam0/hand_pose_MANO/000001.txt"
        values = path.read_text().split()
        values[70] = "0.2abc"
        path.write_text(" ".join(values))

    return h2o_case(root, edit)


@case("h2o-letters-in-intrinsics", ValueError,
      "cam4/cam_intrinsics.txt: field 'cam_intrinsics (fx fy cx cy width height)' holds non-numeric text", "'seven'",
      "expected 6 numbers")
def _(root):
    return h2o_case(root, lambda d: (d / "cam4/cam_intrinsics.txt").write_text("636 637 635 365 1280 seven\n"))


@case("h2o-intrinsics-missing", FileNotFoundError,
      "cam4/cam_intrinsics.txt: not found; it should hold the 6 numbers of cam_intrinsics (fx fy cx cy width height)")
def _(root):
    return h2o_case(root, lambda d: (d / "cam4/cam_intrinsics.txt").unlink())


@case("h2o-intrinsics-size-negative", ValueError,
      "cam1/cam_intrinsics.txt: field 'width height' is -1280 720, expected positive integers")
def _(root):
    return h2o_case(root, lambda d: write_line(d / "cam1/cam_intrinsics.txt", [636.0, 637.0, 635.0, 365.0, -1280, 720]))


@case("h2o-frame-missing-object", FileNotFoundError,
      "cam0/obj_pose_RT/000001.txt: not found; it should hold the 17 numbers of obj_pose_RT")
def _(root):
    return h2o_case(root, lambda d: (d / "cam0/obj_pose_RT/000001.txt").unlink())


@case("h2o-frame-missing-hand-last", ValueError,
      "cam0/hand_pose_MANO: no file for frames ['000002.txt'] that obj_pose_RT has; expected the same per-frame files")
def _(root):
    return h2o_case(root, lambda d: (d / "cam0/hand_pose_MANO/000002.txt").unlink())


@case("h2o-frame-missing-hand-middle", ValueError,
      "cam0/hand_pose_MANO: frame files must be numbered 000000.txt onwards without gaps; "
      "expected 000001.txt, found 000002.txt")
def _(root):
    return h2o_case(root, lambda d: (d / "cam0/hand_pose_MANO/000001.txt").unlink())


@case("h2o-frame-missing-ego-pose", FileNotFoundError,
      "cam4/cam_pose/000001.txt: not found; it should hold the 16 numbers of cam_pose")
def _(root):
    return h2o_case(root, lambda d: (d / "cam4/cam_pose/000001.txt").unlink())


# ----------------------------------------------------------------------------------------------------
# MANO model files
# ----------------------------------------------------------------------------------------------------
def mano_case(root: Path, write) -> Callable[[], object]:
    """``write(path)`` makes root/MANO_RIGHT.pkl; the call loads it."""
    path = root / "MANO_RIGHT.pkl"
    write(path)
    return lambda: load_mano_file(path)


def pickled_open_hand(path: Path, **changes) -> None:
    """The open hand's MANO dict with ``changes`` (None drops the field), pickled to ``path``."""
    data = {key: value for key, value in {**build_open_hand("right"), **changes}.items() if value is not None}
    path.write_bytes(pickle.dumps(data, protocol=2))


@case("mano-pkl-not-a-dict", ValueError, "MANO_RIGHT.pkl: expected a dict of MANO fields, found list")
def _(root):
    return mano_case(root, lambda path: path.write_bytes(pickle.dumps([np.zeros((778, 3))])))


@case("mano-pkl-field-missing", ValueError, "MANO_RIGHT.pkl: field 'posedirs' is missing", "licensed download")
def _(root):
    return mano_case(root, lambda path: pickled_open_hand(path, posedirs=None))


@case("mano-pkl-hands-mean-missing", ValueError, "MANO_RIGHT.pkl: field 'hands_mean' is missing")
def _(root):
    return mano_case(root, lambda path: pickled_open_hand(path, hands_mean=None))


@case("mano-pkl-template-flat", ValueError, "MANO_RIGHT.pkl: field 'v_template' has shape", "expected (*, 3)")
def _(root):
    flat = build_open_hand("right")["v_template"].ravel()
    return mano_case(root, lambda path: pickled_open_hand(path, v_template=flat))


@case("mano-pkl-nan", ValueError,
      "MANO_RIGHT.pkl: field 'shapedirs' contains NaN or infinite values; expected finite numbers")
def _(root):
    shapedirs = build_open_hand("right")["shapedirs"]
    shapedirs[0, 0, 0] = np.nan
    return mano_case(root, lambda path: pickled_open_hand(path, shapedirs=shapedirs))


@case("mano-pkl-truncated", ValueError,
      "MANO_RIGHT.pkl: not a readable MANO pkl (truncated or corrupt", "pickle data was truncated",
      "expected a complete pickle", "licensed download")
def _(root):
    def write(path):
        pickled_open_hand(path)
        truncate(path)

    return mano_case(root, write)


@case("mano-pkl-empty", ValueError, "MANO_RIGHT.pkl: not a readable MANO pkl (truncated or corrupt (EOFError")
def _(root):
    return mano_case(root, lambda path: path.write_bytes(b""))


@case("mano-pkl-runs-os-system", ValueError,
      "MANO_RIGHT.pkl: not a readable MANO pkl (refused to load class posix.system",
      "only numpy, scipy.sparse and chumpy.Ch objects are admitted")
def _(root):
    return mano_case(root, lambda path: pickled_open_hand(path, hands_mean=PAYLOADS["system"](root / MARKER)))


@case("mano-pkl-opens-a-file", ValueError, "MANO_RIGHT.pkl: not a readable MANO pkl (refused to load class io.open")
def _(root):
    return mano_case(root, lambda path: path.write_bytes(pickle.dumps({"f": PAYLOADS["open"](root / MARKER)})))


# ----------------------------------------------------------------------------------------------------
# Parameters (params.yaml sections)
# ----------------------------------------------------------------------------------------------------
PARAMS = load_params(ROOT / "params.yaml")


def params_case(edit, name: str = "hand", cls: type = HandConfig) -> Callable[[], object]:
    params = copy.deepcopy(PARAMS)
    edit(params)
    return lambda: section(params, name, cls)


@case("params-unknown-key", KeyError,
      "params.yaml: hand: unknown keys ['subdivide']; expected the keys ['model_dir', 'hd_level']")
def _(root):
    return params_case(lambda p: p["hand"].update(subdivide=1))


@case("params-missing-key", KeyError,
      "params.yaml: hand: missing keys ['hd_level']; expected the keys ['model_dir', 'hd_level']")
def _(root):
    return params_case(lambda p: p["hand"].pop("hd_level"))


@case("params-missing-section", KeyError, "params.yaml: section 'hand' is missing")
def _(root):
    return params_case(lambda p: p.pop("hand"))


@case("params-override-unknown-key", KeyError, "smoke.yaml: key 'hand.hd_levels' does not exist in", "params.yaml")
def _(root):
    (root / "smoke.yaml").write_text("hand:\n  hd_levels: 1\n")
    return lambda: load_params(ROOT / "params.yaml", root / "smoke.yaml")


@case("params-str-for-int", TypeError, "params.yaml: hand.hd_level: expected int, got str 'two'")
def _(root):
    return params_case(lambda p: p["hand"].update(hd_level="two"))


@case("params-bool-for-int", TypeError, "params.yaml: hand.hd_level: expected int, got bool True")
def _(root):
    return params_case(lambda p: p["hand"].update(hd_level=True))


@case("params-float-for-int", TypeError, "params.yaml: hand.hd_level: expected int, got float 1.5")
def _(root):
    return params_case(lambda p: p["hand"].update(hd_level=1.5))


@case("params-int-for-optional-str", TypeError, "params.yaml: hand.model_dir: expected str | None, got int 3")
def _(root):
    return params_case(lambda p: p["hand"].update(model_dir=3))


@case("params-value-not-in-literal", TypeError,
      "params.yaml: data.source: expected one of 'embedded', 'arctic', 'h2o', got str 'kinect'")
def _(root):
    return params_case(lambda p: p["data"].update(source="kinect"), "data", DataConfig)


@case("params-list-item-type", TypeError,
      "params.yaml: data.embedded.view_scales: expected list[float], got list [1.0, 'big']")
def _(root):
    return params_case(lambda p: p["data"]["embedded"].update(view_scales=[1.0, "big"]), "data", DataConfig)


@case("params-eval-view-outside-the-ring", ValueError,
      "params.yaml: data.embedded.eval_views: distinct allocentric views among 1-8, got [1, 9]")
def _(root):
    return params_case(lambda p: p["data"]["embedded"].update(eval_views=[1, 9]), "data", DataConfig)


@case("params-bool-for-float", TypeError, "params.yaml: data.embedded.fov_deg: expected float, got bool False")
def _(root):
    return params_case(lambda p: p["data"]["embedded"].update(fov_deg=False), "data", DataConfig)


@case("params-subsection-not-a-mapping", TypeError, "params.yaml: data.report: expected a mapping, got int")
def _(root):
    return params_case(lambda p: p["data"].update(report=3), "data", DataConfig)


# ----------------------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("setup, error, expected", CASES)
def test_bad_input_is_refused_naming_file_field_and_expectation(tmp_path, setup, error, expected):
    call = setup(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert not (tmp_path / MARKER).exists(), "a pickled payload ran"
    assert snapshot(tmp_path) == before, "the failed read wrote or changed files"


def test_the_fixtures_are_valid(tmp_path):
    """Every case's failure comes from its corruption: the uncorrupted fixtures read."""
    assert image_case(tmp_path / "arctic", lambda path: None)().shape == (800, 1000, 3)
    assert image_case(tmp_path / "masks", lambda path: None, mask=True)().shape == (800, 1000)
    assert arctic_case(tmp_path / "ego", write_egocam)().views == [0, 1, 2]
    assert splits_case(tmp_path / "splits", json.dumps({"train": [NAME]}))() == [NAME]
    assert template_case(tmp_path / "template", [1, 1, 1, 0])().top_mask.tolist() == [False, False, False, True]
    assert index_case(tmp_path / "index", lambda path: None)().source == "embedded"
    assert h2o_case(tmp_path / "h2o", lambda seq_dir: None)().views == [0, 1, 2]
    assert mano_case(tmp_path, pickled_open_hand)()["v_template"].shape[1] == 3
    assert params_case(lambda params: None)().hd_level >= 0


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_the_payloads_do_run_code_under_a_plain_unpickler(tmp_path, kind):
    """The refusal cases are meaningful: plain pickle.loads of the same payload creates the marker."""
    result = pickle.loads(pickle.dumps(PAYLOADS[kind](tmp_path / MARKER)))
    if kind == "open":
        result.close()
    assert (tmp_path / MARKER).exists()


def test_ints_pass_where_floats_are_declared():
    params = copy.deepcopy(PARAMS)
    params["data"]["embedded"]["fov_deg"] = 60
    params["data"]["embedded"]["view_scales"] = [1] * 8
    cfg = section(params, "data", DataConfig)
    assert cfg.embedded.fov_deg == 60 and cfg.embedded.view_scales == [1] * 8


@pytest.mark.parametrize("overrides", [None, *sorted((ROOT / "params").glob("*.yaml"))],
                         ids=lambda path: getattr(path, "name", "params.yaml"))
def test_the_studys_parameter_sets_pass_the_type_checks(overrides):
    from hogsa.hogs.train import HOGSConfig
    from hogsa.pom.contactnet import ContactNetConfig
    from hogsa.pom.generate import PomConfig
    from hogsa.srm.train import SRMConfig

    params = load_params(ROOT / "params.yaml", overrides)
    for name, cls in (("hand", HandConfig), ("data", DataConfig), ("hogs", HOGSConfig), ("srm", SRMConfig),
                      ("contactnet", ContactNetConfig), ("pom", PomConfig)):
        section(params, name, cls)
