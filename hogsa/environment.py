"""The locked environment: the pins of ``requirements.lock``, what is installed, environment.yml.

``requirements.lock`` is written by pip-compile from pyproject.toml (``make lock``) and holds every
package but torch with exact versions and hashes; torch is pinned in the Makefile and pyproject.toml
(its CPU and CUDA builds are different files of one version). ``python -m hogsa.environment LOCK
ENV_YML`` writes the conda environment file carrying the same pins.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from hogsa.io import atomic_write_text

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    """PEP 503 normalised project name: ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: str | Path) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` line of a pip-compile lock."""
    path = Path(path)
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line or line[0] in "# \t-":
            continue
        match = _PIN.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: expected 'name==version', found {line!r}")
        pins[canonical(match[1])] = match[2]
    if not pins:
        raise ValueError(f"{path}: no 'name==version' pins found")
    return pins


def installed_versions() -> dict[str, str]:
    """``{canonical name: version}`` of every distribution in this interpreter's environment: for a name
    found more than once on ``sys.path``, the first, the one ``import`` uses (setuptools appends its
    vendored copies of packaging, platformdirs and wheel to ``sys.path`` once imported, as
    ``torch.utils.cpp_extension`` does)."""
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        versions.setdefault(canonical(dist.metadata["Name"]), dist.version)
    return versions


def lock_mismatches(lock: dict[str, str], installed: dict[str, str]) -> list[str]:
    """One line per locked package that is absent or installed at another version."""
    problems = []
    for name, version in sorted(lock.items()):
        have = installed.get(name)
        if have != version:
            problems.append(f"{name}: locked {version}, installed {have or 'nothing'}")
    return problems


def environment_yml(lock: dict[str, str], torch: str, python: str = "3.11") -> str:
    """A conda environment file installing ``torch`` (a ``name==version`` pin), then every locked pin."""
    lines = [
        "# conda env create -f environment.yml && conda activate hogsa",
        "# Written by `make lock` from requirements.lock: the same pins, without the hashes.",
        "# On a CUDA machine the torch wheel below resolves to the CUDA build of the same version.",
        "name: hogsa",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={python}",
        "  - pip",
        "  - pip:",
        f"      - {torch}",
    ]
    lines += [f"      - {name}=={version}" for name, version in sorted(lock.items())]
    lines.append("      - -e .")
    return "\n".join(lines) + "\n"


def torch_pin(pyproject: str | Path) -> str:
    """The ``torch==X`` pin of pyproject.toml's dependencies."""
    match = re.search(r'"(torch==[^"]+)"', Path(pyproject).read_text())
    if match is None:
        raise ValueError(f"{pyproject}: field 'project.dependencies' holds no 'torch==<version>' pin")
    return match[1]


def main(argv: list[str]) -> None:
    lock_path, out_path = argv
    root = Path(lock_path).resolve().parent
    text = environment_yml(read_lock(lock_path), torch_pin(root / "pyproject.toml"))
    atomic_write_text(out_path, text)


if __name__ == "__main__":
    main(sys.argv[1:])
