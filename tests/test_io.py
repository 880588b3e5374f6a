"""Atomic writes leave no partial file, images take their format from the suffix, and safetensors files
are byte-stable."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from hogsa.io import atomic_directory, atomic_path, save_image, save_safetensors, write_json


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"psnr": 1.0})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"psnr": ')
        raise RuntimeError("killed midway")
    assert json.loads(target.read_text()) == {"psnr": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_the_next_write_removes_temporaries_of_a_killed_writer(tmp_path):
    target = tmp_path / "fig.png"
    stale = tmp_path / ".fig.99999.tmp.png"
    stale.write_bytes(b"half")
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "template"
    with atomic_directory(target) as staging:
        (staging / "a.txt").write_text("first")
    (tmp_path / ".template.killed").mkdir()  # left by a writer that was killed
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        (staging / "b.txt").write_text("half")
        raise RuntimeError("killed midway")
    assert [p.name for p in target.iterdir()] == ["a.txt"] and (target / "a.txt").read_text() == "first"
    with atomic_directory(target) as staging:
        (staging / "b.txt").write_text("second")
    assert [p.name for p in target.iterdir()] == ["b.txt"]  # the old content is gone, not merged
    assert [p.name for p in tmp_path.iterdir()] == ["template"]  # no staging or retired folder left


def test_images_are_saved_in_the_format_of_their_suffix(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    save_image(tmp_path / "a.png", image)
    with Image.open(tmp_path / "a.png") as png:
        assert png.format == "PNG" and np.array_equal(np.asarray(png), image)  # lossless
    save_image(tmp_path / "low.jpg", image, jpeg_quality=10)
    save_image(tmp_path / "high.JPEG", image, jpeg_quality=95)
    with Image.open(tmp_path / "low.jpg") as low, Image.open(tmp_path / "high.JPEG") as high:
        assert low.format == high.format == "JPEG"
        low_error = np.abs(np.asarray(low, dtype=float) - image).mean()
        assert np.abs(np.asarray(high, dtype=float) - image).mean() < low_error  # the quality is used
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "high.JPEG", "low.jpg"]
    with pytest.raises(ValueError, match=r"b\.bmp: no image format for suffix '\.bmp'"):
        save_image(tmp_path / "b.bmp", image)
    with pytest.raises(ValueError, match=r"c\.png: jpeg_quality=90 given for a PNG image"):
        save_image(tmp_path / "c.png", image, jpeg_quality=90)


def _save_in_new_process(path, metadata):
    code = ("import sys, json, torch; from hogsa.io import save_safetensors; "
            "save_safetensors({'b': torch.arange(3.0), 'a': torch.ones(2, 2)}, sys.argv[1], json.loads(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", code, str(path), json.dumps(metadata)], check=True)


def test_safetensors_bytes_do_not_depend_on_the_process(tmp_path):
    """safetensors orders its metadata by a per-process hash; the saved header is sorted instead."""
    metadata = {f"key{k}": f"value {k}" for k in range(12)}
    paths = [tmp_path / f"{k}.safetensors" for k in range(3)]
    for path in paths:
        _save_in_new_process(path, metadata)
    assert len({p.read_bytes() for p in paths}) == 1
    with safe_open(str(paths[0]), framework="pt") as f:
        assert f.metadata() == metadata
        assert torch.equal(f.get_tensor("b"), torch.arange(3.0))  # exact: a stored copy


def test_safetensors_round_trip_in_process(tmp_path):
    tensors = {"x": torch.randn(4, 3), "y": torch.arange(5)}
    save_safetensors(tensors, tmp_path / "t.safetensors", {"config": json.dumps({"a": 1})})
    with safe_open(str(tmp_path / "t.safetensors"), framework="pt") as f:
        assert all(torch.equal(f.get_tensor(k), v) for k, v in tensors.items())  # exact: a stored copy
