# gradwise: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast test-claims claims bench lint clean

venv: $(STAMP)

# torch is pinned first: the CPU build of 2.13.0 installs from a local wheel in
# seconds, and the looser range in pyproject is then already satisfied.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: venv
	$(BIN)/gradwise demo

test: venv
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow"

# Trained-result claims (pytest -m claim) with one thread and with the default:
# other thread counts pick other kernels, so other round-off.
test-claims: venv
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m claim
	$(BIN)/python -m pytest -q -m claim

# Every claim of the tour over 5 seeds x {1, 2} threads, as one table (docs/claims.md).
claims: venv
	$(BIN)/python benchmarks/claims.py

bench: venv
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: venv
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info runs
