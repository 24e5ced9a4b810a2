# Two commands set everything up: `make demo` runs the main job, `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The demo needs only the project; the tests add their extras (servers, fuzzing, Kubernetes).
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# `make ui PORT=3001` / `make serve-demo PORT=9001` when the default port is taken
PORT_ARG := $(if $(PORT),--port $(PORT))

# TorchGeo 0.10 needs Python 3.12: its test runs in a venv of its own when one is found
PYTHON312 ?= $(shell sh scripts/find-python312.sh)
TORCH_VENV := .venv-torchgeo

.PHONY: venv venv-test test test-torchgeo demo ui serve-demo bench bench-quick bench-calls bench-load clean

venv: $(STAMP)

venv-test: $(TEST_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(TEST_STAMP)

test: venv-test
	$(BIN)/python -m pytest -n 2 -q
	$(MAKE) test-torchgeo

$(TORCH_VENV)/.installed: pyproject.toml
	$(PYTHON312) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --upgrade pip
	$(TORCH_VENV)/bin/python -m pip install -e '.[torchgeo]' 'pytest>=8'
	touch $@

test-torchgeo:
	@if [ -z "$(PYTHON312)" ]; then echo "test-torchgeo: no Python 3.12 found, TorchGeo test not run"; exit 1; fi
	$(MAKE) $(TORCH_VENV)/.installed
	$(TORCH_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/interop

demo: venv
	$(BIN)/python -m rasteret_pipelines.demo

ui: venv
	$(BIN)/python -m rasteret_pipelines.demo ui $(PORT_ARG)

serve-demo: venv
	$(BIN)/python -m rasteret_pipelines.demo serve $(PORT_ARG)

# Benchmark (bench/README.md): installs its own extras, generates its data once in bench/.cache
bench: venv
	sh bench/setup.sh $(BIN)/python
	$(BIN)/python -m bench.run --latency 0.04 --name full-40ms
	$(BIN)/python -m bench.user_calls
	$(BIN)/python -m bench.decode_region
	$(BIN)/python -m bench.load

bench-quick: venv
	sh bench/setup.sh $(BIN)/python
	$(BIN)/python -m bench.run --quick

bench-calls: venv
	sh bench/setup.sh $(BIN)/python
	$(BIN)/python -m bench.user_calls

bench-load: venv
	sh bench/setup.sh $(BIN)/python
	$(BIN)/python -m bench.load

clean:
	rm -rf $(VENV) $(TORCH_VENV) .pytest_cache .hypothesis
