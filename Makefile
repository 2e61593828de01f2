# One entry point for people and CI: `make demo`, `make test`, `make bench` (`make demo-json`: the demo with JSON events).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data

.PHONY: demo demo-json test bench lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch is pinned first and alone: this exact version resolves to the CPU wheel pip finds locally
	# on the project's machines; any other version, or PyPI's own build, is the multi-GB CUDA one.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[train,dev]"
	touch $@

$(VENV): $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m logwarden.demo

demo-json: $(VENV)/.installed
	$(PY) -m logwarden.demo --json --out demo-out-json

test: $(VENV)/.installed
	LOGWARDEN_DATA=$(DATA) $(PY) -m pytest -q

bench: $(VENV)/.installed
	LOGWARDEN_DATA=$(DATA) $(PY) benchmarks/hdfs_eval.py
	$(PY) benchmarks/throughput.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check logwarden daemon train tests benchmarks
	$(VENV)/bin/mypy logwarden daemon train

clean:
	rm -rf $(VENV) build *.egg-info
