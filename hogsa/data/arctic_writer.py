"""Write the ARCTIC on-disk layout that ``hogsa.data.arctic`` reads (its docstring gives the layout and
the conversions at this edge).

Every file is written atomically (temporary name, rename). The per-subject entry of ``meta/misc.json``
is merged into the existing file under a file lock, so sequences of one subject may be written by
parallel processes; views a sequence lacks get image size [0, 0].
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from hogsa.data.arctic import (
    MISC_FILE,
    MM_PER_M,
    SPLITS_FILE,
    hands_mean_or_zeros,
    parse_name,
    read_json,
    read_subject_entry,
)
from hogsa.data.schema import EGO_VIEW, MASK_LABELS, NUM_VIEWS, SIDES, K_to_dataset, SequenceRecord
from hogsa.io import atomic_path, save_image

ImageSource = Mapping[tuple[int, int], np.ndarray] | Callable[[int, int], np.ndarray]


def write_splits(root: str | Path, splits: Mapping[str, list[str]]) -> Path:
    """Write ``splits`` ({split: ["sXX/<seq>", ...]}) to ``root/splits_json/protocol_p1.json``."""
    for split, names in splits.items():
        for name in names:
            parse_name(name)
    path = Path(root) / SPLITS_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({split: list(names) for split, names in splits.items()}, indent=1))
    return path


def write_sequence(
    root: str | Path,
    seq: SequenceRecord,
    images: ImageSource | None = None,
    masks: ImageSource | None = None,
    subject_meta: Mapping[str, Any] | None = None,
    hands_mean: Mapping[str, np.ndarray] | None = None,
    jpeg_quality: int = 95,
) -> None:
    """Write ``seq`` in the ARCTIC layout under ``root``.

    ``images`` / ``masks``: {(view, frame): array} (exactly those are written) or a callable
    (view, frame) → array (called for every present view and frame); images uint8 [H,W,3] → JPEG of
    ``jpeg_quality``, masks uint8 [H,W] with labels 0-3 → PNG, both named frame + ioi_offset.
    ``subject_meta``: the subject's ``ioi_offset`` (default 0) and ``gender`` (default ``seq.gender``);
    the misc.json entry's cameras come from ``seq.cameras``. A subject's cameras are shared by all its
    sequences, so a value conflicting with misc.json raises ValueError. ``hands_mean`` as for
    ``arctic.read_sequence``: pose is stored as absolute − hands_mean, so reading with the same
    ``hands_mean`` gives ``seq`` back. Each hand's betas must be the same on every frame (the layout
    stores one shape per hand), else ValueError.
    """
    root = Path(root)
    subject, name, _ = parse_name(seq.name)
    mano = _mano_dict(seq, hands_mean_or_zeros(hands_mean))
    meta = _merge_subject_entry(root / MISC_FILE, subject, _new_subject_entry(seq, subject_meta or {}))
    raw = root / "raw_seqs" / subject
    _save_npy(raw / f"{name}.mano.npy", mano, allow_pickle=True)
    object_pose = seq.object_pose
    obj = np.concatenate([object_pose.articulation[:, None], object_pose.rot, object_pose.transl * MM_PER_M], axis=1)
    _save_npy(raw / f"{name}.object.npy", obj, allow_pickle=False)
    if seq.cameras[EGO_VIEW] is not None:
        _save_npy(raw / f"{name}.egocam.dist.npy", _ego_dict(seq), allow_pickle=True)
    else:  # a sequence rewritten without its egocentric view must not keep the old one
        (raw / f"{name}.egocam.dist.npy").unlink(missing_ok=True)
    offset = meta["ioi_offset"]
    for (view, frame), image in _items(images, seq):
        path = root / "images" / subject / name / str(view) / f"{frame + offset:05d}.jpg"
        save_image(path, _checked_picture(path, image, seq, view, mask=False), jpeg_quality=jpeg_quality)
    for (view, frame), mask in _items(masks, seq):
        path = root / "masks" / subject / name / str(view) / f"{frame + offset:05d}.png"
        save_image(path, _checked_picture(path, mask, seq, view, mask=True))


def _save_npy(path: Path, value: Any, allow_pickle: bool) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, value, allow_pickle=allow_pickle)


def _mano_dict(seq: SequenceRecord, hands_mean: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """ARCTIC's {right, left} MANO dict: pose relative to ``hands_mean``, one shape (10,) per hand."""
    mano = {}
    for side in SIDES:
        pose = seq.hands[side]
        if not seq.hand_valid[side].all():
            raise ValueError(f"sequence {seq.name}: field 'hand_valid.{side}' has invalid frames; "
                             "the ARCTIC layout cannot store per-hand validity")
        differs = (pose.betas != pose.betas[0]).any(axis=1)
        if differs.any():
            raise ValueError(f"sequence {seq.name}: field 'hands.{side}.betas' differs between frame 0 and frame "
                             f"{int(np.argmax(differs))}; the ARCTIC layout stores one shape per hand, expected equal rows")
        mano[side] = {"rot": pose.global_orient, "pose": pose.hand_pose - hands_mean[side], "trans": pose.transl,
                      "shape": pose.betas[0]}
    return mano


