# The two commands a fresh clone needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCALE  ?= 1
ONLY   ?=
WORKERS ?= auto

.PHONY: install demo test test-slow lint typecheck bench clean

install: $(STAMP)  ## venv + pinned packages + DuckDB extensions from PyPI

$(STAMP): pyproject.toml constraints.txt scripts/ensure-services.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,dagster]'
	$(BIN)/python -m lake.extensions
	$(BIN)/python -m expectations.docs_assets
	bash scripts/ensure-services.sh
	mkdir -p data/warehouse
	touch $(STAMP)

demo: install  ## generate the example shop and run the whole pipeline on the local lake
	$(BIN)/lakehouse demo --scale $(SCALE)

test: install lint typecheck  ## every test: unit + integration (real DuckDB, dbt, GX, S3)
	$(BIN)/pytest -q -n $(WORKERS) --dist worksteal --durations=30 tests

test-slow: install  ## long sweeps (kills by the hundred, hostile APIs and files); CI skips them
	$(BIN)/pytest -q -m slow tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

bench: install  ## benchmarks; `make bench ONLY=ingest_csv` runs one
	$(BIN)/python -m bench $(ONLY)

clean:
	rm -rf data .duckdb_extensions dbt_project/target dbt_project/logs
