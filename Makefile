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

# Benchmarks run on demand, never in `make test`: `make bench` runs them all, `make bench
# BENCH=datastore` one of them; record the results in docs/benchmarks.md.
BENCH ?= datastore console twonode agent forge
bench: $(STAMP)
	@for name in $(BENCH); do echo "== bench/$$name.py"; $(BIN)/python bench/$$name.py || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
