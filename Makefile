# ccdeploy: `make demo` and `make test` do all the set-up on a fresh machine with Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements/dev.lock
STAMP  := $(VENV)/.installed-$(shell cat $(LOCK) pyproject.toml | cksum | cut -d' ' -f1)
# The lock pins every package with hashes; ignore machine-wide pip config that could add other sources.
PIP    := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null $(BIN)/pip

.PHONY: help install system-deps lint test demo bench lock clean

help:
	@echo "make demo   - run the whole pipeline end to end on the embedded defaults"
	@echo "make test   - lint, type-check, import rules, full test suite with coverage"
	@echo "make bench  - throughput and memory benchmarks (ratios against floors measured in the same run)"
	@echo "make lint   - ruff, mypy --strict, import-linter only"
	@echo "make lock   - re-resolve requirements/dev.lock (needs uv)"

$(STAMP): $(LOCK) pyproject.toml
	@rm -f $(VENV)/.installed-*
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(LOCK)
	$(PIP) install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint system-deps
	$(BIN)/pytest --cov --cov-report=term -q

demo: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python bench/bench_seal.py
	$(BIN)/python bench/bench_attest.py
	$(BIN)/python bench/bench_provenance.py
	$(BIN)/python bench/bench_release.py
	$(BIN)/python bench/bench_coldstart.py
	$(BIN)/python bench/bench_serving.py

lock:
	uv pip compile pyproject.toml --extra dev --extra cpu --extra pkcs11 --extra postgres --universal --python-version 3.11 \
		--generate-hashes --no-header -o $(LOCK)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage htmlcov build *.egg-info
