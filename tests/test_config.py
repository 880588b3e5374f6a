from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hogsa.config import from_dict, load_params, override_flags, section


@dataclass(frozen=True)
class Inner:
    a: int


@dataclass(frozen=True)
class Outer:
    inner: Inner
    name: str


def test_section_builds_nested_dataclass_and_rejects_unknown_or_missing_keys():
    cfg = section({"s": {"inner": {"a": 1}, "name": "x"}}, "s", Outer)
    assert cfg == Outer(Inner(1), "x")
    with pytest.raises(KeyError, match=r"unknown keys \['b'\]"):
        from_dict(Outer, {"inner": {"a": 1, "b": 2}, "name": "x"}, "params.yaml: s")
    with pytest.raises(KeyError, match=r"missing keys \['name'\]"):
        from_dict(Outer, {"inner": {"a": 1}}, "params.yaml: s")


def test_overrides_merge_and_flags(tmp_path):
    base = tmp_path / "params.yaml"
    base.write_text(yaml.safe_dump({"seed": 0, "stage": {"size": 64, "sub": {"k": [1, 2]}}}))
    over = tmp_path / "smoke.yaml"
    over.write_text(yaml.safe_dump({"stage": {"sub": {"k": [3]}}}))
    params = load_params(base, over)
    assert params == {"seed": 0, "stage": {"size": 64, "sub": {"k": [3]}}}
    assert override_flags(over) == ["-S", "stage.sub.k=[3]"]
    over.write_text(yaml.safe_dump({"stage": {"sub": {"k": ["a b", None]}, "size": 1.5}}))
    assert override_flags(over) == ["-S", "stage.size=1.5", "-S", 'stage.sub.k=["a b",null]']
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"stage": {"nope": 1}}))
    with pytest.raises(KeyError, match="stage.nope"):
        load_params(base, bad)


def test_repository_parameter_sets_are_consistent():
    root = Path(__file__).resolve().parents[1]
    params = load_params(root / "params.yaml", root / "params" / "smoke.yaml")
    assert set(params) >= {"seed", "hand"}
