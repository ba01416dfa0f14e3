# One command each, on a fresh machine (Python 3.11, pip, venv):
#   make demo   set everything up and run the main job on the embedded default
#   make test   set everything up and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

$(BIN)/messplus: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/messplus

setup: $(BIN)/messplus

demo: setup
	$(BIN)/messplus demo --report out/demo-report

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy router db workers api bench

bench: setup
	$(BIN)/python bench/replay_table.py --json out/replay_table.json

clean:
	rm -rf $(VENV) .messplus out *.egg-info
