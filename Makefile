# tritonfleet: every operator and developer entry point. `make` alone lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/lock.txt
# Re-run setup whenever the lock or the package metadata changes.
STAMP := $(VENV)/.installed

.PHONY: help setup test lint lock engine-args clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## Create .venv/ and install tritonfleet with its pinned dependencies and dev tools

$(STAMP): $(LOCK) pyproject.toml scripts/find-python
	@python=$$(scripts/find-python); echo "setup: using $$python"; \
	  "$$python" -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	@touch $@

test: $(STAMP) ## Run the whole test suite (sets up first)
	@rc=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "test: pytest collected no tests; that is a failure here" >&2; exit 1; fi; \
	  exit $$rc

lint: $(STAMP) ## Run ruff (lint + format check) and yamllint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .

lock: ## Re-resolve requirements/lock.txt from pyproject.toml (needs network)
	@python=$$(scripts/find-python); tmp=$$(mktemp -d); \
	  "$$python" -m venv $$tmp && $$tmp/bin/pip install --quiet pip-tools && \
	  $$tmp/bin/pip-compile --quiet --allow-unsafe --generate-hashes --strip-extras --extra dev \
	    --no-emit-index-url --no-emit-find-links --custom-compile-command "make lock" \
	    --output-file $(LOCK) pyproject.toml; \
	  rm -rf $$tmp

engine-args: $(STAMP) ## Re-extract the pinned vLLMs' engine-argument lists from their wheels (needs PyPI)
	$(BIN)/tritonfleet engine-args

clean: ## Remove .venv/ and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
