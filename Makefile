# The two commands a new user runs: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed

.PHONY: demo test lint imports typecheck pytest bench build validate clean

$(STAMP): pyproject.toml requirements-dev.txt src/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("stepburst needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e '.[local]'
	touch $@

$(SAM_STAMP): requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

demo: $(STAMP)
	$(VENV)/bin/stepburst demo

test: lint imports typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src local functions containers tests bench jobs
	$(VENV)/bin/ruff format --check src local functions containers tests bench jobs

imports: $(STAMP)
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The import contracts in pyproject.toml ([tool.importlinter]).
imports: $(STAMP)
	$(VENV)/bin/lint-imports

pytest: $(STAMP) $(SAM_STAMP)
	SAM_CLI=$(abspath $(SAM)) $(VENV)/bin/pytest -n 2 --timeout 600

bench: $(STAMP)
	$(PY) bench/jsonl_throughput.py
	$(PY) bench/engine_overhead.py
	$(PY) bench/demo_wall_time.py
	$(PY) bench/finalize_scale.py

build: $(SAM_STAMP)
	$(SAM) build --parameter-overrides PythonRuntime=python3.11

validate: $(SAM_STAMP)
	$(SAM) validate --lint --region us-east-1

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
