"""``hogsa`` command line: run a stage, as a notebook or as plain Python.

``hogsa notebook IN.ipynb OUT.ipynb -p name value ...`` executes a stage notebook with papermill from
the study's root (so paths in dvc.yaml and in the notebook agree); this is what dvc.yaml runs. The
executed notebook is a stage output, so it is normalised to depend on the results alone: papermill's
clocks, the kernel's execution timestamps and the stderr streams (progress bars, logs) are dropped and
the injected parameters cell gets a fixed id, and its input and output paths are the ones given
(relative to the study's root, as dvc.yaml gives them). It is written atomically, also when a cell fails
(then it shows the error and the command fails).

``hogsa <stage> [--params FILE] [--overrides FILE] [--<path> PATH ...]`` runs the functions that
stage's notebook calls (``hogsa.report.<stage>.run``) without Jupyter, from the study's root, and
writes the same files. Its path options are the notebook's parameters (``--index-file`` for
``index_file``); an option left out takes dvc.yaml's value, and paths given are relative to the
working directory. Like the notebook's kernel, it runs with string hashing fixed (PYTHONHASHSEED=0):
started without, it runs itself again in a process that has it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from hogsa.config import load_params, repo_root
from hogsa.io import atomic_path
from hogsa.report.paths import STAGE_PATHS, StagePaths, dvc_paths

RUN_DEPENDENT = ("start_time", "end_time", "duration")


def normalise_executed(notebook: dict, input_path: str, output_path: str) -> dict:
    """``notebook`` (nbformat 4 JSON) without what differs between two runs that compute the same."""
    papermill = notebook["metadata"].get("papermill", {})
    papermill.update(input_path=input_path, output_path=output_path)
    for key in RUN_DEPENDENT:
        papermill.pop(key, None)
    for cell in notebook["cells"]:
        for key in RUN_DEPENDENT:
            cell["metadata"].get("papermill", {}).pop(key, None)
        cell["metadata"].pop("execution", None)
        if "injected-parameters" in cell["metadata"].get("tags", []):
            cell["id"] = "injected-parameters"
        if "outputs" in cell:
            cell["outputs"] = [out for out in cell["outputs"]
                               if not (out["output_type"] == "stream" and out["name"] == "stderr")]
    return notebook


def run_notebook(notebook: Path, output: Path, parameters: dict[str, str]) -> None:
    """Execute ``notebook`` into ``output`` with papermill, cwd = study root, the venv's kernel (with
    string hashing fixed, so that no set's order can change a result, however dvc was started).

    A notebook whose metadata holds ``hogsa.omp_wait_policy`` gets that OpenMP wait policy in its kernel
    whatever the environment's: ``ACTIVE`` (idle threads spin) suits a stage that computes alone, such as
    the baselines' training, whose many small operations wait 1.3-1.7 times longer with ``PASSIVE``
    (``bench/baselines.py``), the policy the Makefile sets for stages that run worker processes."""
    import papermill

    os.environ["PYTHONHASHSEED"] = "0"  # inherited by the kernel papermill starts
    root = repo_root()
    policy = json.loads((root / notebook).read_text())["metadata"].get("hogsa", {}).get("omp_wait_policy")
    before = os.environ.get("OMP_WAIT_POLICY")
    with atomic_path(root / output) as tmp:
        try:
            if policy:
                os.environ["OMP_WAIT_POLICY"] = policy  # read by the kernel's libgomp as it loads
            papermill.execute_notebook(
                str(root / notebook), str(tmp), parameters=parameters, cwd=str(root), language="python",
                kernel_name="python3", progress_bar=False, log_output=True,
            )
        finally:
            _restore_environment("OMP_WAIT_POLICY", before)
            if tmp.is_file():
                executed = normalise_executed(json.loads(tmp.read_text()), str(notebook), str(output))
                tmp.write_text(json.dumps(executed, indent=1, ensure_ascii=False) + "\n")


def _restore_environment(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def stage_paths(stage: str, given: dict[str, str | None], root: Path) -> StagePaths:
    """``STAGE_PATHS[stage]`` of the paths ``given`` (relative to the working directory; made absolute) and,
    for those given as None, of dvc.yaml's (relative to the study's ``root``)."""
    defaults = dvc_paths(root / "dvc.yaml", stage)
    values = {name: defaults[name] if value is None else str(Path(value).resolve()) for name, value in given.items()}
    return STAGE_PATHS[stage](**values)


def run_stage(stage: str, params_file: Path | None, overrides: Path | None, given: dict[str, str | None]) -> None:
    """``hogsa.report.<stage>.run`` with the parameters of ``params_file`` (default: the study's params.yaml)
    and ``overrides``, and the paths ``given`` (``stage_paths``), in the study's root as working directory."""
    root = repo_root()
    paths = stage_paths(stage, given, root)
    params_file = (params_file or root / "params.yaml").resolve()
    params = load_params(params_file, None if overrides is None else overrides.resolve())
    previous = Path.cwd()
    os.chdir(root)
    try:
        importlib.import_module(f"hogsa.report.{stage}").run(params, paths)
    finally:
        os.chdir(previous)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hogsa")
    commands = parser.add_subparsers(dest="command", required=True)
    nb = commands.add_parser("notebook", help="run a stage notebook with papermill")
    nb.add_argument("notebook", type=Path)
    nb.add_argument("output", type=Path)
    nb.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a string parameter for the notebook's parameters cell")
    for stage, paths in STAGE_PATHS.items():
        command = commands.add_parser(stage, help=f"run the {stage} stage without Jupyter (hogsa.report.{stage}.run)")
        command.add_argument("--params", type=Path, help="parameter file (default: the study's params.yaml)")
        command.add_argument("--overrides", type=Path, help="a parameter set of overrides, e.g. params/smoke.yaml")
        for field in dataclasses.fields(paths):
            command.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, metavar="PATH",
                                 help=f"the notebook's {field.name} (default: dvc.yaml's)")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.command == "notebook":
        run_notebook(args.notebook, args.output, dict(args.p))
    elif sys.flags.hash_randomization:
        code = subprocess.call([sys.executable, "-m", "hogsa.cli", *argv], env={**os.environ, "PYTHONHASHSEED": "0"})
        if code:
            raise SystemExit(code)
    else:
        given = {field.name: getattr(args, field.name) for field in dataclasses.fields(STAGE_PATHS[args.command])}
        run_stage(args.command, args.params, args.overrides, given)


if __name__ == "__main__":
    main()
