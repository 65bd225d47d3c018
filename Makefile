# The two commands a newcomer needs. Each creates or updates .venv from nothing, then does its job.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-all lint report clean-outputs

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: with no torch present, a plain dependency pulls several GB of CUDA packages
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)  ## the whole course, headless, on synthetic data (smoke profile)
	$(PY) -m helpers run-notebooks --profile smoke

test: $(STAMP)  ## the fast tier: every module and every notebook on small data, a few minutes
	$(PY) -m pytest -q -m "not slow and not browser"

test-all: $(STAMP)  ## the whole suite, slow tier too (course walks, class, Colab, faults, browser): what CI runs
	$(PY) -m pytest -q

report: $(STAMP)  ## on purpose: copy the course run's report (outputs/) into the committed report/
	$(PY) -m helpers report --run outputs/train --out report

lint: $(STAMP)
	$(PY) -m ruff check .

clean-outputs:
	rm -rf outputs
