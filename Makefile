# Two entry points for a newcomer: `make run` and `make test`.
# Both create .venv on first use; nothing but Python (and apt for the test servers) is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test proto bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/edgeplane run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Regenerate the etcd v3 gRPC stubs from edgeplane/datastore/proto/*.proto.
proto: $(STAMP)
	$(BIN)/python -m edgeplane.datastore.proto.generate

bench: $(STAMP)
	$(BIN)/python bench/datastore.py

clean:
	rm -rf $(VENV) .pytest_cache
