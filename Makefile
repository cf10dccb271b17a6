# Two set-up commands: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIOSTRUCT_DATA_DIR ?= $(abspath ../shared/data)
export BIOSTRUCT_DATA_DIR
export OMP_WAIT_POLICY ?= PASSIVE
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null 2>&1) || echo "biostruct: could not install Debian's chromium; browser tests will be skipped"

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check biostruct tests benchmarks
	$(BIN)/ruff format --check biostruct tests benchmarks

demo: $(STAMP)
	$(BIN)/python -m biostruct.demo

clean:
	rm -rf $(VENV) .pytest_cache results
