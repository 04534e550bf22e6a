# Every target creates or reuses .venv at the repo root; nothing is installed globally.
# The venv holds the provider (editable) with its extras: the tools (dev), the local Debitura (sandbox) and the
# example DAGs' SQL providers (examples). A plain `pip install airflow-provider-debitura` gets none of them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo airflow bench soak docs test-ui test-matrix test-distributed sandbox clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev,sandbox,examples]'
	touch $(STAMP)

venv: $(STAMP)

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

# ruff (lint and format), mypy (strict on debitura_provider/api), and the layer contracts of [tool.importlinter].
LINTED := debitura_provider dags tests bench scripts
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy debitura_provider
	$(BIN)/lint-imports

# The built wheel (not editable) in a fresh venv per supported Airflow minor, each with its Python
# (scripts/matrix.py; ROWS=3.2.2,3.3.2 picks rows, JOBS=1 runs them one at a time).
ROWS ?=
JOBS ?= 2
test-matrix: $(STAMP)
	$(BIN)/python scripts/matrix.py --jobs $(JOBS) $(if $(ROWS),--rows $(ROWS))

# The docs site, built strictly (a broken reference or include fails) into site/.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Browser test of the Airflow UI: Debian's chromium (installed by apt if missing) driven by Playwright.
UI_STAMP := $(VENV)/.installed-ui
CHROMIUM := /usr/bin/chromium

$(UI_STAMP): $(STAMP)
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev,sandbox,examples,ui]'
	touch $(UI_STAMP)

$(CHROMIUM):
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test-ui: $(UI_STAMP) $(CHROMIUM)
	DEBITURA_UI_TEST=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/ui

# The production shape on 127.0.0.1 (not in make test, 9 to 12 min on 2 cores): 8 processes sharing one key at
# Debitura's real limits, then Airflow on CeleryExecutor with Postgres, Redis, 3 workers, 2 triggerers and
# 2 API server workers, with a worker and a triggerer killed mid-work. Debian's postgresql and redis-server
# are installed by apt if missing; everything started is stopped and removed at the end.
DIST_STAMP := $(VENV)/.installed-distributed

$(DIST_STAMP): $(STAMP)
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev,sandbox,examples,distributed]'
	touch $(DIST_STAMP)

# Debian's postgresql package would create (and, with an init system, start) a cluster of its own;
# the drop-in tells it not to: the target runs a throwaway cluster of its own.
test-distributed: $(DIST_STAMP)
	command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ( \
		mkdir -p /etc/postgresql-common/createcluster.d && \
		echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/debitura-test.conf && \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql redis-server)
	$(BIN)/python -m scripts.distributed.rate_budget
	$(BIN)/python -m scripts.distributed.run

# The README's main command: sandbox + CRM extract + referral with `airflow dags test`, then a summary.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# airflow standalone with the example DAGs, the connections and a sandbox; Ctrl-C stops everything.
airflow: $(STAMP)
	$(BIN)/python scripts/airflow_ui.py

sandbox: $(STAMP)
	$(BIN)/debitura-sandbox

# Figures of the README's performance section, each beside its anchor: prints a table, writes bench/results.json.
bench: $(STAMP)
	$(BIN)/python -m bench.run

# The referral DAG in a loop against a sandbox failing one request in five (not in CI): make soak MINUTES=10
MINUTES ?= 5
soak: $(STAMP)
	$(BIN)/python scripts/soak.py --minutes $(MINUTES)

clean:
	rm -rf $(VENV) .venv-matrix .airflow build dist *.egg-info
