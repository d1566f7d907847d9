# The commands README.md gives. Everything installs into .venv from this
# checkout's pyproject.toml, once (re-done when pyproject.toml changes): the
# client with the server extra (the stack, `fityard up`/`demo`) and the dev
# tools; `pip install .` alone would be the light client.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# KEDA's CRD schemas, from npm, for the Helm chart's tests
SCHEMAS := tools/k8s-schemas
# checkov in a venv of its own: its pins (boto3, packaging) clash with ours
CHECKOV := .venv-checkov

.PHONY: demo test bench mutants flake-hunt protos lint format api-release up lock

demo: $(VENV)/.installed  ## the seed workflow on an embedded stack
	$(BIN)/fityard demo

test: $(VENV)/.installed $(SCHEMAS)/node_modules/.installed $(CHECKOV)/.installed  ## the whole test suite (includes a smoke run of the benchmarks' code)
	$(BIN)/pytest

mutants: $(VENV)/.installed  ## break core behaviours on purpose; every breakage must fail the tests
	$(BIN)/python tools/mutants.py

flake-hunt: $(VENV)/.installed $(SCHEMAS)/node_modules/.installed $(CHECKOV)/.installed  ## the stack tests 5 times, 2 with a CPU hog; lists every test that failed once
	$(BIN)/python tools/flake_hunt.py $(FLAKE_HUNT_ARGS)

bench: $(VENV)/.installed-bench  ## the benchmark suite: prints a table, writes bench-results.json
	$(BIN)/python -m bench

up: $(VENV)/.installed  ## the embedded stack in the foreground
	$(BIN)/fityard up

protos: $(VENV)/.installed  ## regenerate fityard/v1 (public) and services/internal/v1 from protos/
	$(BIN)/python tools/gen_protos.py

lint: $(VENV)/.installed  ## what tests/test_lint.py and tests/test_protos.py check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/buf lint
	$(BIN)/buf breaking --against protos/released/fityard-v1.json
	$(BIN)/python tools/mutants.py --check

api-release: $(VENV)/.installed  ## when cutting a release: the public API the next must stay compatible with
	$(BIN)/buf build --path protos/fityard/v1 --exclude-source-info -o protos/released/fityard-v1.json
	$(BIN)/python -m json.tool --indent 1 protos/released/fityard-v1.json protos/released/fityard-v1.json

lock: $(VENV)/.installed  ## re-pin the server's dependencies for the image (deploy/requirements-server.txt)
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --extra server \
		--no-emit-index-url --no-emit-find-links --no-header --output-file deploy/requirements-server.txt pyproject.toml

format: $(VENV)/.installed  ## fix what ruff can: import order, formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server,dev]'
	touch $@

# The benchmark peers: redis-server from Debian (bench/setup.sh), rq and ray.
$(VENV)/.installed-bench: $(VENV)/.installed bench/setup.sh
	bash bench/setup.sh
	$(BIN)/pip install --quiet -e '.[server,dev,bench]'
	touch $@

# KEDA's CRD validators (npm, pinned by package-lock.json) for tests/test_helm.py.
$(SCHEMAS)/node_modules/.installed: $(SCHEMAS)/package-lock.json
	npm ci --prefix $(SCHEMAS) --no-audit --no-fund --loglevel=error
	touch $@

# checkov, for the chart's security scan in tests/test_helm.py.
$(CHECKOV)/.installed:
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV)/bin/pip install --quiet checkov==3.3.30
	touch $@
