#!/usr/bin/env bash
# A separate virtual environment for datatrove, the peer that `bench/bench_dedup.py` runs beside
# tokenmill: datatrove pins trafilatura < 1.12, which the project's own venv must not get.
# Idempotent: does nothing when the venv already imports datatrove and spaCy.
set -euo pipefail
VENV="${1:-$(dirname "$0")/../.venv-bench}"
PYTHON="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import datatrove, spacy, orjson" 2>/dev/null; then
  exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# The processing extra lacks spaCy (its MinHash splits words with it) and orjson (JsonlReader).
"$VENV/bin/python" -m pip install --quiet "datatrove[processing]==0.10.1" warcio faust-cchardet python-magic spacy orjson
