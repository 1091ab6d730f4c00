# Two commands: `make run` (the whole system locally) and `make test` (the whole suite). Both set everything up.
.PHONY: run test setup setup-test lint bench audit

run: setup
	.venv/bin/python -m bot run

test: setup-test
	.venv/bin/python -m ruff check .
	.venv/bin/python -m mypy
	.venv/bin/python -m pytest -p no:cacheprovider
	.venv/bin/python scripts/pip_audit.py

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --browser

bench: setup
	.venv/bin/python -m benchmarks.webhook
	.venv/bin/python -m benchmarks.matching
	.venv/bin/python -m benchmarks.staff_pages
	.venv/bin/python -m benchmarks.sweep

# known vulnerabilities in both environments (fails in CI when the vulnerability service is unreachable)
audit: setup
	.venv/bin/python scripts/pip_audit.py
