# shopsync — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install kafka-start kafka-stop bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: set everything up and run the whole pipeline in the foreground (Ctrl-C stops what it started)
run: $(STAMP)
	$(BIN)/shopsync run

## test: set everything up and run the test suite against a real local Kafka broker
test: $(STAMP)
	$(BIN)/shopsync kafka install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
