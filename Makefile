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

.PHONY: setup repro smoke test bench lab lock clean-venv

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

# the CPU speed benchmarks (the GPU check has its own target)
bench: setup
	for f in $(filter-out bench/gpu_check.py,$(wildcard bench/*.py)); do $(PY) $$f; done

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

# ----------------------------------------------------------------------------------------------------
# The GPU check (README, "On a GPU"). A CUDA machine may run Python 3.12 with its own CUDA build of
# torch and reach no package registry: these targets need neither .venv nor a registry there.
GPU_PYTHON ?= python3
GPU_WHEELS := .gpu-wheels
GPU_SITE ?= /tmp/hogsa-gpu-site
GPU_LOCK ?= requirements.lock
# what bench/gpu_check.py imports that such a machine's image lacks (its list: numpy, scipy, torch,
# scikit-image, safetensors, rich, jaxtyping, tqdm, pyyaml, pillow, psutil, requests, colorama... are there)
GPU_WHEEL_NAMES := gsplat smplx trimesh embreex kornia kornia-rs dvclive dvc dvc-render dvc-studio-client \
                   funcy flatten-dict ruamel-yaml voluptuous
GPU_IMPORTS := gsplat,smplx,trimesh,embreex,kornia,kornia_rs,dvclive,dvc,dvc_render,dvc_studio_client,funcy,flatten_dict,ruamel.yaml,voluptuous

.PHONY: gpu-wheels gpu-check

# gpu-wheels: here, with a registry, download the wheels of GPU_WHEEL_NAMES at the versions
# $(GPU_LOCK) pins, built for CPython 3.12 on x86-64 Linux, into .gpu-wheels/ (git-ignored; emptied first,
# since two versions of one package stop an install)
gpu-wheels:
	@set -e; [ -f $(GPU_LOCK) ] || { echo "gpu-wheels: no $(GPU_LOCK) (the pinned lock; GPU_LOCK=path names another)" >&2; exit 1; }; \
	pins=""; for name in $(GPU_WHEEL_NAMES); do \
	  pin=$$(grep -m1 -E "^$$name==" $(GPU_LOCK) | cut -d' ' -f1); \
	  if [ -z "$$pin" ]; then echo "$(GPU_LOCK) pins no $$name" >&2; exit 1; fi; pins="$$pins $$pin"; done; \
	rm -rf $(GPU_WHEELS); echo "downloading into $(GPU_WHEELS):$$pins"; \
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d $(GPU_WHEELS) $$pins; \
	ls $(GPU_WHEELS); du -sh $(GPU_WHEELS)

# gpu-check: on the CUDA machine, install .gpu-wheels/ offline into GPU_SITE when GPU_PYTHON cannot import
# them yet, then run bench/gpu_check.py with hogsa from this source tree (it is not installed there);
# writes reports/gpu/gpu_check.json; without CUDA it says so and exits 0. GPU_CHECK_ARGS: its options
gpu-check:
	@if [ -d $(GPU_WHEELS) ] && ! PYTHONPATH=$(GPU_SITE) $(GPU_PYTHON) -c "import $(GPU_IMPORTS)" 2>/dev/null; then \
	  echo "installing $(GPU_WHEELS)/*.whl into $(GPU_SITE) (offline)"; \
	  $(GPU_PYTHON) -m pip install --quiet --no-index --no-deps --no-compile --upgrade --target $(GPU_SITE) \
	    $(GPU_WHEELS)/*.whl; \
	fi
	PYTHONPATH=$(CURDIR):$(GPU_SITE)$${PYTHONPATH:+:$$PYTHONPATH} $(GPU_PYTHON) bench/gpu_check.py $(GPU_CHECK_ARGS)
