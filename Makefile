# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# gunicorn workers of `make run`: one per core of a small machine.
WORKERS ?= 2
export REGISTRY_HOME ?= $(CURDIR)/instance
FLASK := $(BIN)/flask --app registry

.PHONY: run test install translations lock clean messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

# Reinstall whenever the lock file changes; everything comes from the hashed lock.
$(VENV)/.installed: requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	touch $@

install: $(VENV)/.installed translations

translations: $(VENV)/.installed
	$(BIN)/pybabel compile -d registry/translations

run: install
	FLASK_DEBUG=0 REGISTRY_ENV=development $(FLASK) init-db
	REGISTRY_ENV=development $(FLASK) seed
	REGISTRY_ENV=development $(FLASK) reindex
	REGISTRY_ENV=development $(BIN)/gunicorn --config python:registry.gunicorn_conf \
		--bind 127.0.0.1:$(PORT) --workers $(WORKERS) 'registry:create_app()'

# The suite runs on every core (pytest-xdist); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto

test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# Maintainers only: refresh the lock after editing pyproject.toml.
lock:
	uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) instance .pytest_cache

# Maintainers only: refresh the message catalogs after changing user-facing strings.
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k _l --no-location --sort-output -o registry/translations/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete -i registry/translations/messages.pot -d registry/translations
