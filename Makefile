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
LOCK := requirements.lock
# torch stays outside the lock: its CPU build (here) and CUDA build (a GPU machine) are different
# files of one version; it is installed first, pinned, and the lock is installed without resolving
TORCH := torch==2.13.0

.PHONY: setup repro smoke test bench lab lock gpu-check gpu-wheels clean-venv

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
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
	$(VENV)/bin/jupyter lab notebooks/

# regenerate the lock from pyproject.toml, then environment.yml from the lock
# `make lock` keeps the pins that still satisfy pyproject.toml; `make lock LOCK_FLAGS=--upgrade` takes the newest
lock: setup
	$(VENV)/bin/pip-compile --quiet --generate-hashes --extra study --extra dev --unsafe-package torch \
	  --build-deps-for wheel --build-deps-for editable --strip-extras --no-emit-index-url \
	  --no-emit-find-links $(LOCK_FLAGS) -o $(LOCK) pyproject.toml
	$(PY) -m hogsa.environment $(LOCK) environment.yml

clean-venv:
	rm -rf $(VENV)
