#!/usr/bin/env bash
# Installs the official OpenAI client (the npm package `openai`, pinned) into .cache/openai-client,
# for clipcap-serve's tests: the server is checked with a client nobody here wrote.
# Needs node/npm (registry access, first run only). Prints the package's directory.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="${OPENAI_CLIENT_DIR:-$repo/.cache/openai-client}"
package=openai version=5.23.2  # works on Debian's node 20 (later majors want node 22)

pj="$dest/node_modules/$package/package.json"
if ! { [ -f "$pj" ] && grep -q "\"version\": *\"$version\"" "$pj"; }; then
  command -v npm >/dev/null || { echo "fetch_openai_client: npm not found (apt-get install npm)" >&2; exit 1; }
  mkdir -p "$dest"
  echo "{\"name\": \"clipcap-openai-client\", \"private\": true, \"dependencies\": {\"$package\": \"$version\"}}" \
    > "$dest/package.json"
  echo "fetch_openai_client: installing $package@$version into $dest" >&2
  npm install --prefix "$dest" --no-save --no-audit --no-fund --loglevel=error >&2
  grep -q "\"version\": *\"$version\"" "$pj" || { echo "fetch_openai_client: $package@$version not installed" >&2; exit 1; }
fi
echo "$dest/node_modules/$package"
