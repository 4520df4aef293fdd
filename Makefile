# The two commands: `make run` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# CPU build of torch; see README for the CUDA install.
TORCH  ?= torch==2.13.0

.PHONY: run test lint typecheck unit browser-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# Headless Chromium for the web chat page test (Debian's package).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

run: $(STAMP)
	$(BIN)/chatcanvas run

lint: $(STAMP)
	$(BIN)/ruff check chatcanvas tests bench scripts examples

typecheck: $(STAMP)
	$(BIN)/mypy chatcanvas

# Two test processes, one torch thread each: the tiny models run as fast, and the cores are not oversubscribed.
unit: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -n 2 --dist loadfile --durations=15

test: $(STAMP) browser-deps lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/adherence.py
	$(BIN)/python bench/rewriter.py
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
