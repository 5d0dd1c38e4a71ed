# Two commands set everything up from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-install lint typecheck bench bench-scale bench-instructions sandbox clean

# `demo` and `test` need the optional sandbox extra; `dev` brings the test tools and linters.
$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sandbox]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/syncagent demo

# scripts/ensure-chromium installs Debian's chromium for the browser test when it can; it never
# fails, and the browser test skips, saying why, when chromium is still missing.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy syncagent connectors state
	scripts/ensure-chromium
	$(BIN)/pytest -q

# The crash-safety test at the issue's full size: a 20,000-lead backfill killed ten times;
# then the fuzz suites at 1,430 cases per test (7 tests: 10,010 hostile cases in all).
test-slow: $(STAMP)
	SYNCAGENT_CRASH_LEADS=20000 $(BIN)/pytest -q tests/e2e/test_crash.py
	SYNCAGENT_FUZZ_EXAMPLES=1430 $(BIN)/pytest -q tests/fuzz

# A fresh venv: `pip install .` (no extras), then init + sync against the sandbox extra, from a
# folder with no checkout. Needs the package index; takes a few minutes.
test-install: $(STAMP)
	SYNCAGENT_TEST_PIP_INSTALL=1 $(BIN)/pytest -q tests/test_deploy.py -k pip_install

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy syncagent connectors state

# The benchmarks at their default sizes (bench/*_floor.py, *_world.py and *_seed.py are their
# helpers, and scale.py's big run is `make bench-scale`).
BENCHES := store engine sandbox connectors convergence e2e reports calibrate
bench: $(STAMP)
	for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

# The scale figures (issue 18), out of `make test` and `make bench` for their size: a rescore
# of a million seeded persons on SQLite and on the local Postgres, then a 100,000-lead
# backfill against the sandbox. Each prints JSON; together they take about an hour.
SCALE_POSTGRES ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py --persons 1000000 --postgres $(SCALE_POSTGRES)
	$(BIN)/python bench/e2e.py --leads 100000

# Instructions a rescore executes per person (valgrind's count: the host's speed does not move
# it), to compare two commits' evaluation cost where rates would follow the host. About 1 min.
bench-instructions: $(STAMP)
	$(BIN)/python bench/instructions.py

sandbox: $(STAMP)
	$(BIN)/syncagent sandbox --port 8765 --leads 2000 --seed 7

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis syncagent-state.db*
