# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_CONTACTS ?= 1000
export DEBUG ?= 1

.PHONY: run stop worker test lint format install install-dev migrate demo schema clean-db

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt $(BIN)/activate
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(BIN)/activate
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/python manage.py migrate --noinput

## The demo org, once: DEMO_CONTACTS contacts with custom fields, tags, opportunities, two saved views;
## prints its token (the same on every run), a curl and the admin login.
demo: migrate
	$(BIN)/python manage.py bootstrap_demo --host $(HOST) --port $(PORT) --contacts $(DEMO_CONTACTS)

## Install, start embedded PostgreSQL (unless DATABASE_URL is set), migrate, seed the demo org, then
## serve on HOST:PORT, with one worker of the task queue beside the server. Ctrl-C stops all three:
## the embedded PostgreSQL stops once no process uses it any more (`make stop` stops it regardless).
run: demo
	@$(BIN)/python manage.py worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker; $(BIN)/python -m crm.embedded_db stop --if-unused >/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## Stop the embedded PostgreSQL (EMBEDDED_PGDATA, default .pgdata), even under processes still using it.
stop: install
	@$(BIN)/python -m crm.embedded_db stop

## One more worker of the task queue (jobs: async imports, undo); run as many as you like.
worker: install
	$(BIN)/python manage.py worker

## The whole test suite (embedded PostgreSQL in a throwaway folder unless DATABASE_URL is set).
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: install
	$(BIN)/python manage.py spectacular --file openapi.yaml --validate

## Delete the embedded PostgreSQL's data; refused while the server runs (`make stop` first).
clean-db: install
	@$(BIN)/python -m crm.embedded_db clean

# --- Benchmarks (DESIGN §5): their own database `crm_bench` (embedded in .pgdata-bench/ unless DATABASE_URL is set).
$(VENV)/.installed-bench: requirements.txt requirements-bench.txt $(BIN)/activate
	$(BIN)/pip install -q -r requirements.txt -r requirements-bench.txt
	touch $@

bench-tools: $(VENV)/.installed-bench
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk) || \
		echo "wrk could not be installed: the GET /contacts/{id} load test will be skipped"

## 1,000,000 contacts in one org + 200,000 across 50 others, then 10,000 more orgs of 20 custom fields
## (DESIGN §5 "Many tenants"); writes docs/benchmarks.md and docs/benchmarks.png.
bench: bench-tools
	$(BIN)/python -m bench run --contacts 1000000 --other-orgs 50 --other-contacts 200000 \
		--many-tenants 10000 $(BENCH_ARGS)

## 100,000 + 20,000, then 1,000 more orgs: a quick check of the harness; writes bench-out/benchmarks-small.md.
bench-small: bench-tools
	$(BIN)/python -m bench run --contacts 100000 --other-orgs 50 --other-contacts 20000 --many-tenants 1000 \
		--report bench-out/benchmarks-small.md --chart bench-out/benchmarks-small.png $(BENCH_ARGS)

.PHONY: bench bench-small bench-tools
