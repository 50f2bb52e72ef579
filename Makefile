# The set-up commands a newcomer needs: `make demo`, `make test` and `make lint`.
# All create .venv with the machine's python3 and install the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install bench summary-png clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,notebooks,lint,postgres,dask]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/m3sync demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Formatting, lint, types (strict for the domain and the connectors), import layering: all in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

# The README's picture of the Summary sheet: the demo in a scratch home, then LibreOffice headless
# -> PDF -> PNG (needs soffice and pdftoppm: apt-get install libreoffice-calc-nogui poppler-utils).
summary-png: $(STAMP)
	rm -rf .summary-home
	$(BIN)/m3sync demo --home .summary-home > /dev/null
	$(BIN)/python scripts/render_summary.py $$(ls .summary-home/reports/settlements-*.xlsx | head -1) docs/summary.png
	rm -rf .summary-home

clean:
	rm -rf $(VENV) .pytest_cache .m3sync .mypy_cache .ruff_cache .import_linter_cache
