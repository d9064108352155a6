# Two commands for a fresh machine:  make tutorial  |  make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every package at one exact version, torch's CPU build included: `make lock` writes it from pyproject.toml.
LOCK   := requirements-cpu.lock
TORCH  := $(shell sed -n 's/^\(torch==[^ ]*\).*/\1/p' $(LOCK))
# PyTorch's index of CPU builds, for a machine whose own wheelhouse (pip's find-links) lacks $(TORCH)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# where `make lock` finds the CPU build of torch: a page of links or a folder of wheels
TORCH_WHEELS ?= $(TORCH_CPU_INDEX)/torch/
LOCK_VENV := .lock-venv
UV     := uv==0.13.9
# generated checkpoints, datasets and features live here (git-ignored); override to share a cache
export MODAVERSE_CACHE ?= $(CURDIR)/.cache

.PHONY: install tutorial test lab lock lint clean

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# No GPU: exactly the lock. Torch goes first, alone, from a local wheelhouse or PyTorch's CPU index, so that
	# pip never pulls a multi-GB CUDA build. A GPU: the platform's torch stays, the rest comes from the lock.
	if command -v nvidia-smi >/dev/null 2>&1; then \
	  $(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(firstword $(subst +, ,$(TORCH)))"; \
	  grep -v '^torch==' $(LOCK) > $(VENV)/requirements-gpu.txt; \
	  $(BIN)/pip install --no-deps -r $(VENV)/requirements-gpu.txt; \
	else \
	  $(BIN)/pip install --no-deps --no-index "$(TORCH)" >/dev/null 2>&1 || \
	    $(BIN)/pip install --no-deps --index-url $(TORCH_CPU_INDEX) "$(TORCH)"; \
	  $(BIN)/pip install -r $(LOCK); \
	fi
	$(BIN)/pip install --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (modaverse_lite)"
	touch $(STAMP)

install: $(STAMP)

tutorial: install  ## build the tiny zoo, then run every notebook headless into runs/
	$(BIN)/python -m modaverse_lite zoo
	$(BIN)/python -m modaverse_lite tutorial --out runs

test: install  ## the whole suite, notebooks included
	$(BIN)/python -m pytest

lab: install  ## JupyterLab on notebooks/, with make tutorial's cache; outputs are stripped whenever a notebook is saved
	$(BIN)/python -m modaverse_lite zoo
	$(BIN)/jupyter lab --config=jupyter_server_config.py --ServerApp.root_dir=notebooks $(LAB_ARGS)

lock:  ## rewrite $(LOCK) from pyproject.toml, keeping every pin that still fits (UPGRADE=1: the newest that fit)
	test -x $(LOCK_VENV)/bin/uv || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install "$(UV)"; }
	$(LOCK_VENV)/bin/uv pip compile pyproject.toml --extra notebooks --extra dev \
	  --python-version 3.11.7 --python-platform x86_64-manylinux_2_28 \
	  --find-links $(TORCH_WHEELS) -c lock-constraints.txt $(if $(UPGRADE),--upgrade) \
	  --custom-compile-command "make lock" -o $(LOCK)

lint: install
	$(BIN)/ruff check modaverse_lite tests notebooks

clean:
	rm -rf runs .pytest_cache
