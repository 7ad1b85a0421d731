# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# axe-core for the accessibility checks in the browser tests (pinned in package-lock.json).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

demo: $(STAMP)
	$(BIN)/aspdigest check asp23
	$(BIN)/aspdigest build asp23
	$(BIN)/aspdigest schedule plan asp23
	@echo "outputs:     $(CURDIR)/out/asp23/"
	@if [ -f out/asp23/index.html ]; then echo "review page: $(CURDIR)/out/asp23/index.html"; fi

test: $(STAMP) node_modules/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf out .aspdigest tests/artifacts
