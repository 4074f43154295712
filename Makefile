# caseconf — developer entry points. A fresh machine needs only python3 and make.
#
#   make run     install, migrate, load the demo data, start Prefect, serve the flows
#   make test    install, then pytest (PYTEST_ARGS="-k foo -x" to pass arguments)
#   make lint    ruff + mypy
#
# Prefect keeps its state under var/prefect instead of ~/.prefect unless PREFECT_HOME is set.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_HOME ?= $(CURDIR)/var/prefect

.DEFAULT_GOAL := help

.PHONY: help venv install migrate load run test screenshots lint format map bench faults lock clean

help:
	@echo "make run      install, migrate, load demo data, start Prefect (UI on http://127.0.0.1:4200), serve flows"
	@echo "make install  create .venv and install caseconf with its dev extras (when pyproject.toml changes)"
	@echo "make test     install, then run pytest (PYTEST_ARGS passed through; TEST_WORKERS=1 for one process)"
	@echo "make screenshots  run the browser tests and write their pictures to docs/screenshots/"
	@echo "make lint     ruff check, ruff format --check, mypy"
	@echo "make format   ruff format, ruff check --fix"
	@echo "make map      write docs/architecture.md's module map from the modules' docstrings"
	@echo "make migrate  bring caseconf's database to the newest revision"
	@echo "make load     load the demo profile(s) and agency directory"
	@echo "make bench    run bench/: invitations, imports, history, steps, portfolio, production, load"
	@echo "              (BENCH_ARGS=\"history --rounds 3\" for one, with its options)"
	@echo "make faults   crash every task boundary, fuzz every form, load; writes docs/reliability.md (long)"
	@echo "make lock     regenerate docker/requirements.lock (uv, with hashes) after a dependency change"
	@echo "make clean    remove var/ and caches (keeps .venv)"

# --- environment -------------------------------------------------------------

venv install: $(STAMP)

# Reinstalls only when pyproject.toml is newer than the stamp. uv installs the same versions as
# pip in a few seconds instead of about forty (a fresh clone's CI installs every time); pip
# does it when uv cannot be had.
$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu install the python3-venv package." >&2; \
	  exit 1; }
	@if $(BIN)/python -m pip install -q 'uv>=0.5,<1' \
	  && $(BIN)/python -m uv pip install --python $(BIN)/python -e '.[dev]'; then :; else \
	  echo "make install: uv could not install; installing with pip" >&2; \
	  $(BIN)/python -m pip install --upgrade pip \
	  && $(BIN)/python -m pip install -e '.[dev]'; \
	fi
	@touch $@

# --- database and demo data --------------------------------------------------

migrate: $(STAMP)
	$(BIN)/python -m deployments migrate

load: migrate
	$(BIN)/python -m deployments load

# --- run ---------------------------------------------------------------------

# deployments/run.sh starts a local Prefect server unless PREFECT_API_URL is set,
# then runs `python -m deployments serve` in the foreground; Ctrl-C stops both.
run: load
	bash deployments/run.sh

# --- quality -----------------------------------------------------------------

# Everything on SQLite first; then, when CASECONF_TEST_DATABASE_URL names a PostgreSQL database,
# the database tests again on it (marked `database`; the whole-case walks, marked `flow`, run on
# SQLite only: they are CPU-bound and the suite must stay under 7 minutes on 2 cores).
# The SQLite pass runs on TEST_WORKERS processes (pytest-xdist): since runs start warm, a
# whole-case walk spends most of its time waiting for Prefect (two workers kept 2 cores about 40%
# busy), so three share 2 cores. Tests are handed out one at a time, the longest first
# (tests/conftest.py), so the workers finish together.
TEST_WORKERS ?= 3

test: $(STAMP)
	env -u CASECONF_TEST_DATABASE_URL $(BIN)/pytest -n $(TEST_WORKERS) --dist load --maxschedchunk 1 --durations=15 $(PYTEST_ARGS)
	@if [ -n "$${CASECONF_TEST_DATABASE_URL:-}" ]; then \
	  echo "make test: PostgreSQL pass on $$CASECONF_TEST_DATABASE_URL"; \
	  $(BIN)/pytest -n 2 -m "database and not flow" $(PYTEST_ARGS); \
	fi

# The browser tests write their screenshots to a temporary folder (a test run leaves the tree
# clean); this refreshes the ones the docs show, each form pictured whole. Look at them before
# committing them.
screenshots: $(STAMP)
	CASECONF_SCREENSHOTS=$(CURDIR)/docs/screenshots env -u CASECONF_TEST_DATABASE_URL \
	  $(BIN)/pytest -n 2 tests/test_browser_walk.py tests/test_browser_manager.py $(PYTEST_ARGS)

# docs/architecture.md's module map, from each module's docstring (a test checks it is current).
map: $(STAMP)
	$(BIN)/python -m tests.module_map --write

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy flows tasks models deployments

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Crash injection at every task boundary of both conference types, the form fuzzing with more
# examples, and the load benches (bench/load.py); writes docs/reliability.md. Long (about an
# hour on 2 cores): not in `make test`, which runs a fast subset (tests/test_crash_points.py,
# tests/test_fuzz_forms.py).
faults: $(STAMP)
	env -u CASECONF_TEST_DATABASE_URL $(BIN)/python -m tests.faults $(FAULTS_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The production image installs exactly this lock (docker/Dockerfile, --require-hashes).
lock: $(STAMP)
	$(BIN)/python -m uv --version >/dev/null 2>&1 || $(BIN)/python -m pip install 'uv>=0.5,<1'
	$(BIN)/python -m uv pip compile pyproject.toml --extra production --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --custom-compile-command "make lock" \
	  --quiet -o docker/requirements.lock

# --- housekeeping ------------------------------------------------------------

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache .hypothesis build *.egg-info
	find . \( -path ./.venv -o -path ./.git \) -prune -o -type d -name __pycache__ -exec rm -rf {} +
