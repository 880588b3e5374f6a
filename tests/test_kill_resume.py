"""Kill-safe resume: a stage SIGKILLed at random moments, then rerun, ends as an uninterrupted run ends.

Each long stage (dataset generation, HOGS training, SRM training, augmentation) runs as dvc runs it,
in a process of its own (papermill, which starts a Jupyter kernel in a session of its own). Its
outputs are removed; three times in a row it is started and killed (kernel and papermill, SIGKILL) at
a moment drawn from a seeded generator within the first half of the uninterrupted run that made the
smoke study, each start resuming what the killed ones left; then it is run to the end and its outputs
are compared byte for byte with that run's. No temporary file may be left. When the test fails, the
stage is run once more to the end, so the tests after it find its outputs.
"""

import os
import random
import shutil
import signal
import subprocess
import sys

import psutil
import pytest
from conftest import ROOT, outputs_digests, stage_argv, stage_outputs

KILLS = 3


def start(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "HOGSA_NO_COMPILE": "1", "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, "-m", "hogsa.cli", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def run_to_end(argv: list[str]) -> None:
    process = start(argv)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()[-3000:]


def kill_after(argv: list[str], seconds: float) -> bool:
    """Run the stage and SIGKILL it and its kernel after ``seconds``; False when it ended before."""
    process = start(argv)
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        pass
    family = psutil.Process(process.pid).children(recursive=True)
    for child in family:  # the kernel first: it is the one writing
        child.send_signal(signal.SIGKILL)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    psutil.wait_procs(family, timeout=10)
    return True


def remove_outputs(stage: str, root) -> None:
    for path in stage_outputs(stage, root):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["data", "hogs", "srm", "augment"])
def test_a_stage_killed_three_times_resumes_to_the_same_bytes(smoke_study, smoke_runs, smoke_params, stage):
    argv = stage_argv(stage, smoke_study, smoke_params)
    uninterrupted = smoke_runs[stage]
    assert len(uninterrupted.digests) >= 5
    rng = random.Random(f"kill {stage}")
    moments = [rng.uniform(0.15, 0.5) * uninterrupted.seconds for _ in range(KILLS)]
    try:
        remove_outputs(stage, smoke_study)
        for _ in range(4):  # on a busy machine a run can be faster than the timed one: kill earlier
            if kill_after(argv, moments[0]):
                break
            remove_outputs(stage, smoke_study)
            moments = [moment / 2 for moment in moments]
        else:
            pytest.fail(f"the {stage} stage ended before every first kill moment down to {moments[0]:.1f} s")
        killed = [moments[0]]
        for moment in moments[1:]:
            if not kill_after(argv, moment):
                break  # the resumed run got to the end
            killed.append(moment)
        run_to_end(argv)
        assert outputs_digests(stage, smoke_study) == uninterrupted.digests, \
            f"killed at {killed} s of runs resuming each other ({uninterrupted.seconds:.1f} s uninterrupted)"
        leftovers = [p for p in smoke_study.rglob("*") if ".tmp" in p.name]
        assert not leftovers, f"temporary files left after kills at {killed} s: {leftovers}"
    except BaseException:
        remove_outputs(stage, smoke_study)
        run_to_end(argv)
        raise
