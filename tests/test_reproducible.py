"""Same parameters and seed, same bytes: the whole smoke study run twice gives identical outputs."""

import os

from conftest import ORDER, file_digests, run_stage, stage_outputs, stage_timings

from hogsa.report.report import TIMED_OUTPUTS


def test_two_runs_of_every_stage_give_byte_identical_outputs(smoke_study, smoke_params, monkeypatch):
    """The second run starts from nothing at the same paths (paths are part of some outputs, as under dvc).
    The report's pages are left out: they print each stage's minutes."""
    first_digests = file_digests(smoke_study)
    smoke_study.rename(smoke_study.with_name(smoke_study.name + "-first"))
    monkeypatch.setenv("HOGSA_NO_COMPILE", "1")
    for name in ORDER:
        run_stage(name, smoke_study, smoke_params)
    second = file_digests(smoke_study)
    outputs = {str(p.relative_to(smoke_study)) for name in ORDER for p in stage_outputs(name, smoke_study)}
    compared = [path for path in second if any(path == out or path.startswith(out + os.sep) for out in outputs)
                and path not in TIMED_OUTPUTS]
    assert len(compared) > 50 and set(compared) <= set(first_digests)
    differ = sorted(path for path in compared if first_digests[path] != second[path])
    assert not differ, f"outputs that differ between two runs: {differ}"
    timings = {path for path in second if path.startswith("reports/timings/")}
    assert timings == {str(path.relative_to(smoke_study)) for name in ORDER for path in stage_timings(name, smoke_study)}
