# Thin wrappers. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
# `dvc exp show` in a 120-column terminal: experiment, the DVC metrics, the params that
# differ; no timestamps, no dependency hashes (make exp-show EXP_SHOW="..." to change)
EXP_SHOW ?= --only-changed \
	--drop 'Created|State|Executor|rev|.*/.*\.(py|json|csv)|src/.*|data/.*|models/.*|val/mean_class_accuracy|area_share'

.PHONY: help install demo test test-fast lint format params clean-data repro metrics plots exp-show ui run docs docs-serve

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

# DVC runs each stage as `bibcrop <stage>`, found on PATH: these targets put .venv/bin
# first, so they work from a fresh shell without activating the venv.
repro: install  ## dvc repro (one stage: make repro S=train)
	dvc repro $(S)

metrics: install  ## dvc metrics show (numbers only)
	dvc metrics show

plots: install  ## dvc plots show: training curves, val mIoU per evaluation, per-class IoU
	dvc plots show

exp-show: install  ## dvc exp show, the columns that matter, fits 120 columns
	dvc exp show $(EXP_SHOW)

ui: install  ## the MLflow UI on the local store: http://127.0.0.1:5000
	mlflow ui --backend-store-uri sqlite:///mlflow.db

run: install  ## any command with the venv first on PATH: make run CMD="dvc exp run -S train.steps=20"
	$(CMD)

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

# NO_MKDOCS_2_WARNING: Material's end-of-life notice, printed on every build, is about the
# theme, not about a page; the variable is the switch it names
docs: install  ## build the documentation site into site/ (strict: broken links and missing pages fail)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: install  ## serve the documentation site at http://127.0.0.1:8000, rebuilt on each edit
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict
