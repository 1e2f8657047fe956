# Costline: the two commands are `make demo` (the main job) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROJECTS := instrumentation/pyproject.toml processor/pyproject.toml dashboards/pyproject.toml requirements-dev.txt

# The lowest openai/anthropic releases the instrumentation supports, tested in a venv of their own.
VENV_MIN := .venv-min
OPENAI_MIN := 3.0.0
ANTHROPIC_MIN := 2.0.0

# The FinOps Foundation's FOCUS validator needs Python >= 3.12 (its code uses 3.12's f-strings): a venv of its own,
# only for the test that checks `--format focus` with it. Debian 12 ships no 3.12: without one the venv is not made
# and that test is skipped (outside CI; under CI=true it fails, so CI always validates). Nothing else needs 3.12.
VENV_FOCUS := .venv-focus
PYTHON_FOCUS ?= PYENV_VERSION=3.12.1 python3.12

.PHONY: venv test-deps venv-min venv-focus claude-code chromium test test-min demo bench dashboards prometheus alertmanager compose-client lint clean \
	node-deps record-node-spans

# What the product and `make demo` need: .venv with the three distributions (editable) and the dev tools, from PyPI.
# Nothing from Debian, no other Python.
venv: $(STAMP)

# What only the tests need: Debian's prometheus, prometheus-alertmanager, chromium, poppler-utils and docker-compose
# (root or sudo), the oldest SDKs in .venv-min, the FOCUS validator in .venv-focus where a Python 3.12 exists, the
# real Claude Code CLI from npm (its pinned version and lockfile in tests/processor/assistants/claude-code/), and
# Node.js with the Vercel AI SDK for the live Node test.
test-deps: venv-focus venv-min prometheus alertmanager compose-client chromium node-deps claude-code

CLAUDE_CODE := tests/processor/assistants/claude-code
claude-code: $(CLAUDE_CODE)/node_modules/.bin/claude

# `npm ci` installs exactly the lockfile; the package ships a native binary per platform (an optional dependency).
$(CLAUDE_CODE)/node_modules/.bin/claude: $(CLAUDE_CODE)/package.json $(CLAUDE_CODE)/package-lock.json
	cd $(CLAUDE_CODE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv-min: $(VENV_MIN)/.installed

venv-focus:
	@if $(PYTHON_FOCUS) --version >/dev/null 2>&1; then $(MAKE) --no-print-directory $(VENV_FOCUS)/.installed; \
	else echo "no Python 3.12 ($(PYTHON_FOCUS)): .venv-focus not made, the FOCUS validator's test will be skipped"; fi

# pyarrow 22 and later need NumPy 2, which focus-validator 2.2 refuses (numpy<2); pip does not see the clash.
$(VENV_FOCUS)/.installed:
	test -x $(VENV_FOCUS)/bin/python || $(PYTHON_FOCUS) -m venv $(VENV_FOCUS)
	$(VENV_FOCUS)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(VENV_FOCUS)/bin/python -m pip install --quiet "focus-validator>=2.2.1" "numpy>=1.26,<2" "pyarrow>=14,<22"
	touch $@

$(VENV_MIN)/.installed: instrumentation/pyproject.toml
	test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(VENV_MIN)/bin/python -m pip install --quiet -e "./instrumentation[test]" \
		"openai==$(OPENAI_MIN)" "anthropic==$(ANTHROPIC_MIN)"
	touch $@

$(STAMP): $(PROJECTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet \
		-e "./instrumentation[test]" \
		-e "./processor[test,postgres]" \
		-e "./dashboards[test]" \
		-r requirements-dev.txt
	touch $(STAMP)

# Prometheus and promtool come from Debian's package (rule tests and query tests need the real binaries).
prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || bash scripts/install-debian-packages.sh

# Alertmanager and amtool from Debian's package (the binary is `prometheus-alertmanager` there): config checks, route
# tests and the end-to-end notification test.
alertmanager:
	@command -v amtool >/dev/null && { command -v alertmanager || command -v prometheus-alertmanager; } >/dev/null \
		|| bash scripts/install-debian-packages.sh prometheus-alertmanager

# Debian's headless Chromium and pdftotext (poppler-utils): a test renders the HTML chargeback statement to a PNG
# and a PDF and reads the PDF's figures back.
chromium:
	@command -v chromium >/dev/null && command -v pdftotext >/dev/null \
		|| bash scripts/install-debian-packages.sh chromium poppler-utils

# A compose client (Debian's docker-compose) so the tests validate docker-compose.yml with compose itself; no engine.
compose-client:
	@command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || bash scripts/install-docker-compose.sh

# Node.js and npm (Debian's nodejs and npm when there is no node) and the one small package set the live Node test
# runs (tests/processor/sources/test_node_live.py): the Vercel AI SDK, `npm ci` from its committed lockfile.
NODE_LIVE := scripts/record-spans/node/vercel-ai
node-deps: $(NODE_LIVE)/node_modules/.installed

$(NODE_LIVE)/node_modules/.installed: $(NODE_LIVE)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || bash scripts/install-debian-packages.sh nodejs npm
	cd $(NODE_LIVE) && npm ci --no-audit --no-fund
	touch $@

# Re-record the Node span fixtures (tests/fixtures/spans/<source>/node-*.json) from the npm packages pinned in
# scripts/record-spans/node/*/package-lock.json, with this machine's node (scripts/record-spans/node/README.md).
record-node-spans: venv node-deps
	cd scripts/record-spans/node/peers && npm ci --no-audit --no-fund
	$(BIN)/python scripts/record-spans/node/record.py

test: venv test-deps
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory test-min

test-min: venv-min
	$(VENV_MIN)/bin/python -m pytest -p no:cacheprovider tests/instrumentation tests/e2e/test_opentelemetry_instrument.py \
		--ignore tests/instrumentation/test_peers.py  # peers are not installed beside the oldest SDKs

demo: $(STAMP)
	$(BIN)/python demo/run.py --duration $(or $(DURATION),20)

bench: venv
	$(BIN)/python benchmarks/instrumentation_overhead.py

dashboards: venv
	$(BIN)/python -m costline.dashboards build

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(VENV_MIN) $(VENV_FOCUS) .pytest_cache
