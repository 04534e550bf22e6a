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
	$(BIN)/ruff check debitura_provider dags tests bench
	$(BIN)/mypy debitura_provider

sandbox: $(STAMP)
	$(BIN)/debitura-sandbox

clean:
	rm -rf $(VENV) .airflow build *.egg-info
