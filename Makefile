# `make run` (the whole system locally) and `make test` (the whole suite, the one CI command). Both set everything up.
#   make test-fast   no Rasa training, no browser: the loop while editing (docs/testing.md)
#   make lint        ruff check + ruff format --check + mypy
#   make lock        re-resolve requirements.lock (exact versions and hashes for Python 3.11) from pyproject.toml
#   make audit       pip-audit over .venv and .venv-rasa (docs/security.md; fails in CI when it cannot audit)
#   make mutation    mutation testing of the modules that carry guarantees (slow; not in CI)
.PHONY: run test test-fast lint lock mutation setup setup-test bench audit

PY = .venv/bin/python
PYTEST = $(PY) -m pytest -p no:cacheprovider
# two workers: this machine has two cores (pytest-xdist; docs/testing.md has the timings)
XDIST = -n 2

run: setup
	$(PY) -m bot run

test: setup-test lint
	$(PYTEST)
	$(PY) scripts/pip_audit.py

# the loop while editing: SQLite only (the PostgreSQL half of every db_url test runs in make test), no Rasa, no
# browser, no `slow` data-volume tests; docs/testing.md says what it leaves to make test and how long it takes
test-fast: setup
	$(PYTEST) $(XDIST) -q -m "not rasa and not browser and not postgres and not slow"

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

lock:
	$(PY) -m uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-header --quiet -o requirements.lock

# make mutation [TARGETS="privacy crypto edge filters workdays"]; a module: TESTS="tests/unit/x.py" TARGETS=pkg/mod.py
mutation: setup
	bash scripts/mutation.sh $(TARGETS)

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --browser

bench: setup
	$(PY) -m benchmarks.webhook
	$(PY) -m benchmarks.matching
	$(PY) -m benchmarks.staff_pages
	$(PY) -m benchmarks.sweep
	$(PY) -m bot nlu eval  # accuracy and Rasa's parse p95 over HTTP (the wall-clock target lives here, not in tests)

audit: setup
	$(PY) scripts/pip_audit.py
