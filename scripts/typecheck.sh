#!/usr/bin/env bash
# mypy (strict) over the package as it installs: tasks/, graders/ and leaderboard/ become
# mathusereval.tasks|graders|leaderboard through setuptools package-dir, which mypy cannot map from the
# source tree, so we check a throwaway tree of symlinks laid out like the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/mathusereval"
cp -rs "$root/mathusereval/." "$stage/mathusereval/"
for sub in tasks graders leaderboard; do ln -s "$root/$sub" "$stage/mathusereval/$sub"; done
cd "$stage" && "$root/${VENV:-.venv}/bin/mypy" --config-file "$root/pyproject.toml" --cache-dir /dev/null -p mathusereval
