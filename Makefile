# ConvAtlas. The README's two commands: `make run` (serve at http://127.0.0.1:8000) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13.0 is what this project is tested with; pip picks the build that fits the machine.
TORCH_VERSION ?= 2.13.0
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint typecheck unit browser bench reliability models clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# uvicorn on uvloop + httptools with our protocol (app/web/serve.py).
run: install
	$(BIN)/convatlas serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The browser tests drive Debian's chromium; install it where we can (root + apt), else say how.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	  else echo "make test needs Debian's chromium at $(CHROMIUM): sudo apt-get install chromium" >&2; \
	    exit 1; fi; }

unit: install browser
	$(BIN)/pytest

test: lint typecheck unit

bench: install
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 $(BIN)/python -m scripts.bench

# Load and fault scripts (minutes; not part of make test): writes docs/reliability.md.
reliability: install
	$(BIN)/python -m scripts.reliability --write-doc

models: install
	$(BIN)/convatlas models build

clean:
	rm -rf $(VENV) models/*/ .pytest_cache .mypy_cache .ruff_cache
