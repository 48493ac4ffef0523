# Sourced by the buf scripts: buf and the browser test's playwright-core from npm (package.json), and the
# google/api protos the annotations import, copied from the installed Python package.
deps=build/buf-deps/google/api
mkdir -p "$deps"
api_dir=$(python -c "import google.api, pathlib; print(pathlib.Path(next(iter(google.api.__path__))))")
cp "$api_dir/annotations.proto" "$api_dir/http.proto" "$deps/"
if [ ! -x node_modules/.bin/buf ] || [ ! -d node_modules/playwright-core ]; then
  npm install --no-audit --no-fund --silent
fi
