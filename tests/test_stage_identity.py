"""Stage identity from one source: import closures, code digests, and dvc.yaml's deps and params."""

import re
from pathlib import Path

import pytest
import yaml

from hogsa import code_identity
from hogsa.code_identity import closure_files, code_digest, import_closure, imported_modules, notebook_code, notebook_modules

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PARAMS_READ = re.compile(r'section\(params, "(\w+)"|params\["(\w+)"\]')


def _notebook(stage: dict) -> Path:
    return ROOT / re.search(r"(notebooks/\S+\.ipynb)", stage["cmd"])[1]


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_dvc_deps_cover_the_import_closure_of_the_stage_notebook(name):
    """A change to any hogsa file the stage runs must make `dvc repro` rerun it."""
    stage = STAGES[name]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage["deps"]]
    files = [str(path.relative_to(ROOT)) for path in closure_files(*sorted(notebook_modules(_notebook(stage))))]
    missing = [f for f in files if not _covered(f, deps)]
    assert not missing, f"dvc.yaml: stage {name!r} deps miss files its notebook imports: {missing}"


def _stage_code(notebook: Path) -> str:
    """The notebook's code and the source of the hogsa modules it imports (its stage's functions)."""
    sources = [code_identity.module_file(m).read_text() for m in sorted(notebook_modules(notebook))]
    return "\n".join([notebook_code(notebook), *sources])


@pytest.mark.parametrize("name", sorted(STAGES))
def test_dvc_params_name_every_section_the_stage_notebook_reads(name):
    stage = STAGES[name]
    read = {a or b for a, b in PARAMS_READ.findall(_stage_code(_notebook(stage)))}
    assert read, f"{_notebook(stage)}: reads no params section (the pattern may be out of date)"
    missing = sorted(read - set(stage.get("params", [])))
    assert not missing, f"dvc.yaml: stage {name!r} params miss the sections its notebook reads: {missing}"


def _package(tmp_path, files: dict[str, str], monkeypatch) -> None:
    """A throwaway ``hogsa`` package of ``files`` for the closure walker."""
    for rel, text in files.items():
        path = tmp_path / "hogsa" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setattr(code_identity, "PACKAGE_ROOT", tmp_path / "hogsa")
    import_closure.cache_clear()


def test_closure_follows_absolute_relative_lazy_and_from_imports(tmp_path, monkeypatch):
    _package(tmp_path, {
        "__init__.py": "",
        "a.py": "import numpy\nfrom hogsa.b import thing\n\ndef f():\n    import hogsa.sub.d\n",
        "b.py": "from . import c\nthing = 1\n",
        "c.py": "",
        "sub/__init__.py": "from .e import x\n",
        "sub/d.py": "",
        "sub/e.py": "x = 0\n",
        "unused.py": "",
    }, monkeypatch)
    assert import_closure("hogsa.a") == ("hogsa", "hogsa.a", "hogsa.b", "hogsa.c", "hogsa.sub", "hogsa.sub.d",
                                         "hogsa.sub.e")
    import_closure.cache_clear()


def test_digest_changes_with_any_file_of_the_closure_and_only_those(tmp_path, monkeypatch):
    files = {"__init__.py": "", "a.py": "import hogsa.b\n", "b.py": "x = 1\n", "other.py": ""}
    _package(tmp_path, files, monkeypatch)
    before = code_digest("hogsa.a")
    (tmp_path / "hogsa" / "other.py").write_text("y = 2\n")
    assert code_digest("hogsa.a") == before
    (tmp_path / "hogsa" / "b.py").write_text("x = 2\n")
    assert code_digest("hogsa.a") != before
    import_closure.cache_clear()


def test_from_import_of_a_name_counts_the_module_not_a_missing_submodule():
    assert imported_modules("from hogsa.geometry import project_points\nfrom os import path\n") == {"hogsa.geometry"}


def test_stage_entry_modules_reach_the_modules_their_results_depend_on():
    """The modules the old hand-written lists forgot are in the closures now."""
    for entry in ("hogsa.hogs.train", "hogsa.srm.train", "hogsa.data.synth"):
        assert {"hogsa.geometry", "hogsa.open_hand"} <= set(import_closure(entry))
    assert "hogsa.data.dataset" in import_closure("hogsa.hogs.train")
