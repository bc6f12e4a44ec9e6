# The index of commands. `make run` and `make test` do all set-up themselves on a fresh Debian.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help setup setup-test run test test-fast lint bench bench-quality clean

help:
	@echo "make run            set up, then start the whole local stack with demo data"
	@echo "make test           set up, then run every test (unit, contract, integration, e2e, browser)"
	@echo "make test-fast      unit and contract tests only"
	@echo "make bench-quality  matching quality on the labelled dev set: plain TF-IDF vs the engine"
	@echo "make bench          batch speed against the plain baseline (ratio), and the matcher's event path"
	@echo "make lint           ruff"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[local,test]'
	$(BIN)/partnermatch lemmas
	touch $(STAMP)

setup:
	bash deploy/system-deps.sh run
	$(MAKE) --no-print-directory $(STAMP)

setup-test:
	bash deploy/system-deps.sh test
	$(MAKE) --no-print-directory $(STAMP)

run: setup
	$(BIN)/partnermatch up

test: setup-test
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest tests/unit tests/contract

lint: setup
	$(BIN)/ruff check .

bench-quality: setup
	$(BIN)/python bench/quality.py

bench: setup
	$(BIN)/python bench/engine_speed.py
	$(BIN)/python bench/event_path.py

clean:
	rm -rf $(VENV) .state .pytest_cache test-artifacts *.egg-info
