# Two commands set everything up: `make demo` runs the main job, `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo ui serve-demo bench bench-quick bench-load clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -n 2 -q

demo: venv
	$(BIN)/python -m rasteret_pipelines.demo

ui: venv
	$(BIN)/python -m rasteret_pipelines.demo ui

serve-demo: venv
	$(BIN)/python -m rasteret_pipelines.demo serve

# Benchmark (bench/README.md): installs its own extras, generates its data once in bench/.cache
bench: venv
	sh bench/setup.sh $(BIN)/python
	$(BIN)/python -m bench.run

bench-quick: venv
	sh bench/setup.sh $(BIN)/python
	$(BIN)/python -m bench.run --quick

bench-load: venv
	sh bench/setup.sh $(BIN)/python
	$(BIN)/python -m bench.load

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
