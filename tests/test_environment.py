"""The installed environment is the committed lock, and environment.yml carries the same pins."""

import sys
from importlib import metadata
from pathlib import Path

import pytest

from hogsa.environment import environment_yml, installed_versions, lock_mismatches, read_lock, torch_pin

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def test_installed_versions_are_the_lock():
    """`make` installs exactly the lock: a package at another version fails here, naming it."""
    problems = lock_mismatches(read_lock(LOCK), installed_versions())
    assert not problems, "installed packages differ from requirements.lock (run `make`):\n" + "\n".join(problems)


def test_a_later_copy_on_sys_path_does_not_hide_the_installed_one(tmp_path, monkeypatch):
    """setuptools appends its vendored packaging to sys.path; the version that counts is the importable one."""
    shadow = tmp_path / "packaging-0.1.dist-info"
    shadow.mkdir()
    (shadow / "METADATA").write_text("Metadata-Version: 2.1\nName: packaging\nVersion: 0.1\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    assert installed_versions()["packaging"] == metadata.version("packaging") != "0.1"


def test_installed_torch_is_the_pinned_release():
    """torch sits outside the lock (CPU and CUDA builds differ); its release is pinned in pyproject.toml."""
    release = torch_pin(ROOT / "pyproject.toml").split("==")[1]
    assert metadata.version("torch").split("+")[0] == release


def test_environment_yml_carries_the_lock_pins():
    """environment.yml is what `make lock` writes from the lock: regenerate it after editing the lock."""
    expected = environment_yml(read_lock(LOCK), torch_pin(ROOT / "pyproject.toml"))
    assert (ROOT / "environment.yml").read_text() == expected


def test_read_lock_takes_pins_and_skips_hashes_and_comments(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# header\nNumPy==2.4.6 \\\n    --hash=sha256:00\n    # via x\nruamel.yaml==0.19.1 \\\n"
                    "    --hash=sha256:11\n\n# torch\n")
    assert read_lock(lock) == {"numpy": "2.4.6", "ruamel-yaml": "0.19.1"}


def test_read_lock_refuses_a_line_without_an_exact_pin(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("numpy>=2\n")
    with pytest.raises(ValueError, match=r"requirements.lock:1: expected 'name==version'"):
        read_lock(lock)


def test_mismatches_name_the_package_and_both_versions():
    assert lock_mismatches({"numpy": "2.4.6", "scipy": "1.17.1"}, {"numpy": "2.4.5"}) == [
        "numpy: locked 2.4.6, installed 2.4.5", "scipy: locked 1.17.1, installed nothing"]

