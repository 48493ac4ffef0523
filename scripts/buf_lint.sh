#!/usr/bin/env bash
# Lint the protos with buf (from npm). The google/api protos come from the installed Python package.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=build/buf-deps/google/api
mkdir -p "$deps"
api_dir=$(python -c "import google.api, pathlib; print(pathlib.Path(next(iter(google.api.__path__))))")
cp "$api_dir/annotations.proto" "$api_dir/http.proto" "$deps/"
[ -x node_modules/.bin/buf ] || npm install --no-audit --no-fund --silent
node_modules/.bin/buf lint "$@"
