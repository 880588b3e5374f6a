"""Atomic writes: a stage output is either absent, its old content, or complete, never half-written.

Each writer fills a temporary sibling (``fig.png`` is written as ``.fig.<pid>.tmp.png``: in the same
folder, so that the rename stays on one file system, and with the same suffix, for writers that pick
a format from it) and renames it onto the target with ``os.replace``; a writer killed midway
leaves at most that temporary file, which the next write of the same target removes first. A folder
written as a whole (``atomic_directory``) is filled under a temporary sibling ``.<name>.<random>`` the
same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

TMP_SUFFIX = ".tmp"
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}  # save_image's suffixes → Pillow formats


def temporary_sibling(path: Path) -> Path:
    """The temporary name ``path`` is written under before its rename."""
    return path.with_name(f".{path.stem}.{os.getpid()}{TMP_SUFFIX}{path.suffix}")


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of ``path`` left by writers that were killed (any process id)."""
    for stale in path.parent.glob(f".{path.stem}.*{TMP_SUFFIX}{path.suffix}"):
        stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; it replaces ``path`` on success and is
    removed on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling folder to fill with ``path``'s content; on success it replaces
    ``path`` (any existing folder, restored if that rename fails), on failure it is removed. Temporary
    siblings left by a writer that was killed are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield staging
        _replace_directory(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace_directory(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; an existing ``target`` is restored if that fails."""
    if not target.exists():
        new.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    target.rename(retired / target.name)
    try:
        new.rename(target)
    except BaseException:
        (retired / target.name).rename(target)
        retired.rmdir()
        raise
    shutil.rmtree(retired)


def atomic_write_text(path: str | Path, text: str) -> None:
    """``text`` into ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, value: object) -> None:
    """``value`` as indented JSON with sorted keys and a final newline (byte-stable for equal values)."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def save_figure(figure, path: str | Path, dpi: float | None = None) -> None:
    """A matplotlib figure as PNG at ``dpi`` (None: matplotlib's ``savefig.dpi``), with no timestamp or
    software metadata (same figure, same bytes)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None}, dpi=dpi)


def save_image(path: str | Path, image, jpeg_quality: int | None = None) -> None:
    """A uint8 [H,W] or [H,W,3] array through Pillow, as PNG or JPEG by ``path``'s suffix; a JPEG at
    ``jpeg_quality`` (None: Pillow's default, 75), which a PNG does not take."""
    from PIL import Image

    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise ValueError(f"{path}: no image format for suffix {suffix!r}; expected one of {list(IMAGE_FORMATS)}")
    fmt = IMAGE_FORMATS[suffix]
    if fmt != "JPEG" and jpeg_quality is not None:
        raise ValueError(f"{path}: jpeg_quality={jpeg_quality} given for a {fmt} image; expected None")
    options = {} if jpeg_quality is None else {"quality": jpeg_quality}
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt, **options)


def save_safetensors(tensors: dict, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """``tensors`` (name → torch tensor) as safetensors, with the header's keys in sorted order.

    safetensors writes its metadata from a hash map whose order changes from process to process; the
    header is rewritten here, to the same length, with sorted keys, so the same tensors and metadata
    give the same bytes.
    """
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        with open(tmp, "r+b") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
            canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            if len(canonical) > size:
                raise ValueError(f"{path}: canonical safetensors header is longer than the written one")
            f.seek(8)
            f.write(canonical.ljust(size, b" "))
