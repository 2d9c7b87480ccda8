# Two commands: `make demo` and `make test`. Each sets up its own virtualenv from the repo's files
# (with the `traffic-mirror` CLI in .venv/bin: requirements.txt installs this package, `-e .`).
# `make playground` (= `make demo ARGS=--keep`) keeps the demo's embedded AWS running to try the CLI on.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo playground test lint bench clean generate

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m scripts.demo $(ARGS)

playground: $(STAMP)
	$(BIN)/python -m scripts.demo --keep

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_handler
	$(BIN)/python -m benchmarks.bench_scale

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

generate: $(STAMP)
	$(BIN)/python -m scripts.generate
