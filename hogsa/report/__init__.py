"""Each stage's work as plain functions: ``hogsa.report.<stage>`` holds its steps, metrics and figures, and
``run(params, paths)`` does what the stage's notebook does (``hogsa <stage>`` on the command line)."""
