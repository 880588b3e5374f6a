"""The smoke study: every dvc.yaml stage run as dvc runs it, with its paths moved under a folder."""

import itertools
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hogsa.cli import main
from hogsa.config import load_params

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
ORDER = ("assets", "data", "hogs", "contactnet", "pom", "srm", "augment", "baseline_inputs", "train_baseline",
         "baselines", "report")


def matrix_items(name: str, params_file: Path | None = None) -> list[dict[str, str]]:
    """The items dvc expands stage ``name`` into ({key: value} each; one empty item for a plain stage),
    its ``${section.key}`` lists read from ``params_file`` (default: the smoke set's)."""
    matrix = STAGES[name].get("matrix")
    if matrix is None:
        return [{}]
    params = (yaml.safe_load(params_file.read_text()) if params_file is not None
              else load_params(ROOT / "params.yaml", ROOT / "params" / "smoke.yaml"))
    lists = []
    for key, reference in matrix.items():
        values = params
        for part in reference.strip("${}").split("."):
            values = values[part]
        lists.append([(key, str(v)) for v in values])
    return [dict(item) for item in itertools.product(*lists)]


def _expand(text: str, item: dict[str, str]) -> str:
    for key, value in item.items():
        text = text.replace("${item." + key + "}", value)
    return text


def stage_argv(name: str, root: Path, params_file: Path, item: dict[str, str] | None = None) -> list[str]:
    """``hogsa notebook`` arguments of dvc.yaml's stage ``name`` (of matrix ``item``) with every path put
    under ``root``; the matrix's own values are passed as they are."""
    item = item or {}
    words = STAGES[name]["cmd"].split()
    assert words[:2] == ["hogsa", "notebook"], f"dvc.yaml: stage {name!r} is not a notebook stage"
    argv = ["notebook", words[2], str(root / _expand(words[3], item)), "-p", "params_file", str(params_file)]
    for k in range(4, len(words), 3):
        assert words[k] == "-p", f"dvc.yaml: stage {name!r}: expected '-p NAME PATH' at word {k}"
        value = _expand(words[k + 2], item)
        argv += ["-p", words[k + 1], value if words[k + 2].startswith("${item.") else str(root / value)]
    return argv


def stage_outputs(name: str, root: Path, params_file: Path | None = None) -> list[Path]:
    """The outs and metrics dvc.yaml declares for stage ``name`` (every matrix item's), under ``root``."""
    stage = STAGES[name]
    paths = [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", []) + stage.get("metrics", [])]
    return [root / _expand(p, item) for item in matrix_items(name, params_file) for p in paths]


def stage_timings(name: str, root: Path, params_file: Path | None = None) -> list[Path]:
    """The timings files stage ``name`` writes (``-p timings``; one per matrix item), under ``root``."""
    words = STAGES[name]["cmd"].split()
    if "timings" not in words:
        return []
    path = words[words.index("timings") + 1]
    return [root / _expand(path, item) for item in matrix_items(name, params_file)]


def run_stage(name: str, root: Path, params_file: Path) -> None:
    """Stage ``name`` as dvc runs it (each matrix item in turn), its paths under ``root``; the report stage
    gets a copy of the README, whose Results section it rewrites."""
    if name == "report" and not (root / "README.md").exists():
        shutil.copy(ROOT / "README.md", root / "README.md")
    for item in matrix_items(name, params_file):
        main(stage_argv(name, root, params_file, item))


def file_digests(folder: Path) -> dict[str, str]:
    """{path relative to ``folder``: sha256} of every file below ``folder``."""
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def smoke_params(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(load_params(ROOT / "params.yaml", ROOT / "params" / "smoke.yaml")))
    return path


def outputs_digests(stage: str, root: Path) -> dict[str, str]:
    """{path relative to ``root``: sha256} of every file of ``stage``'s outs and metrics."""
    digests = {}
    for path in stage_outputs(stage, root):
        if path.is_dir():
            digests.update({f"{path.relative_to(root)}/{k}": v for k, v in file_digests(path).items()})
        elif path.exists():
            digests[str(path.relative_to(root))] = file_digests(path.parent)[path.name]
    return digests


@dataclass(frozen=True)
class StageRun:
    """One uninterrupted run of a stage in the smoke study: its duration (s) and its outputs' digests."""

    seconds: float
    digests: dict[str, str]


@pytest.fixture(scope="session")
def smoke_runs() -> dict[str, StageRun]:
    """{stage: StageRun} of the runs that made ``smoke_study``, filled by it."""
    return {}


@pytest.fixture(scope="session")
def smoke_study(smoke_params, smoke_runs, tmp_path_factory) -> Path:
    """A folder holding every stage's outputs on the smoke set, at dvc.yaml's paths, made once."""
    root = tmp_path_factory.mktemp("study")
    previous = os.environ.get("HOGSA_NO_COMPILE")
    os.environ["HOGSA_NO_COMPILE"] = "1"  # smoke-sized crops: compiling would cost more than it saves
    try:
        for name in ORDER:
            tic = time.perf_counter()
            run_stage(name, root, smoke_params)
            smoke_runs[name] = StageRun(time.perf_counter() - tic, outputs_digests(name, root))
    finally:
        if previous is None:
            del os.environ["HOGSA_NO_COMPILE"]
        else:
            os.environ["HOGSA_NO_COMPILE"] = previous
    return root
