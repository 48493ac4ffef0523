#!/usr/bin/env bash
# Lint the protos with buf (from npm). The google/api protos come from the installed Python package.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/buf_setup.sh
node_modules/.bin/buf lint "$@"