def _ego_dict(seq: SequenceRecord) -> dict[str, np.ndarray]:
    camera = seq.cameras[EGO_VIEW]
    return {
        "R_k_cam_np": seq.ego_world2cam[:, :3, :3],
        "T_k_cam_np": seq.ego_world2cam[:, :3, 3:],
        "intrinsics": K_to_dataset(camera.K),
        "dist8": np.zeros(8) if camera.dist is None else camera.dist,
    }


def _new_subject_entry(seq: SequenceRecord, subject_meta: Mapping[str, Any]) -> dict[str, Any]:
    """misc.json entry of ``seq``'s subject from its cameras; absent views get size [0, 0]."""
    unknown = sorted(set(subject_meta) - {"ioi_offset", "gender"})
    if unknown:
        raise ValueError(f"subject_meta: unknown keys {unknown}; expected 'ioi_offset' and/or 'gender'")
    offset = subject_meta.get("ioi_offset", 0)
    if not isinstance(offset, (int, np.integer)) or offset < 0:
        raise ValueError(f"subject_meta: 'ioi_offset' must be a non-negative integer, got {offset!r}")
    world2cam = np.tile(np.eye(4), (NUM_VIEWS - 1, 1, 1))
    intris = np.zeros((NUM_VIEWS - 1, 3, 3))
    sizes = np.zeros((NUM_VIEWS, 2), dtype=int)
    for view, camera in enumerate(seq.cameras):
        if camera is None:
            continue
        sizes[view] = camera.width, camera.height
        if view != EGO_VIEW:
            world2cam[view - 1], intris[view - 1] = camera.world2cam, K_to_dataset(camera.K)
    entry = {"world2cam": world2cam, "intris_mat": intris, "image_size": sizes, "ioi_offset": int(offset)}
    gender = subject_meta.get("gender", seq.gender)
    if gender is not None:
        entry["gender"] = gender
    return entry


def _merge_subject_entry(path: Path, subject: str, new: dict[str, Any]) -> dict[str, Any]:
    """Merge ``new`` into ``subject``'s entry of misc.json (read-modify-replace under a lock); return it.

    Views present in both entries must agree; a view present in one only is taken from it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        misc = read_json(path, "per-subject cameras") if path.is_file() else {}
        merged = dict(new)
        if subject in misc:
            merged = _merge_entries(read_subject_entry(path, subject), new, f"{path} [{subject}]")
            merged = {**misc[subject], **merged}  # keep fields hogsa does not use
        misc[subject] = {key: value.tolist() if isinstance(value, np.ndarray) else value for key, value in merged.items()}
        with atomic_path(path) as tmp:  # subjects in name order: the same file whichever wrote first
            tmp.write_text(json.dumps(dict(sorted(misc.items()))))
    return merged


def _merge_entries(old: dict[str, Any], new: dict[str, Any], where: str) -> dict[str, Any]:
    merged = {key: np.array(new[key]) for key in ("world2cam", "intris_mat", "image_size")}
    for view in range(NUM_VIEWS):
        in_old, in_new = old["image_size"][view].any(), new["image_size"][view].any()
        fields = [("image_size", view)] + ([] if view == EGO_VIEW else [("world2cam", view - 1), ("intris_mat", view - 1)])
        for field, index in fields:
            if in_old and in_new and not np.allclose(old[field][index], new[field][index], rtol=1e-9, atol=1e-9):
                raise ValueError(f"{where}: field '{field}[{index}]' differs from this sequence's camera; "
                                 "a subject's cameras are shared by all its sequences")
            if in_old and not in_new:
                merged[field][index] = old[field][index]
    for field in ("ioi_offset", "gender"):
        if old.get(field) is not None and new.get(field) is not None and old[field] != new[field]:
            raise ValueError(f"{where}: field '{field}' is {old[field]!r}, this sequence gives {new[field]!r}")
        value = new.get(field) if new.get(field) is not None else old.get(field)
        if value is not None:
            merged[field] = value
    return merged


def _items(source: ImageSource | None, seq: SequenceRecord) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    """((view, frame), array) pairs of a mapping, or of a callable over every present view and frame."""
    if source is None:
        return
    if isinstance(source, Mapping):
        for (view, frame), array in source.items():
            seq.camera(view, frame)  # raises for an absent view or a frame out of range
            yield (view, frame), array
    elif callable(source):
        for view in seq.views:
            for frame in range(seq.frames):
                yield (view, frame), source(view, frame)
    else:
        raise TypeError(f"images/masks must be a mapping or a callable (view, frame) -> array, got {type(source).__name__}")


def _checked_picture(path: Path, array: np.ndarray, seq: SequenceRecord, view: int, mask: bool) -> np.ndarray:
    """``array`` as uint8 of ``view``'s camera size ([H,W] part labels for a mask, [H,W,3] for an
    image), else ValueError naming ``path``."""
    camera = seq.cameras[view]
    shape = (camera.height, camera.width) if mask else (camera.height, camera.width, 3)
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.shape != shape:
        raise ValueError(f"{path}: {'mask' if mask else 'image'} of sequence {seq.name} view {view} must be "
                         f"uint8 {list(shape)}, got {array.dtype} {list(array.shape)}")
    if mask and array.max(initial=0) > max(MASK_LABELS.values()):
        raise ValueError(f"{path}: mask labels must be in {MASK_LABELS}, found {int(array.max())}")
    return array
