# shopsync — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

LOCK_FLAGS := --quiet --all-build-deps --allow-unsafe --generate-hashes --strip-extras --no-emit-find-links \
              --no-emit-index-url

.PHONY: run test test-unit lint install lock kafka-start kafka-stop bench clean

# Every package, build tools included, comes from requirements.lock with its hashes; the project itself goes on top.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## lock: after a change to pyproject.toml's dependencies, re-resolve requirements.lock (with the dev extras, for
## `make install`) and deploy/requirements-runtime.lock (the same versions without them, for the image)
lock:
	$(PYTHON) -m venv $(VENV)/lock-tools
	$(VENV)/lock-tools/bin/pip install -q 'pip-tools>=7.4'
	$(VENV)/lock-tools/bin/pip-compile $(LOCK_FLAGS) --extra dev --output-file requirements.lock pyproject.toml
	$(VENV)/lock-tools/bin/pip-compile $(LOCK_FLAGS) --constraint requirements.lock \
		--output-file deploy/requirements-runtime.lock pyproject.toml

## run: set everything up and run the whole pipeline in the foreground (Ctrl-C stops what it started)
run: $(STAMP)
	$(BIN)/shopsync run

## test: set everything up and run the test suite against a real local Kafka broker
test: $(STAMP)
	$(BIN)/shopsync kafka install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-unit: the tests that need no broker, no TikTok sandbox and no other process (about 10 s), with no broker up.
## The tier is a marker, not a folder: tests/conftest.py marks every test `integration` whose fixtures reach a
## broker, the sandbox or a process (tests mirror the code's layout, so both tiers live side by side in each folder),
## and this runs the rest. The broker address is a dead one, so a unit test that reaches for Kafka fails at once.
test-unit: $(STAMP)
	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 $(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

## lint: ruff (rules in pyproject.toml) over everything, mypy --strict over the product's packages
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

kafka-start: $(STAMP)
	$(BIN)/shopsync kafka start

kafka-stop: $(STAMP)
	$(BIN)/shopsync kafka stop

## bench: every benchmark; numbers in bench/results/*.json and docs/performance.md
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	-$(BIN)/shopsync kafka stop
	rm -rf $(VENV) .shopsync
