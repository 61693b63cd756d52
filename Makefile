# Two entry points a newcomer needs: `make demo` (the main job, end to end) and `make test` (the suite).
# Each creates its own virtualenv in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench clean-venv

$(VENV)/.installed: Makefile pyproject.toml tests/plugin_example/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,import,plot,ray]" -e tests/plugin_example
	touch $@

demo: $(VENV)/.installed
	PATH="$(abspath $(VENV))/bin:$$PATH" bash tools/demo.sh

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	PATH="$(abspath $(VENV))/bin:$$PATH" bash tools/bench_corpus.sh

clean-venv:
	rm -rf $(VENV)
