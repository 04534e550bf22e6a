# Every target creates or reuses .venv at the repo root; nothing is installed globally.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo airflow bench soak docs test-ui sandbox clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check debitura_provider dags tests bench scripts
	$(BIN)/mypy debitura_provider

# The docs site, built strictly (a broken reference or include fails) into site/.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Browser test of the Airflow UI: Debian's chromium (installed by apt if missing) driven by Playwright.
UI_STAMP := $(VENV)/.installed-ui
CHROMIUM := /usr/bin/chromium

$(UI_STAMP): $(STAMP)
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev,ui]'
	touch $(UI_STAMP)

$(CHROMIUM):
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test-ui: $(UI_STAMP) $(CHROMIUM)
	DEBITURA_UI_TEST=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/ui

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
	rm -rf $(VENV) .airflow build *.egg-info
