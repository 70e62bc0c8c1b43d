# Two entry points: `make run` (the main job) and `make test`. Each installs what it needs.
# `make test-slow` runs the slow tier (statistical recovery, whole runs killed and resumed).
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
MARK   ?= not slow

.PHONY: run test test-slow install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/bayes-scaling run $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "$(MARK)" $(PYTEST_ARGS)

test-slow:
	$(MAKE) test MARK=slow
