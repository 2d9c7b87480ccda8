# `make demo`, `make test` (what CI runs) and `make check` (lint, types and the unit tier: the edit
# loop). Each sets up its own virtualenv from the repo's files (with the `traffic-mirror` CLI in
# .venv/bin: requirements.txt installs this package, `-e .`).
# `make playground` (= `make demo ARGS=--keep`) keeps the demo's embedded AWS running to try the CLI on.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TYPED := $(VENV)/.typed
# Third-party packages whose types mypy reads. Analysing them (pulumi_aws above all) is about 95% of
# a cold mypy run (78 s of CPU and 2.7 GiB measured on a fresh clone) and changes only with the virtualenv, so it is done once
# per virtualenv, into the cache that lives in it (pyproject.toml: cache_dir), and only for the
# targets that run mypy: the demo and the benchmarks never pay for it.
TYPED_DEPS := pulumi pulumi_aws boto3 botocore moto rich pytest werkzeug

.PHONY: demo playground test check lint bench clean generate

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(TYPED): $(STAMP)
	printf 'import %s\n' $(TYPED_DEPS) > $(VENV)/typed_deps.py
	$(BIN)/mypy $(VENV)/typed_deps.py
	touch $(TYPED)

demo: $(STAMP)
	$(BIN)/python -m scripts.demo $(ARGS)

playground: $(STAMP)
	$(BIN)/python -m scripts.demo --keep

# The whole suite on every core (pytest-xdist): its moto tests are CPU-bound and independent.
test: $(TYPED)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n auto

# Lint, types and the unit tier (no moto: a test that starts it fails unless marked `moto`), for
# the edit loop; `make test` before pushing.
# Measured on the 2-core machine, warm: 71 s wall, 68 s of CPU, 691 tests, at load under 1
# (docs/development.md).
check: $(TYPED)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not moto"

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_handler
	$(BIN)/python -m benchmarks.bench_scale

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

generate: $(STAMP)
	$(BIN)/python -m scripts.generate
