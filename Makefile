# tritonfleet: every operator and developer entry point. `make` alone lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Ports and the bind address of one host's stack (also read by compose).
include .env

VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/lock.txt
# Re-run setup whenever the lock or the package metadata changes.
STAMP := $(VENV)/.installed

# One host's stack (compose.yaml). PROFILE=gpu serves model_repository/ as rendered for this host on
# NVIDIA's image; PROFILE=cpu serves the tiny test model on the CPU reference image.
PROFILE ?= gpu
BUILD := build
CPU_IMAGE_REF := $(BUILD)/image-cpu.ref
CPU_REPOSITORY := $(BUILD)/repo-cpu
GPU_REPOSITORY := $(BUILD)/repo-gpu
WEIGHTS := $(BUILD)/weights
TINY_MODEL := tiny-llama
# PROFILE=gpu: which models of model_repository/ this host serves (default: all of them).
MODELS ?=
# The memlock limit the Triton container can have (unlimited where the engine may grant it).
MEMLOCK = $(shell scripts/memlock)
# Every compose call gets every variable compose.yaml requires, so that `down` works in any state.
COMPOSE_ENV = TRITON_IMAGE="$$($(BIN)/tritonfleet versions triton.image_ref)" \
	TRITON_CPU_IMAGE="$$(cat $(CPU_IMAGE_REF) 2>/dev/null || echo unbuilt)" \
	TRITONFLEET_MODEL_REPOSITORY="$(CURDIR)/$(if $(filter cpu,$(PROFILE)),$(CPU_REPOSITORY),$(GPU_REPOSITORY))" \
	TRITONFLEET_WEIGHTS="$(CURDIR)/$(WEIGHTS)" \
	TRITON_MEMLOCK="$(MEMLOCK)"
COMPOSE = $(COMPOSE_ENV) docker compose --profile cpu

