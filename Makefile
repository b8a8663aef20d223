# One command each: `make run` (the service beside a local Fortnox sandbox) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GEN_STAMP := spiris/.generated
SIE_STAMP := $(VENV)/.sie-compiled
PROTO_FILES := $(wildcard protos/spiris/skattbokslut/fortnox/v1/*.proto)
PROTOC_INCLUDE = $(shell $(PY) -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
CODE := fortnox_bridge server adapters core sie sandbox bench build_sie.py

.PHONY: install protos lint test run bench clean

install: $(STAMP) $(GEN_STAMP) $(SIE_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# compat mode puts the project root on sys.path, so the generated `spiris` package imports too.
	$(PY) -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

# The SIE reader and the record writer compiled with mypyc (pure Python, with a notice, where
# that cannot be done).
$(SIE_STAMP): $(STAMP) build_sie.py $(wildcard sie/*.py sie/controls/*.py) server/native.py server/record_wire.py
	$(PY) build_sie.py
	touch $(SIE_STAMP)

protos: $(STAMP)
	rm -f $(GEN_STAMP)
	$(MAKE) $(GEN_STAMP)

$(GEN_STAMP): $(STAMP) $(PROTO_FILES) protos/google/type/date.proto protos/buf.yaml
	rm -rf spiris
	$(PY) -m grpc_tools.protoc -I protos -I $(PROTOC_INCLUDE) \
		--plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
		--python_out=. --grpc_python_out=. --mypy_out=. --mypy_grpc_out=. $(PROTO_FILES)
	find spiris -type d -exec touch {}/__init__.py \;
	touch $(GEN_STAMP)

lint: install
	cd protos && ../$(VENV)/bin/buf lint
	$(VENV)/bin/ruff check $(CODE) tests
	$(VENV)/bin/mypy
	# The floors' import contracts ([tool.importlinter] in pyproject.toml).
	$(VENV)/bin/lint-imports --no-cache

test: install lint
	$(VENV)/bin/pytest
	# The SIE tests again on the pure-Python reader, the one that runs without a compiler.
	SIE_PURE_PYTHON=1 $(VENV)/bin/pytest -q tests/sie

run: install
	$(PY) -m fortnox_bridge.devrun

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) spiris .state .pytest_cache .mypy_cache .ruff_cache
	$(PYTHON) build_sie.py --clean
