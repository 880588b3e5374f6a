"""``hogsa`` command line: the same library calls the notebooks make.

``hogsa notebook IN.ipynb OUT.ipynb -p name value ...`` executes a stage notebook with papermill from
the study's root (so paths in dvc.yaml and in the notebook agree).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hogsa.config import repo_root


def run_notebook(notebook: Path, output: Path, parameters: dict[str, str]) -> None:
    """Execute ``notebook`` into ``output`` with papermill, cwd = study root, the venv's kernel."""
    import papermill

    root = repo_root()
    output = (root / output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(root / notebook), str(output), parameters=parameters, cwd=str(root),
        kernel_name="python3", progress_bar=False, log_output=True,
    )


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
