"""hogsa.training: frozen parameters and checkpoints of several networks and optimizers."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from hogsa.training import (ITERATION, checkpoint_metadata, frozen, load_checkpoint, open_live, resume,
                            save_checkpoint)


def _networks(seed: int) -> dict[str, nn.Parameter]:
    torch.manual_seed(seed)
    first, second = nn.Linear(3, 2), nn.Linear(2, 1)
    return {**{f"first/{n}": p for n, p in first.named_parameters()},
            **{f"second/{n}": p for n, p in second.named_parameters()}}


def _optimizers(params: dict[str, nn.Parameter]) -> list[torch.optim.Adam]:
    return [torch.optim.Adam([p for n, p in params.items() if n.startswith(prefix)], lr=0.1)
            for prefix in ("first/", "second/")]


def _step(params: dict[str, nn.Parameter], optimizers: list[torch.optim.Adam]) -> None:
    x = torch.arange(6.0).reshape(2, 3)
    hidden = x @ params["first/weight"].T + params["first/bias"]
    loss = (hidden @ params["second/weight"].T + params["second/bias"]).square().sum()
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()
        optimizer.zero_grad()


def test_frozen_restores_only_what_was_trainable():
    module = nn.Linear(2, 2)
    module.bias.requires_grad_(False)
    x = torch.ones(1, 2, requires_grad=True)
    with frozen(module):
        assert not module.weight.requires_grad
        module(x).sum().backward()
        assert module.weight.grad is None and x.grad is not None
    assert module.weight.requires_grad and not module.bias.requires_grad


def test_checkpoint_round_trip_puts_each_adam_state_in_its_optimizer(tmp_path):
    params = _networks(0)
    optimizers = _optimizers(params)
    _step(params, optimizers)
    save_checkpoint(tmp_path / "c.safetensors", params, optimizers, {"run": "a", ITERATION: "1"})

    loaded = _networks(1)
    loaded_optimizers = _optimizers(loaded)
    assert load_checkpoint(tmp_path / "c.safetensors", loaded, loaded_optimizers) == {"run": "a", ITERATION: "1"}
    for name, param in params.items():
        assert torch.equal(param, loaded[name]), name
    # one more step from the loaded state equals one more step of the original
    _step(params, optimizers)
    _step(loaded, loaded_optimizers)
    for name, param in params.items():
        assert torch.equal(param, loaded[name]), name
    assert not list(tmp_path.glob("*.tmp*"))


def test_resume_only_the_same_run(tmp_path, capsys):
    params = _networks(0)
    path = tmp_path / "c.safetensors"
    assert resume(path, params, [], {"run": "a"}) == {}
    save_checkpoint(path, params, [], {"run": "a", ITERATION: "3"})
    other = _networks(1)
    before = {n: p.clone() for n, p in other.items()}
    assert resume(path, other, [], {"run": "b"}) == {}
    captured = capsys.readouterr()
    assert "written with different run; training from scratch" in captured.out + captured.err
    assert all(torch.equal(before[n], p) for n, p in other.items())
    assert resume(path, other, [], {"run": "a"})[ITERATION] == "3"
    assert checkpoint_metadata(path)["run"] == "a"


def test_load_names_the_file_and_the_mismatched_parameter(tmp_path):
    params = _networks(0)
    save_checkpoint(tmp_path / "c.safetensors", params, [], {})
    wrong = {**params, "first/weight": nn.Parameter(torch.zeros(4, 3))}
    with pytest.raises(ValueError, match=r"c\.safetensors: first/weight has shape \(2, 3\), expected \(4, 3\)"):
        load_checkpoint(tmp_path / "c.safetensors", wrong)
    with pytest.raises(ValueError, match="lacks the parameters"):
        load_checkpoint(tmp_path / "c.safetensors", {**params, "third/weight": nn.Parameter(torch.zeros(1))})


def test_a_summary_write_that_dies_leaves_the_previous_summary(tmp_path, monkeypatch):
    """A kill while the summary is written must not leave a file that the resumed run cannot read."""
    live = open_live(tmp_path / "live", 0)
    live.log_metric("train/loss", 0.5)
    live.next_step()
    previous = (tmp_path / "live" / "metrics.json").read_text()
    assert json.loads(previous) == {"train": {"loss": 0.5}, "step": 0}

    def dies_half_way(self, text, *args, **kwargs):
        with open(self, "w") as f:
            f.write(text[: len(text) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", dies_half_way)
    live.log_metric("train/loss", 0.25)
    with pytest.raises(KeyboardInterrupt):
        live.next_step()
    monkeypatch.undo()
    assert (tmp_path / "live" / "metrics.json").read_text() == previous
    resumed = open_live(tmp_path / "live", 1)
    assert resumed.summary == {"train": {"loss": 0.5}, "step": 0}
