"""``hogsa`` command line: the same library calls the notebooks make.

``hogsa notebook IN.ipynb OUT.ipynb -p name value ...`` executes a stage notebook with papermill from
the study's root (so paths in dvc.yaml and in the notebook agree). The executed notebook is a stage
output, so it is normalised to depend on the results alone: papermill's clocks, the kernel's
execution timestamps and the stderr streams (progress bars, logs) are dropped and the injected
parameters cell gets a fixed id, and its input and output paths are the ones given (relative to the
study's root, as dvc.yaml gives them). It is written atomically, also when a cell fails (then it shows the
error and the command fails).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from hogsa.config import repo_root
from hogsa.io import atomic_path

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
    string hashing fixed, so that no set's order can change a result, however dvc was started)."""
    import papermill

    os.environ["PYTHONHASHSEED"] = "0"  # inherited by the kernel papermill starts
    root = repo_root()
    with atomic_path(root / output) as tmp:
        try:
            papermill.execute_notebook(
                str(root / notebook), str(tmp), parameters=parameters, cwd=str(root), language="python",
                kernel_name="python3", progress_bar=False, log_output=True,
            )
        finally:
            if tmp.is_file():
                executed = normalise_executed(json.loads(tmp.read_text()), str(notebook), str(output))
                tmp.write_text(json.dumps(executed, indent=1, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hogsa")
    commands = parser.add_subparsers(dest="command", required=True)
    nb = commands.add_parser("notebook", help="run a stage notebook with papermill")
    nb.add_argument("notebook", type=Path)
    nb.add_argument("output", type=Path)
    nb.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a string parameter for the notebook's parameters cell")
    args = parser.parse_args(argv)
    if args.command == "notebook":
        run_notebook(args.notebook, args.output, dict(args.p))


if __name__ == "__main__":
    main()
