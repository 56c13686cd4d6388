# The two commands that matter: `make run` starts the whole system, `make test` checks it.
# Both install what they need (uv, Python packages, Kafka, FerretDB) under .cache/ first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
CACHE := $(ROOT)/.cache
UV_VERSION := 0.13.8
UV := $(CACHE)/bootstrap/bin/uv
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
export UV_CACHE_DIR ?= $(CACHE)/uv
# Python comes from the machine; uv must never try to download one.
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

.PHONY: help
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(UV):
	@command -v python3 >/dev/null || { echo "python3 (3.11) is required: install it first" >&2; exit 1; }
	python3 -m venv $(CACHE)/bootstrap
	$(CACHE)/bootstrap/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard services/*/pyproject.toml) protos/python/pyproject.toml
	$(UV) sync --locked --quiet
	@touch $@

.PHONY: install
install: $(VENV)/.synced  ## install the Python workspace and the local Kafka and FerretDB
	deploy/local/infra.sh install

.PHONY: lock
lock: $(UV)  ## refresh uv.lock after changing dependencies
	$(UV) lock

.PHONY: proto
proto: $(VENV)/.synced  ## regenerate helpdesk.api from protos/
	PATH=$(VENV)/bin:$$PATH protos/generate.sh

.PHONY: proto-check
proto-check: proto  ## fail when the committed generated code is stale
	@git diff --exit-code --stat -- protos/python || { echo "generated code is stale: run 'make proto' and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- protos/python)" || { echo "make proto created files that are not committed:" >&2; git status --short -- protos/python >&2; exit 1; }

.PHONY: lint
lint: $(VENV)/.synced  ## ruff (lint and format) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: unit
unit: $(VENV)/.synced  ## fast unit tests of pure logic
	$(VENV)/bin/pytest services -q

.PHONY: integration
integration: $(VENV)/.synced  ## scenarios on real Kafka and FerretDB (started if not given)
	deploy/local/infra.sh install
	deploy/local/install-dovecot.sh
	$(VENV)/bin/pytest tests/integration -q

.PHONY: chart-tools
chart-tools:  ## build the pinned helm, kube-score and promtool into .cache/bin (skipped when present)
	deploy/tools/install.sh

.PHONY: chart
chart: $(VENV)/.synced chart-tools  ## helm lint/template, Kubernetes schemas, kube-score, values schema, dashboards' and alerts' PromQL, promtool rule tests
	$(VENV)/bin/pytest tests/chart -q

.PHONY: test
test: $(VENV)/.synced  ## everything CI checks: generated code, lint, types, unit, chart and integration tests
	$(MAKE) --no-print-directory proto-check lint
	deploy/local/infra.sh install
	deploy/local/install-dovecot.sh
	deploy/tools/install.sh
	$(VENV)/bin/pytest -q

.PHONY: infra-up
infra-up:  ## start local Kafka and FerretDB (loopback, data under .local/)
	deploy/local/infra.sh up

.PHONY: infra-down
infra-down:  ## stop them
	deploy/local/infra.sh down

.PHONY: run
run: install  ## start Kafka, FerretDB and every service; Ctrl-C stops them all
	deploy/local/run.sh

.PHONY: bench
bench: install  ## benchmark: CreateTicket and the intake topic, plus FerretDB's raw insert rate
	$(PY) -m benchmarks.run

.PHONY: bench-queue
bench-queue: install  ## benchmark: queue views (ListTickets) over TICKETS stored tickets (default 1,000,000)
	$(PY) -m benchmarks.queue_view --tickets $${TICKETS:-1000000}

.PHONY: bench-routing
bench-routing: install  ## benchmark: created -> assigned latency and routing decisions per second
	$(PY) -m benchmarks.routing

.PHONY: bench-sla
bench-sla: install  ## benchmark: SLA timers firing lag and service memory, TIMERS armed (default 1,000,000)
	$(PY) -m benchmarks.sla_timers --timers $${TIMERS:-1000000}

.PHONY: bench-notification
bench-notification: install  ## benchmark: notifications per second and event -> delivered p50/p99 (EVENTS steady at RATE/s, BURST at once)
	$(PY) -m benchmarks.notification --events $${EVENTS:-2000} --rate $${RATE:-20} --burst $${BURST:-2000}

.PHONY: fault-notification
fault-notification: install  ## fault run: EVENTS notification events (default 10,000) through SIGKILLs and a Kafka restart, each delivered once
	$(PY) -m benchmarks.notification_faults --events $${EVENTS:-10000}

.PHONY: bench-knowledge
bench-knowledge: install  ## benchmark: knowledge search over 100,000 articles (build time, p50/p99)
	$(PY) -m benchmarks.knowledge_search

.PHONY: clean
clean:  ## remove local data and logs (keeps downloads)
	rm -rf .local
