"""Code identity: the hogsa source files a stage runs, found by walking its imports, and their digest.

A stage's result depends on every hogsa module its entry module imports, directly or through others
(imports inside functions included), on the packages' ``__init__.py`` files those imports run, and on
the C++ source a module compiles (``X.cpp`` beside ``X.py``). The
closure is read from the source with ``ast``, without importing anything, so it is the same on every
machine. ``code_digest`` decides whether a checkpoint or a half-made dataset may be resumed; the test
of dvc.yaml checks that each stage's ``deps`` cover the closure of its notebook.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from pathlib import Path

PACKAGE = "hogsa"
PACKAGE_ROOT = Path(__file__).resolve().parent


def module_file(name: str) -> Path | None:
    """The source file of hogsa module ``name`` (``hogsa.a.b`` → ``hogsa/a/b.py`` or its package's
    ``__init__.py``), or None when ``name`` is not a hogsa module (an attribute, another package)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(source: str, importer: str = "") -> set[str]:
    """hogsa modules that Python ``source`` imports, anywhere in it. ``importer``, the module's own
    dotted name, resolves relative imports; ``from a import b`` counts ``a.b`` when that is a module."""
    found = set()
    own_file = module_file(importer)
    package = importer if own_file is not None and own_file.name == "__init__.py" else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + [base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if module_file(name) is not None}


def _with_parents(name: str) -> list[str]:
    """``hogsa.a.b`` → ``hogsa``, ``hogsa.a``, ``hogsa.a.b``: importing a module runs its packages too."""
    parts = name.split(".")
    return [".".join(parts[: k + 1]) for k in range(len(parts))]


@functools.lru_cache(maxsize=None)
def import_closure(*entries: str) -> tuple[str, ...]:
    """Sorted names of the hogsa modules ``entries`` run when imported (themselves included)."""
    seen: set[str] = set()
    todo = [parent for entry in entries for parent in _with_parents(entry)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name)
        if path is None:
            raise ModuleNotFoundError(f"{name}: not a module of {PACKAGE_ROOT}")
        seen.add(name)
        for imported in imported_modules(path.read_text(), name):
            todo.extend(_with_parents(imported))
    return tuple(sorted(seen))


def closure_files(*entries: str) -> list[Path]:
    """The source files of ``import_closure(*entries)``: each module's ``.py`` and, where a module
    compiles native code, the ``.cpp`` of the same name beside it (``hogsa/render/tile_composite``)."""
    files = []
    for name in import_closure(*entries):
        path = module_file(name)
        files += [path] + ([path.with_suffix(".cpp")] if path.with_suffix(".cpp").is_file() else [])
    return files


def notebook_code(notebook: str | Path) -> str:
    """The Python of a Jupyter notebook's code cells, one after another (IPython magics left out)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    lines = [line for cell in cells if cell["cell_type"] == "code"
             for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines) + "\n"


def notebook_modules(notebook: str | Path) -> set[str]:
    """hogsa modules imported by the code cells of a Jupyter notebook."""
    return imported_modules(notebook_code(notebook))


def code_digest(*entries: str) -> str:
    """16 hex digits identifying the source of ``import_closure(*entries)``: the same files with the same
    bytes give the same digest on every machine, whatever the checkout's location."""
    sources = {str(path.relative_to(PACKAGE_ROOT.parent)): hashlib.sha256(path.read_bytes()).hexdigest()
               for path in closure_files(*entries)}
    return hashlib.sha256(json.dumps(sources, sort_keys=True).encode()).hexdigest()[:16]
