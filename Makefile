# dropscore — every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PROJECT_ENVIRONMENT := .venv
export UV_LINK_MODE := copy

.PHONY: help install system-deps lint test test-fast bench bench-scale identity audit demo deploy destroy clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.tools/bin/uv:  # uv itself, when the machine has none
	python3 -m venv .tools && .tools/bin/pip install -q 'uv==0.13.9'

.venv/.installed: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-groups --compile-bytecode  # .pyc: PyCaret imports ~2x faster
	@touch $@

install: .venv/.installed  ## create .venv from the lock file (quick when nothing changed)

system-deps:  ## Debian packages the browser tests need (chromium); no-op when present
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: install  ## ruff (lint + format check) and mypy on the core
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: install system-deps lint  ## lint, then every test (slow end-to-end ones included)
	$(PY) -m pytest -n 2 --dist loadgroup

test-fast: install  ## the suite without the slow end-to-end tests
	$(PY) -m pytest -n 2 --dist loadgroup -m "not slow"

bench: install  ## benchmarks: scoring vs predict_model and a lean loop; gunzip vs Python's
	$(PY) -m bench.scoring
	$(PY) -m bench.decompress

ROWS ?= 10000000
SHARD_MB ?= 32
bench-scale: install  ## one file: --cluster none vs local:2 (ROWS=, SHARD_MB=), ratio and parts
	PYTHONPATH=$(CURDIR) $(PY) -m bench.scale --rows $(ROWS) --shard-over-mb $(SHARD_MB)

# the commit this branch started from; aa5dafd (issue 13's start) when main is not there
BASE ?= $(shell git merge-base HEAD main 2>/dev/null || echo aa5dafd)
identity: install  ## scoring of BASE=<git ref> vs this tree: outputs and manifests byte for byte
	$(PY) -m bench.identity --base $(BASE)

audit: install  ## vulnerability audit of the locked dependencies (needs PyPI's JSON API or OSV online)
	$(PY) -m pip_audit -r <($(UV) export --frozen --no-hashes --all-groups --no-emit-project) \
	  --no-deps --disable-pip --strict --progress-spinner off

demo: install  ## the whole local stack: S3, a model, the watcher, the UI, a first scored file
	$(PY) -m devstack.demo

deploy: install  ## build, push and deploy to AWS (needs AWS credentials and Docker)
	bash infra/deploy.sh deploy

destroy: install  ## delete the AWS stack (the bucket is kept)
	bash infra/deploy.sh destroy

clean:  ## remove the venv and caches
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
