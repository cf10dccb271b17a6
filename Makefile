# Two set-up commands: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIOSTRUCT_DATA_DIR ?= $(abspath ../shared/data)
export BIOSTRUCT_DATA_DIR
export OMP_WAIT_POLICY ?= PASSIVE
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo clean browser slurm

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null 2>&1) || echo "biostruct: could not install Debian's chromium; browser tests will be skipped"

# Debian's Slurm and munge for tests/workflows/test_slurm_real.py (a one-node cluster that the
# test starts and stops itself; installing starts no daemon).
slurm:
	@(command -v slurmctld && command -v slurmd && command -v munged && command -v sbatch) >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null 2>&1) || echo "biostruct: could not install Debian's slurm; the real-SLURM test is skipped (fails under CI)"

test: $(STAMP) browser slurm
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check biostruct tests benchmarks
	$(BIN)/ruff format --check biostruct tests benchmarks

demo: $(STAMP)
	$(BIN)/python -m biostruct.demo

clean:
	rm -rf $(VENV) .pytest_cache results
