# Two entry points that work from a clean clone: `make demo` and `make test`.
# Both install the exact versions locked in requirements/ (`make lock` refreshes them).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := $(BIN)/python requirements/lock.py

.PHONY: demo test lint lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps re-install when pyproject.toml or the lock changes. The demo scores a VCF (genomics),
# trains a lesion CNN (imaging), summarises single-cell counts (omics) and fits survival models
# (survival): requirements/demo.txt.
$(VENV)/.installed-demo: pyproject.toml requirements/demo.txt | $(BIN)/python
	$(LOCK) install demo
	rm -f $(VENV)/.installed-dev
	touch $@

# The dev set holds the demo set at the same versions; its install also removes what the lock
# does not list and records the verified lock's hash in the stamp (tests/test_lock.py reads it).
$(VENV)/.installed-dev: pyproject.toml requirements/dev.txt | $(BIN)/python
	$(LOCK) install dev --stamp $@
	touch $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(BIN)/pmed demo --out pmed-demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests requirements $(wildcard benchmarks)

# Two pytest workers (the CI machine's two cores); a test file runs whole on one worker, so its
# module fixtures are built once. (Handing the longest files out first, --no-loadscope-reorder
# with them sorted first, was slower: 17.1 min of pytest against 15.5 with xdist's own order,
# the demo running beside the heaviest files.) PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# Resolve the newest versions (holding requirements/pins.in), install them and run the tests:
# commit requirements/*.txt when they pass.
lock: | $(BIN)/python
	$(LOCK) refresh
	$(MAKE) test

clean:
	rm -rf $(VENV) pmed-demo pmed-out pmed-serve.sqlite* .pytest_cache .ruff_cache
