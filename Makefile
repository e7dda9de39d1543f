# The two commands a newcomer types (see README.md): `make run` and `make test`.
# Both set everything up first: Java 17 (and, for the CDK tests, Node.js) with apt-get when missing, and a
# virtual environment in .venv with chainfeat and its pinned dependencies (job, tests, CDK app).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint setup java node clean

run: setup
	$(BIN)/chainfeat run

# Four workers: the suite mostly waits (paced replays, restarts, subprocesses), so it takes about half the time
# of one process; a module whose fixture is costly stays on one worker (its xdist_group mark).
test: setup node lint
	$(BIN)/pytest -n 4 --dist loadgroup

# Lint, the import-layer contract (pyproject.toml [tool.importlinter]) and the docs site with every link checked.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/docs-site

setup: java $(VENV)/.installed

java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "java not found: installing OpenJDK 17 with apt-get"; \
	  $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless; }

node:
	@command -v node >/dev/null 2>&1 || { \
	  echo "node not found (the CDK app needs it): installing nodejs with apt-get"; \
	  $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs; }

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "chainfeat needs Python 3.11 (PyFlink 2.3); set PYTHON=/path/to/python3.11")'
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "python venv support missing: installing python3-venv with apt-get"; \
	  $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,infra]'
	$(BIN)/chainfeat prepare || echo "chainfeat prepare failed: local runs work, they just start slower"
	touch $@

clean:
	rm -rf $(VENV) .chainfeat .pytest_cache
