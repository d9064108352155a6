# Two commands for a fresh machine:  make tutorial  |  make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# generated checkpoints, datasets and features live here (git-ignored); override to share a cache
export MODAVERSE_CACHE ?= $(CURDIR)/.cache

.PHONY: install tutorial test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# Without a GPU, take the CPU build of torch first: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -c "import torch" 2>/dev/null || \
	  if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install torch; else $(BIN)/pip install torch==2.13.0; fi
	$(BIN)/pip install -e ".[notebooks,dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (modaverse_lite)"
	touch $(STAMP)

install: $(STAMP)

tutorial: install  ## build the tiny zoo, then run every notebook headless into runs/
	$(BIN)/python -m modaverse_lite zoo
	$(BIN)/python -m modaverse_lite tutorial --out runs

test: install  ## the whole suite, notebooks included
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check modaverse_lite tests notebooks

clean:
	rm -rf runs .pytest_cache
