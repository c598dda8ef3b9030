#!/usr/bin/env bash
# make bench: installs wrk if missing (Debian), then runs the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
.venv/bin/python -m bench.main "$@"
# Traces: CPU per request with tracing off, on, and sampled (needs the otel extra, which
# the dev lock installs).
.venv/bin/python -m bench.tracing
# The management API on a large log: one million request rows over a month.
exec .venv/bin/python -m bench.usage_queries
