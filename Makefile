# Developer entry points. Everything runs inside a virtualenv in .venv,
# created with python3 from PATH on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?= -n auto  # pytest-xdist: one worker per CPU

.PHONY: venv install run test bench bench-data loadtest clean distclean

venv: $(PY)

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev,load]'
	touch $(STAMP)

run: install
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py seed_demo
	@# Beside the server: the job worker (imports, large exports), and approvals past their
	@# expiry closed as Expired (and mailed) every minute.
	DEBUG=1 sh -c 'trap "kill 0" INT TERM EXIT; \
		$(PY) manage.py db_worker --no-reload & \
		(while sleep 60; do $(PY) manage.py expire_approvals; done) & \
		$(PY) manage.py runserver 127.0.0.1:8000'

# Uses whatever DATABASE_URL is in the environment (unset = SQLite).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Page costs of restricted users against an Administrator's at 10k and 1M customers
# (PostgreSQL via DATABASE_URL: databases <name>_bench_<size>, built once and reused;
# SQLite: throw-away files at 1k and 10k). E.g. make bench BENCH_ARGS="--large 100000".
bench: install
	CRM_TESTING=1 $(PY) manage.py bench $(BENCH_ARGS)

# The benchmark's organization in the configured database: make bench-data BENCH_CUSTOMERS=100000
BENCH_CUSTOMERS ?= 10000
bench-data: install
	CRM_TESTING=1 $(PY) manage.py migrate --noinput
	CRM_TESTING=1 $(PY) manage.py bench_data --customers $(BENCH_CUSTOMERS)

# Load test on PostgreSQL (DATABASE_URL): 50 locust users browse, search and export on a copy
# of the bench database of 1M customers, without and then with a 100k-row import running.
# Short form: make loadtest LOADTEST_ARGS="--users 3 --seconds 10 --customers 2000".
loadtest: install
	CRM_TESTING=1 $(PY) manage.py loadtest $(LOADTEST_ARGS)

clean:
	rm -rf staticfiles .pytest_cache test-artifacts build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
