# Thin wrappers. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install demo test test-fast lint format params clean-data

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed  ## create .venv and install bibcrop with dev extras

demo: install  ## run the whole pipeline on the embedded synthetic data (dvc repro)
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show
	$(BIN)/bibcrop summary

test: install  ## run the full test suite (slow tests included)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest

test-fast: install  ## tests not marked slow
	$(BIN)/pytest -m "not slow"

lint: install  ## ruff lint + format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install  ## ruff autofix + format
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

params: install  ## recompose params.yaml from conf/ (extra Hydra overrides: make params O="dataset=lip")
	$(BIN)/bibcrop compose $(O)
