# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
CATALOG_DEMO_COUNT ?= 1000

.PHONY: run test lint migrate demo bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "Installing dependencies into $(VENV) (the first time takes a minute or two)..."
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.installed
	@echo "Migrating the databases..."
	@for db in default orders catalog; do \
		$(PY) manage.py migrate --database $$db --verbosity 0 || exit 1; \
	done

demo: migrate
	@echo "Demo accounts:"
	@$(PY) manage.py seed_demo_users
	@echo "Loading the demo catalog ($(CATALOG_DEMO_COUNT) products)..."
	@$(PY) manage.py load_catalog --count $(CATALOG_DEMO_COUNT) --verbosity 0

## make run: the app on the embedded default (SQLite, tasks inline) with demo data
run: demo
	@echo "Starting the server on http://$(HOST):$(PORT)/  (API docs: /api/docs/, admin: /admin/)"
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

## make test: the whole suite against PostgreSQL, RabbitMQ and Redis on localhost
test: $(VENV)/.installed
	$(PY) scripts/check_services.py
	$(MAKE) --no-print-directory lint
	$(PY) manage.py makemigrations --check --dry-run --verbosity 0
	$(VENV)/bin/pytest

bench: $(VENV)/.installed
	$(PY) bench/run.py
	$(PY) bench/orders.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
