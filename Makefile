# Two entry points that work from a clean clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# stamps re-install only when pyproject.toml changes; the demo scores a VCF (genomics), trains a
# lesion CNN (imaging) and summarises single-cell counts (omics)
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[genomics,imaging,omics]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(BIN)/pmed demo --out pmed-demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests $(wildcard benchmarks)

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) pmed-demo pmed-out .pytest_cache .ruff_cache
