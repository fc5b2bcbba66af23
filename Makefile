# One task runner for people, CI and hooks. `make demo` and `make test` work on a fresh machine
# with only Python 3.11: they create .venv and install everything into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed
PACKAGES := libs/schemas libs/runtime tools/devstack tools/market-sim \
            services/ingest-rest services/ingest-ws services/normalizer \
            services/sink-postgres services/alerts
EDITABLES := $(foreach p,$(PACKAGES),-e $(p)) -e 'services/normalizer[faust]'
PYPROJECTS := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-containers test-fast test-chaos lint typecheck audit jsonschema dist clean

help:  ## list the targets (this text)
	@echo "Coinstream: make <target>   (targets that need .venv create it first)"
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:[^=]*## / {printf "  %-16s %s\n", $$1, $$2}' \
	    $(MAKEFILE_LIST)

venv: $(STAMP)  ## create .venv with every pinned dependency and the packages in editable mode

$(STAMP): constraints.txt $(PYPROJECTS) requirements-dev.txt
	@echo "==> [1/3] $(VENV): a virtual environment for $$($(PYTHON) --version)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] pip, setuptools and uv at the versions pinned in constraints.txt"
	@$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt pip setuptools uv==0.13.8
	@echo "==> [3/3] $$(grep -c '==' constraints.txt) pinned dependencies and the $(words $(PACKAGES)) Coinstream packages (about a minute the first time)"
	$(UV) pip install --python $(PY) -c constraints.txt --build-constraint constraints.txt \
	    $(EDITABLES) -r requirements-dev.txt
	@touch $(STAMP)
	@echo "==> $(VENV) is ready"

demo: venv  ## run the whole pipeline locally (DEMO_DURATION=N to stop after N seconds)
	$(PY) -m coinstream.devstack demo

test: venv  ## the test suite: real broker, real PostgreSQL, real local servers (containers if Docker answers; COINSTREAM_TEST_BACKEND=local|containers)
	$(PY) -m pytest

test-containers: venv  ## the same suite on Apache Kafka (KRaft) and TimescaleDB in containers (needs a Docker engine)
	COINSTREAM_TEST_BACKEND=containers $(PY) -m pytest

test-fast: venv  ## pure tests only (no broker, no database)
	$(PY) -m pytest -m "not kafka and not postgres and not e2e"

test-chaos: venv  ## the chaos suite alone (poison on every topic, kills, PostgreSQL restart); CHAOS_REPORT=file.json keeps the figures
	$(PY) -m pytest -m chaos -s

lint: venv  ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv  ## mypy --strict over libs, services and tools
	$(VENV)/bin/mypy libs services tools

audit: venv  ## known vulnerabilities in the pinned set: counts what it checked; fails on findings and (exit 3) when it checked nothing
	bash .ci/audit

jsonschema: venv  ## regenerate docs/jsonschema from libs/schemas
	$(PY) -m coinstream.schemas export-jsonschema docs/jsonschema

DIST ?= dist
dist: venv  ## versioned wheel and sdist of every package into dist/ (DIST=dir elsewhere)
	rm -rf $(DIST)
	for p in $(PACKAGES); do \
	    $(UV) build --quiet --out-dir $(DIST) --build-constraint constraints.txt $$p || exit 1; \
	done
	@ls -1 $(DIST)

clean:  ## remove .venv, dist/ and the demo's state (.devstack)
	rm -rf $(VENV) .devstack dist

# --- deployment (issue 8) ------------------------------------------------------------------
.PHONY: asyncapi deploy-check audit-strict images

asyncapi: venv  ## regenerate docs/asyncapi.yaml from libs/schemas (a test keeps it in sync)
	$(PY) -m coinstream.schemas export-asyncapi docs/asyncapi.yaml

deploy-check: venv  ## offline: compose, Kubernetes manifests, Dockerfiles, AsyncAPI, lone installs
	$(PY) -m pytest tests/deploy -q

audit-strict: venv  ## like audit, but fails when any package could not be checked (the hosted CI runs it)
	bash .ci/audit --strict

images:  ## build every image (needs a Docker engine): coinstream/<name>:$(TAG)
	for f in services/*/Dockerfile tools/market-sim/Dockerfile; do \
	    docker build -f $$f -t coinstream/$$(basename $$(dirname $$f)):$(or $(TAG),dev) . || exit 1; \
	done
