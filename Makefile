# `make run` serves the product; `make test` runs every test. Both set themselves up first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := backend/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup acceptance clean

$(STAMP): backend/requirements.txt
	@echo "setting up $(VENV) (Python: $(PYTHON))"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -r backend/requirements.txt
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	cd backend && exec .venv/bin/python -m app

test: $(STAMP)
	cd backend && .venv/bin/python -m pytest $(PYTEST_ARGS)

acceptance: $(STAMP)
	../shared/acceptance/run $(CHECKS)

clean:
	rm -rf $(VENV) backend/data
