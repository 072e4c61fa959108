# Kefu Hub: `make run` serves the demo bot; `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench clean bench-rasa

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/kefu run

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/kefu bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

# Optional: Rasa 3.6 as a peer on CLINC150, in its own Python 3.10 venv (.venv-rasa); DATA=... overrides ../shared/data.
bench-rasa:
	DATA="$(DATA)" RASA_PYTHON="$(RASA_PYTHON)" bash bench/rasa/run.sh
