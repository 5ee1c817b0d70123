# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install
# sharewise with torch pinned to the CPU wheel 2.13.0 (a bare `torch` would pull a CUDA build).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test test-fast bench setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,jd,parquet]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/sharewise demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_soft_ordering.py
	$(BIN)/python benchmarks/bench_gumbel_matrix.py
	$(BIN)/python benchmarks/bench_balancing.py
	$(BIN)/python benchmarks/bench_scaling.py
	$(BIN)/python benchmarks/bench_vs_libmtl.py

clean:
	rm -rf $(VENV) runs build *.egg-info