# smoke: which servers to check. URL: one or more http://HOST:PORT (default: this machine's stack);
# HOSTS: a group of the Ansible inventory INVENTORY. Hosts without port variables use .env's ports.
URL ?=
HOSTS ?=
INVENTORY ?=
SMOKE_REPORTS := $(BUILD)/smoke
SMOKE_TARGETS = $(if $(HOSTS),--inventory "$(INVENTORY)" --group "$(HOSTS)",\
	$(addprefix --target ,$(or $(URL),http://$(TRITON_BIND_ADDRESS):$(TRITON_HTTP_PORT))))

# deploy / rollback: the Ansible rollout to the group HOSTS of INVENTORY (default: the simulated fleet).
FLEET_INVENTORY := ansible/inventories/simulated
DEPLOY_INVENTORY = $(or $(INVENTORY),$(FLEET_INVENTORY))
# fleet-up: how many simulated hosts (odd ones bookworm, even ones trixie).
N ?= 2
ANSIBLE_ARGS ?=
DEPLOY_REPORTS := $(BUILD)/deploy
# ansible-playbook skips, and exits 0, when the inventory is empty (a simulated fleet that is down): fail.
define require_hosts
n=$$($(BIN)/ansible -i "$(DEPLOY_INVENTORY)" "$(HOSTS)" --list-hosts 2>/dev/null | sed -n 's/^ *hosts (\([0-9]*\)):$$/\1/p'); \
  if [ "$${n:-0}" -eq 0 ]; then \
    echo "$(1): $(DEPLOY_INVENTORY): HOSTS=$(HOSTS) matches no host (the simulated fleet: make fleet-up)" >&2; exit 2; fi
endef

# bench-overhead: vLLM's own OpenAI server, beside Triton, from the same image.
BENCH_VLLM_PORT := 8100
BENCH_VLLM_CONTAINER := tritonfleet-bench-vllm

.PHONY: deploy rollback fleet-up fleet-down demo bench-deploy
.PHONY: help setup test test-unit lint bench-overhead bench-smoke bench-memory bench-startup bench-load lock engine-args docker image-cpu up down compose-env \
	smoke clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## Create .venv/ and install tritonfleet with its pinned dependencies and dev tools

$(STAMP): $(LOCK) pyproject.toml scripts/find-python
	@python=$$(scripts/find-python); echo "setup: using $$python"; \
	  "$$python" -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	@touch $@

test: $(STAMP) ## Run the whole suite, the CPU stack in Docker included (sets everything up)
	@rc=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "test: pytest collected no tests; that is a failure here" >&2; exit 1; fi; \
	  exit $$rc

test-unit: $(STAMP) ## Run only the tests that need no Docker (seconds)
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

lint: $(STAMP) ## Run ruff (lint + format check) and yamllint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .

lock: ## Re-resolve requirements/lock.txt from pyproject.toml (needs network)
	@python=$$(scripts/find-python); tmp=$$(mktemp -d); \
	  "$$python" -m venv $$tmp && $$tmp/bin/pip install --quiet pip-tools && \
	  CUSTOM_COMPILE_COMMAND="make lock" $$tmp/bin/pip-compile --quiet --allow-unsafe --generate-hashes \
	    --strip-extras --extra dev --no-emit-index-url --no-emit-find-links \
	    --output-file $(LOCK) pyproject.toml; \
	  rm -rf $$tmp

engine-args: $(STAMP) ## Re-extract the pinned vLLMs' engine-argument lists from their wheels (needs PyPI)
	$(BIN)/tritonfleet engine-args --out-dir src/tritonfleet/pins/data/engine_args

docker: ## Install and start Docker Engine, Compose v2 and buildx when missing (Debian, root)
	scripts/docker-setup

image-cpu: $(STAMP) docker ## Build the CPU reference image (cached by content hash)
	@mkdir -p $(BUILD)
	scripts/build-image-cpu | tail -n 1 > $(CPU_IMAGE_REF).new
	@mv $(CPU_IMAGE_REF).new $(CPU_IMAGE_REF); echo "image-cpu: $$(cat $(CPU_IMAGE_REF))"

$(WEIGHTS)/$(TINY_MODEL): | $(STAMP)
	@mkdir -p $(WEIGHTS)
	$(BIN)/tritonfleet testmodel $@

up: $(STAMP) ## Start the stack and wait until ready: PROFILE=gpu (default) or PROFILE=cpu
ifeq ($(PROFILE),cpu)
	$(MAKE) --no-print-directory image-cpu $(WEIGHTS)/$(TINY_MODEL)
	$(BIN)/tritonfleet render model_repository $(CPU_REPOSITORY) --engine vllm-cpu --model $(TINY_MODEL) --force
	$(COMPOSE) up --detach --wait --wait-timeout 600 triton-cpu
else
	@mkdir -p $(BUILD)
	$(BIN)/tritonfleet facts --format json > $(BUILD)/host-facts.json
	$(BIN)/tritonfleet render model_repository $(GPU_REPOSITORY) --host-facts $(BUILD)/host-facts.json \
	  $(addprefix --model ,$(MODELS)) --force
	$(COMPOSE) up --detach --wait --wait-timeout 1800 triton
endif

down: $(STAMP) ## Stop the stack and remove its containers and network
	$(COMPOSE) down --remove-orphans --timeout 60

deploy: $(STAMP) ## Roll out to HOSTS=<group> [INVENTORY=...] (ansible/site.yml), then print a summary per host
	@if [ -z "$(HOSTS)" ]; then echo "deploy: HOSTS=<group> is required (e.g. HOSTS=sim_fleet)" >&2; exit 2; fi
	@$(call require_hosts,deploy)
	@rc=0; $(BIN)/ansible-playbook -i "$(DEPLOY_INVENTORY)" ansible/site.yml --limit "$(HOSTS)" $(ANSIBLE_ARGS) || rc=$$?; \
	  $(BIN)/tritonfleet rollout-report $(DEPLOY_REPORTS) || true; exit $$rc

rollback: $(STAMP) ## Return HOSTS=<group> [INVENTORY=...] to their previous release, and gate them
	@if [ -z "$(HOSTS)" ]; then echo "rollback: HOSTS=<group> is required" >&2; exit 2; fi
	@$(call require_hosts,rollback)
	$(BIN)/ansible-playbook -i "$(DEPLOY_INVENTORY)" ansible/rollback.yml --limit "$(HOSTS)" $(ANSIBLE_ARGS)

fleet-up: $(STAMP) docker ## Start the simulated fleet: N=2 systemd hosts (bookworm, trixie) and a registry
	scripts/fleet up $(N)

fleet-down: ## Remove the simulated fleet, its volumes and its network
	scripts/fleet down

demo: $(STAMP) ## The main job on the embedded default: fleet-up, deploy the tiny model to 2 hosts, gate, summary
	$(MAKE) --no-print-directory fleet-up N=2
	$(MAKE) --no-print-directory $(WEIGHTS)/$(TINY_MODEL)
	$(MAKE) --no-print-directory deploy HOSTS=sim_fleet INVENTORY=$(FLEET_INVENTORY)

smoke: $(STAMP) ## Gate live servers: URL="http://h1 http://h2", or HOSTS=group INVENTORY=file (default: local stack)
	@if [ -n "$(HOSTS)" ] && [ -z "$(INVENTORY)" ]; then \
	  echo "smoke: HOSTS=$(HOSTS) needs INVENTORY=path/to/inventory" >&2; exit 2; fi
	$(BIN)/tritonfleet smoke $(SMOKE_TARGETS) \
	  --http-port $(TRITON_HTTP_PORT) --grpc-port $(TRITON_GRPC_PORT) --metrics-port $(TRITON_METRICS_PORT) \
	  --junit-xml $(SMOKE_REPORTS)/junit.xml --json $(SMOKE_REPORTS)/report.json $(SMOKE_ARGS)

bench-startup: $(STAMP) ## Benchmark how long commands take to start (--help, versions, render)
	$(BIN)/python bench/startup.py $(BENCH_ARGS)

bench-memory: $(STAMP) ## Benchmark the memory estimate against real vLLM start-up logs (per row and median)
	$(BIN)/python bench/memory.py $(BENCH_ARGS)

bench-smoke: PROFILE = cpu
bench-smoke: $(STAMP) ## Benchmark the smoke gate's wall time for fleets of 1, 2 and 4 hosts (CPU stack)
	$(MAKE) --no-print-directory up PROFILE=cpu >/dev/null
	$(BIN)/python bench/smoke.py \
	  --url "http://$(TRITON_BIND_ADDRESS):$(TRITON_HTTP_PORT)?grpc=$(TRITON_GRPC_PORT)&metrics=$(TRITON_METRICS_PORT)" \
	  $(BENCH_ARGS)

bench-load: PROFILE = cpu
bench-load: $(STAMP) ## Benchmark the CPU stack under load and through a docker restart under load
	$(MAKE) --no-print-directory up PROFILE=cpu >/dev/null
	$(BIN)/python bench/load.py \
	  --url "http://$(TRITON_BIND_ADDRESS):$(TRITON_HTTP_PORT)?grpc=$(TRITON_GRPC_PORT)&metrics=$(TRITON_METRICS_PORT)" \
	  --container "$$($(COMPOSE) ps --quiet triton-cpu)" $(BENCH_ARGS)

bench-deploy: $(STAMP) docker $(WEIGHTS)/$(TINY_MODEL) ## Benchmark the rollout on 1, 2 and 4 simulated hosts: from bare, no-op, rollback
	$(BIN)/python bench/deploy.py $(BENCH_ARGS)

bench-overhead: PROFILE = cpu
bench-overhead: $(STAMP) ## Benchmark Triton + our backend against vLLM's own server (CPU image)
	$(MAKE) --no-print-directory up PROFILE=cpu >/dev/null
	@rc=0; $(COMPOSE_ENV) TRITON_BIND_ADDRESS=$(TRITON_BIND_ADDRESS) TRITON_HTTP_PORT=$(TRITON_HTTP_PORT) \
	  BENCH_VLLM_PORT=$(BENCH_VLLM_PORT) BENCH_VLLM_CONTAINER=$(BENCH_VLLM_CONTAINER) PYTHON=$(BIN)/python \
	  scripts/bench-overhead $(CPU_REPOSITORY)/$(TINY_MODEL)/1/model.json $(BENCH_ARGS) || rc=$$?; \
	  $(MAKE) --no-print-directory down PROFILE=cpu >/dev/null 2>&1; exit $$rc

compose-env: $(STAMP) ## Print the variables compose.yaml needs (KEY=VALUE), for `docker compose` by hand
	@$(COMPOSE_ENV) env | grep -E '^(TRITON_IMAGE|TRITON_CPU_IMAGE|TRITONFLEET_MODEL_REPOSITORY|TRITONFLEET_WEIGHTS|TRITON_MEMLOCK)=' \
	  | sort

clean: ## Remove .venv/, build/ and caches
	rm -rf $(VENV) $(BUILD) .pytest_cache .ruff_cache src/*.egg-info
