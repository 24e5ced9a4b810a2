# Two commands set everything up: `make demo` runs the main job, `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The demo needs only the project; the tests add their extras (servers, fuzzing, Kubernetes).
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# `make ui PORT=3001` / `make serve-demo PORT=9001` when the default port is taken
PORT_ARG := $(if $(PORT),--port $(PORT))

.PHONY: venv venv-test test demo ui serve-demo bench bench-quick bench-load clean

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

bench-quick: venv
	sh bench/setup.sh $(BIN)/python
	$(BIN)/python -m bench.run --quick

bench-load: venv
	sh bench/setup.sh $(BIN)/python
	$(BIN)/python -m bench.load

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
