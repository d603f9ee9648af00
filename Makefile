# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv when it is missing.
# `make docs` builds the documentation site (mkdocs, strict) into site/.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
ARCH    := $(shell uname -m)
# torch/torchvision pairs that import together (docs/getting-started.md).
ifeq ($(ARCH),aarch64)
TORCH   := torch==2.9.1 torchvision==0.24.1
else
TORCH   := torch==2.14.1 torchvision==0.29.1
endif
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline
export NO_MKDOCS_2_WARNING ?= 1
PYTEST_ARGS ?=

.PHONY: install demo test test-all lint clean bench docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The main command. Like every study experiment it starts from the RGB foundation (model.init=foundation:
# trained first, once, and cached under outputs/foundation/<config hash>/).
demo: $(STAMP)
	$(BIN)/unitrack train +experiment=serial_replay

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -q --runslow $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/unitrack bench

# Strict: a broken link or anchor, or a nav entry without its page, fails the build (tests/test_docs.py too).
docs: $(STAMP)
	$(BIN)/python -m mkdocs build --strict -d site

lint: $(STAMP)
	$(BIN)/ruff check unitrack tests

clean:
	rm -rf outputs multirun site .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
