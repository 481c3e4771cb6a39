# The few targets users need. Everything runs inside .venv, which `make venv` builds from PyPI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

DATA ?=
DEMO_CLICKS ?= 2000
MAXLEN ?= 10
SEEDS ?= 1
EVAL_OUT ?= eval-results.json
MODEL_DIR ?= artifacts/model
BENCH_OUT ?= bench-results.json
BENCH_QUICK ?=
ONLINE_OUT ?= online-results.json

WORKERS ?= 1
COMPOSE ?= docker compose

.PHONY: help venv run demo test lint eval bench gpu-check train clean faults up down online-eval

help:
	@echo "make run       start the whole local stack, worker and API (Ctrl-C stops it)"
	@echo "make demo      bounded end-to-end run; prints SUMMARY {json} (DEMO_CLICKS=N DATA=path)"
	@echo "make test      unit + integration tests against real servers"
	@echo "make faults    kill/restart workers and servers, poison flood; FAULTS {json} (FAULTS_QUICK=1)"
	@echo "make lint      ruff + mypy"
	@echo "make eval      train + evaluate MIND and baselines (DATA=path MAXLEN=10 SEEDS=1)"
	@echo "make bench     pass-through, search ceiling, naive and pipeline sweeps; BENCH_OUT json,"
	@echo "               .png and .md beside it (BENCH_QUICK=1: 12k catalog, < 5 min)"
	@echo "make gpu-check MIND's model stage on the GPU beside the CPU (builds .venv-gpu);"
	@echo "               without a GPU it says so and runs both sides on the CPU"
	@echo "make train     train and export a model (DATA=path, else built-in generator)"
	@echo "make online-eval  prequential HR@20/50 of MostPopular, batch, realtime, continuous,"
	@echo "               itemcf, served on DATA (user,item,ts CSV) replayed through the stack"
	@echo "               under the learning watermark, with a leak check; ONLINE_OUT json,"
	@echo "               .png and .md beside it (ONLINE_NO_WATERMARK=1: without it)"
	@echo "make up        docker compose production stack, WORKERS=N workers (needs .env)"
	@echo "make down      stop the docker compose stack (volumes kept)"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .  # console scripts: recall-*
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m harness.stack.run $(if $(DATA),--data $(DATA))

demo: $(STAMP)
	$(PY) -m harness.demo --clicks $(DEMO_CLICKS) $(if $(DATA),--data $(DATA))

test: $(STAMP)
	$(PY) -m pytest

faults: $(STAMP)
	$(PY) -m harness.faults

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy streams model producers consumers harness tests

eval: $(STAMP)
	$(PY) -m model.evaluate --data $(DATA) --maxlen $(MAXLEN) --seeds $(SEEDS) --json --out $(EVAL_OUT)

bench: $(STAMP)
	BENCH_OUT=$(BENCH_OUT) BENCH_QUICK=$(BENCH_QUICK) $(PY) -m harness.bench --model-root $(MODEL_DIR)

gpu-check: $(STAMP)
	$(PY) -m harness.bench.gpu

train: $(STAMP)
	$(PY) -m model.train $(if $(DATA),--data $(DATA),--synthetic) --out $(MODEL_DIR)

online-eval: $(STAMP)
	ONLINE_OUT=$(ONLINE_OUT) $(PY) -m harness.online \
		--data $(or $(DATA),../shared/data/movielens-small/clicks.csv)

up:
	@test -f .env || { echo "no .env: cp .env.example .env and replace every change-me"; exit 1; }
	$(COMPOSE) up -d --build --wait --scale worker=$(WORKERS)

down:
	$(COMPOSE) down

clean:
	rm -rf .stack .pytest_cache .mypy_cache .ruff_cache
