# Set-up on a fresh clone is part of every target: `make run` and `make test` create (or reuse)
# the virtual environment .venv and install the project with constraints.txt (torch CPU pin).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# This machine keeps the CPU torch wheel in /opt/wheels; elsewhere pip finds it on the index.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test test-slow test-all lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(FIND_LINKS) -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m optuna_keras_hpo compare --quick

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

test-all: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check optuna_keras_hpo tests examples

clean:
	rm -rf $(VENV) results .pytest_cache
