"""Parameters: params.yaml is the only place defaults live; sections become frozen dataclasses.

A parameter set other than the default is a small YAML file of overrides (``params/smoke.yaml``)
applied on top of params.yaml, as ``dvc exp run -S key=value`` flags (``python -m hogsa.config
exp-run params/smoke.yaml`` runs the experiment, ``overrides`` prints the flags) or in Python with
``load_params(overrides=...)``.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def repo_root(start: str | Path | None = None) -> Path:
    """The study's root: the nearest folder at or above ``start`` (default cwd) holding dvc.yaml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    raise FileNotFoundError(f"no dvc.yaml at or above {here}: run from inside the hogsa study")


def load_params(path: str | Path = "params.yaml", overrides: str | Path | None = None) -> dict[str, Any]:
    """params.yaml as a dict, with an optional overrides file merged in (nested keys replaced)."""
    params = _read_yaml(Path(path))
    if overrides is not None:
        _merge(params, _read_yaml(Path(overrides)), Path(overrides), Path(path))
    return params


def section(params: dict[str, Any], name: str, cls: type[T]) -> T:
    """Build dataclass ``cls`` from ``params[name]``; missing or unknown keys and wrong types raise naming them."""
    if name not in params:
        raise KeyError(f"params.yaml: section '{name}' is missing")
    return from_dict(cls, params[name], where=f"params.yaml: {name}")


def from_dict(cls: type[T], values: dict[str, Any], where: str) -> T:
    """Frozen dataclass from a mapping, recursing into dataclass-typed fields and checking the others'
    values against their annotations (an int passes where a float is declared, a bool never as a number)."""
    if not isinstance(values, dict):
        raise TypeError(f"{where}: expected a mapping, got {type(values).__name__}")
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(fields))
    missing = sorted(set(fields) - set(values))
    problems = [f"{kind} keys {keys}" for kind, keys in (("unknown", unknown), ("missing", missing)) if keys]
    if problems:
        raise KeyError(f"{where}: {', '.join(problems)}; expected the keys {fields}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value, f"{where}.{key}")
        elif not _has_type(value, hint):
            raise TypeError(f"{where}.{key}: expected {_type_name(hint)}, got {type(value).__name__} {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def _has_type(value: Any, hint: Any) -> bool:
    """Whether a parameter value (as YAML gives it) fits the annotation ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return any(type(value) is type(arg) and value == arg for arg in args)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_has_type(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(_has_type(k, args[0]) and _has_type(v, args[1]) for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in typing.get_args(hint))
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def override_flags(overrides: str | Path) -> list[str]:
    """``-S key.sub=value`` flags for ``dvc exp run`` from an overrides file (values in JSON, which
    DVC's override grammar reads: lists, numbers, true/false/null, quoted strings)."""
    flags = []
    for key, value in _flatten(_read_yaml(Path(overrides))):
        flags += ["-S", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return flags


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: parameter file not found")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of parameter sections")
    return data


def _merge(base: dict, extra: dict, extra_path: Path, base_path: Path, prefix: str = "") -> None:
    for key, value in extra.items():
        if key not in base:
            raise KeyError(f"{extra_path}: key '{prefix}{key}' does not exist in {base_path}")
        if isinstance(value, dict) and isinstance(base[key], dict):
            _merge(base[key], value, extra_path, base_path, f"{prefix}{key}.")
        else:
            base[key] = value


def _flatten(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def main(argv: list[str]) -> None:
    """``overrides FILE``: print the dvc flags; ``exp-run FILE [dvc args]``: run ``dvc exp run`` with them."""
    if len(argv) >= 2 and argv[0] == "overrides":
        print(shlex.join(override_flags(argv[1])))
    elif len(argv) >= 2 and argv[0] == "exp-run":
        sys.exit(subprocess.call([sys.executable, "-m", "dvc", "exp", "run", *override_flags(argv[1]), *argv[2:]]))
    else:
        sys.exit("usage: python -m hogsa.config overrides|exp-run params/<set>.yaml [dvc exp run arguments]")


if __name__ == "__main__":
    main(sys.argv[1:])
