# ConvAtlas. The README's two commands: `make run` (serve at http://127.0.0.1:8000) and `make test`.
# `make help` lists every target.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Every install takes the tested set (constraints.txt, written by `make lock`): the same torch,
# ONNX Runtime, FastAPI ... as the last green `make test`. `CONSTRAINTS=` installs the newest.
CONSTRAINTS ?= constraints.txt
PIP_INSTALL := $(BIN)/pip install --quiet $(if $(CONSTRAINTS),--constraint $(CONSTRAINTS))
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install install-serve run test lint typecheck unit browser bench reliability models \
	dist lock clean clean-models

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-14s %s\n", $$1, $$2}' \
	  $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# What `make run` needs: the server and the model build (torch), no test tools.
$(VENV)/.installed-serve: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP_INSTALL) -e '.[build]'
	touch $@

# Everything, test tools included; it covers `make run` too.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $@ $(VENV)/.installed-serve

install: $(VENV)/.installed ## the development install: the app, the model build and the test tools (.venv)

install-serve: $(VENV)/.installed-serve ## only what `make run` needs: the app and the model build

# uvicorn on uvloop + httptools with our protocol (app/web/serve.py).
run: install-serve ## serve http://$(HOST):$(PORT); missing models build in the background
	$(BIN)/convatlas serve --host $(HOST) --port $(PORT)

lint: install ## ruff: lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy --strict on app/
	$(BIN)/mypy

# The browser tests drive Debian's chromium; install it where we can (root + apt), else say how.
CHROMIUM ?= /usr/bin/chromium
browser: ## Debian's chromium for the browser tests (installed with apt when root)
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	  else echo "make test needs Debian's chromium at $(CHROMIUM): sudo apt-get install chromium" >&2; \
	    exit 1; fi; }

unit: install browser ## pytest: every test
	$(BIN)/pytest

test: lint typecheck unit ## lint, types and every test (what CI runs)

bench: install ## benchmarks, written to docs/benchmarks.md
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 $(BIN)/python -m scripts.bench

# Load and fault scripts (minutes; not part of make test): writes docs/reliability.md.
reliability: install ## load and fault scripts, written to docs/reliability.md
	$(BIN)/python -m scripts.reliability --write-doc

models: install-serve ## build the model repository (models/) in the foreground
	$(BIN)/convatlas models build

dist: install ## the sdist and the wheel, into dist/
	$(BIN)/python -m build --outdir dist .

# To move the tested set: `make clean`, `make install CONSTRAINTS=` (the newest releases),
# `make test`, then `make lock` and commit constraints.txt.
lock: install ## rewrite constraints.txt from the installed (tested) set
	$(BIN)/python -m scripts.lock

clean: ## remove the virtualenv, caches and build output; keeps the built models
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info

clean-models: ## remove the built model repository (models/), keeping its README
	find models -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
