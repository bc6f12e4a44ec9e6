# The index of commands. `make run` and `make test` do all set-up themselves on a fresh Debian.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help setup setup-test run test test-fast lint bench bench-quality bench-write bench-visible messages clean

help:
	@echo "make run            set up, then start the whole local stack with demo data"
	@echo "make test           set up, then run every test (unit, contract, integration, e2e, browser)"
	@echo "make test-fast      unit and contract tests only"
	@echo "make bench-quality  matching quality on the labelled dev set: plain TF-IDF vs the engine"
	@echo "make bench          batch speed against the plain baseline (ratio), and the matcher's event path"
	@echo "make bench-write    durable writes per second of the profiles API next to a trivial Flask app (wrk)"
	@echo "make bench-visible  POST -> suggestion visible to a coordinator (p50/p95) at 50 writes/s, 10,000 organisations"
	@echo "make lint           ruff (checks and formatting) and mypy"
	@echo "make messages       extract the UI texts into partnermatch/locale/*.pot and merge them into every catalogue"

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
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-quality: setup
	$(BIN)/python bench/quality.py

bench: setup
	$(BIN)/python bench/engine_speed.py
	$(BIN)/python bench/event_path.py

bench-write: setup
	bash deploy/system-deps.sh bench
	$(BIN)/python bench/write_path.py

bench-visible: setup
	$(BIN)/python bench/post_visible.py

# Each message domain's sources (partnermatch.i18n.SOURCES) into <domain>.pot, then merged into the
# catalogue of every language: new messages arrive empty, changed ones fuzzy, and the tests fail
# until they are translated. `make messages MESSAGE_DOMAINS=emails` does one domain.
LOCALE := partnermatch/locale
MESSAGE_DOMAINS ?= $(shell $(BIN)/python -c 'from partnermatch import i18n; print(*i18n.DOMAINS)')

messages: setup
	@mkdir -p $(LOCALE); set -e; for domain in $(MESSAGE_DOMAINS); do \
	  files=$$($(BIN)/python -c "from partnermatch import i18n; print(*i18n.source_files('$$domain'))"); \
	  $(BIN)/pybabel -q extract -F babel.cfg -c Translators: --add-location=file --sort-by-file \
	    --project=partnermatch --no-wrap -o $(LOCALE)/$$domain.pot $$files; \
	  for lang in $$($(BIN)/python -c 'from partnermatch import i18n; print(*i18n.CATALOGUE_LANGUAGES)'); do \
	    $(BIN)/pybabel -q update --init-missing --no-wrap -D $$domain -l $$lang -i $(LOCALE)/$$domain.pot -d $(LOCALE); \
	  done; \
	  echo "$$domain: $(LOCALE)/$$domain.pot and its catalogues updated"; \
	done

clean:
	rm -rf $(VENV) .state .pytest_cache test-artifacts *.egg-info
