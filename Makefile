# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv when it is missing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
ARCH    := $(shell uname -m)
# torch/torchvision pairs that import on our machines (see README, "Set-up").
ifeq ($(ARCH),aarch64)
TORCH   := torch==2.9.1 torchvision==0.24.1
else
TORCH   := torch==2.14.1 torchvision==0.29.1
endif
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline
PYTEST_ARGS ?=

.PHONY: install demo test test-all lint clean bench

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

lint: $(STAMP)
	$(BIN)/ruff check unitrack tests

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
