#!/usr/bin/env bash
# Check that the protos stay wire- and source-compatible with the last release: `buf breaking` (from npm)
# against the newest image in protos/releases/ (one per release, `buf build protos -o`; see README,
# Development). The google/api protos come from the installed Python package, as for scripts/buf_lint.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/buf_setup.sh
baseline=$(find protos/releases -name 'v*.binpb' | sort -V | tail -n 1)
if [ -z "$baseline" ]; then
  echo "buf_breaking: no release image in protos/releases/" >&2
  exit 1
fi
echo "buf breaking protos --against $baseline" >&2
node_modules/.bin/buf breaking protos --against "$baseline" "$@"
