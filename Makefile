# llm-gateway: every target installs what it needs into .venv from the hash-pinned locks.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= gateway.toml

.PHONY: run test lint typecheck tools bench soak lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime only: exactly what a VM gets.
$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Runtime plus the test and lint tools.
$(VENV)/.dev: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/llm-gateway serve --config $(CONFIG)

lint: $(VENV)/.dev
	$(BIN)/ruff check proxy tests bench
	$(BIN)/ruff format --check proxy tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# Debian tools and servers some tests run: promtool (metrics and alert rules),
# systemd-analyze (the unit), redis-server (shared state), PostgreSQL (shared storage:
# its binaries live in /usr/lib/postgresql/<version>/bin), chromium (the dashboard's
# browser tests drive it through Playwright; no browser is downloaded). Tests start the servers
# themselves, on loopback ports of their own.
tools:
	@command -v promtool >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }
	@command -v systemd-analyze >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd; }
	@command -v redis-server >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; }
	@command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

test: lint typecheck tools
	$(BIN)/pytest

bench: $(VENV)/.dev
	bash bench/run.sh

# 30 minutes of mixed traffic (SOAK_SECONDS to change); RSS and open files must stay flat.
soak: $(VENV)/.dev
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.soak

# Regenerate the hash-pinned locks after changing dependency ranges in pyproject.toml.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile --quiet pyproject.toml requirements-build.in --generate-hashes \
		--python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile --quiet pyproject.toml requirements-build.in --extra test \
		--generate-hashes --python-version 3.11 -o requirements-dev.lock
	$(BIN)/uv pip compile --quiet pyproject.toml requirements-build.in --extra otel \
		--generate-hashes --python-version 3.11 -o requirements-otel.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
