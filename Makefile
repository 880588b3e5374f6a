# hogsa: two commands for a newcomer.
#   make repro   set up .venv and run the whole study on the embedded open default (dvc repro)
#   make test    set up .venv and run the test suite
SHELL := /bin/bash
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0
# idle OpenMP threads sleep instead of spinning: torch's CPU kernels otherwise burn a core each
# whenever another process (a parallel data worker, a test) shares the machine
export OMP_WAIT_POLICY := PASSIVE
export PATH := $(CURDIR)/.venv/bin:$(PATH)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hogsa-installed

.PHONY: setup repro smoke test bench lab clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU build; an unpinned torch would pull a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[study,dev]'
	$(PY) -m ipykernel install --user --name hogsa --display-name "Python (hogsa)" > /dev/null
	touch $@

setup: $(STAMP)

repro: setup
	$(VENV)/bin/dvc repro

# the small parameter set (params/smoke.yaml) applied on top of params.yaml as a DVC experiment
smoke: setup
	$(PY) -m hogsa.config exp-run params/smoke.yaml

test: setup
	$(PY) -m pytest -q

bench: setup
	for f in bench/*.py; do $(PY) $$f; done

lab: setup
	$(VENV)/bin/python -m pip install --quiet jupyterlab && $(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
