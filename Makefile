# The two commands a new user runs: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
CHECKOV := $(CHECKOV_VENV)/bin/checkov
STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: demo test lint imports typecheck security pytest bench build validate clean lock image

$(STAMP): pyproject.toml requirements-dev.txt src/requirements.in src/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("stepburst needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e '.[local]'
	touch $@

$(SAM_STAMP): requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

demo: $(STAMP)
	$(VENV)/bin/stepburst demo

test: lint imports typecheck security pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src local functions containers tests bench jobs
	$(VENV)/bin/ruff format --check src local functions containers tests bench jobs

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The import contracts in pyproject.toml ([tool.importlinter]).
imports: $(STAMP)
	$(VENV)/bin/lint-imports

# Fails on any checkov finding in the template that is neither fixed nor skipped, with a reason,
# in the resource's Metadata (see README, Security). Offline: no guideline download.
security: $(CHECKOV_STAMP)
	$(CHECKOV) --file template.yaml --framework cloudformation --skip-download --compact --quiet

pytest: $(STAMP) $(SAM_STAMP)
	SAM_CLI=$(abspath $(SAM)) $(VENV)/bin/pytest -n 2 --timeout 600

bench: $(STAMP)
	$(PY) bench/jsonl_throughput.py
	$(PY) bench/item_path_tls.py
	$(PY) bench/two_core_scaling.py
	$(PY) bench/engine_overhead.py
	$(PY) bench/demo_wall_time.py
	$(PY) bench/finalize_scale.py
	$(PY) bench/plan_scale.py
	$(PY) bench/soak.py

build: $(SAM_STAMP)
	$(SAM) build --parameter-overrides PythonRuntime=python3.11

validate: $(SAM_STAMP)
	$(SAM) validate --lint --region us-east-1

# The lock file the Lambda layer and the worker image install from: every transitive
# dependency of src/requirements.in, pinned, with the hashes of all its files on PyPI.
lock: $(STAMP)
	cd src && ../$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.txt requirements.in

# Build the worker image (Docker, Finch or Podman), push it to the stack's ECR repository under
# an immutable tag, then sam build and sam deploy with that tag: `make image ENV=prod`.
ENV ?= default
image: $(STAMP) $(SAM_STAMP)
	$(VENV)/bin/stepburst image --config-env $(ENV)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
