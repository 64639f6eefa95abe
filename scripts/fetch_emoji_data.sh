#!/usr/bin/env bash
# Fetches the embedded default's emoji data (pinned npm packages) and builds its caption dataset.
# Usage: scripts/fetch_emoji_data.sh [DEST] [make_emoji_dataset.py options: --limit N --vendors ...]
#   DEST defaults to .cache/emoji in the checkout (gitignored). Writes DEST/node_modules/ (the npm
#   packages, ~420 MB) and DEST/dataset/{results.csv,dataset_emoji.json,images/} (see
#   scripts/make_emoji_dataset.py for the captions and the held-out twitter split). Then:
#   clipcap-data build --format karpathy --captions DEST/dataset/dataset_emoji.json \
#       --images DEST/dataset/images --clip CLIP_DIR --out DATASET_DIR
# Needs node/npm (registry access, first run only) and a Python with Pillow (PYTHON, default
# /usr/bin/python3: Debian's python3-pil). Rerunning skips the install when the pinned versions are there.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$repo/.cache/emoji}"
[ $# -gt 0 ] && shift
python="${PYTHON:-/usr/bin/python3}"

# Pinned: the dataset (which emoji, their art, their labels) is part of the default model's recipe.
packages=(
  emoji-datasource-apple@16.0.0
  emoji-datasource-google@16.0.0
  emoji-datasource-facebook@16.0.0
  emoji-datasource-twitter@16.0.0
  emojibase-data@17.0.0
  emojibase@17.0.0  # emojibase-data's peer dependency, pinned too so npm picks nothing on its own
)

installed() {  # node_modules/<name>/package.json has the pinned version
  local name="${1%@*}" version="${1##*@}"
  local pj="$dest/node_modules/$name/package.json"
  [ -f "$pj" ] && grep -q "\"version\": *\"$version\"" "$pj"
}

mkdir -p "$dest"
missing=0
for p in "${packages[@]}"; do installed "$p" || missing=1; done
if ((missing)); then
  command -v npm >/dev/null || { echo "fetch_emoji_data: npm not found (apt-get install npm)" >&2; exit 1; }
  # A package.json listing every pin: a later plain `npm install` there keeps (never prunes) them.
  {
    echo '{"name": "clipcap-emoji-data", "private": true, "dependencies": {'
    for i in "${!packages[@]}"; do
      p="${packages[$i]}"
      sep=","; [ "$i" -eq $((${#packages[@]} - 1)) ] && sep=""
      echo "  \"${p%@*}\": \"${p##*@}\"$sep"
    done
    echo '}}'
  } > "$dest/package.json"
  echo "fetch_emoji_data: installing ${packages[*]} into $dest" >&2
  npm install --prefix "$dest" --no-save --no-audit --no-fund --loglevel=error
  for p in "${packages[@]}"; do
    installed "$p" || { echo "fetch_emoji_data: $p: not installed in $dest/node_modules" >&2; exit 1; }
  done
else
  echo "fetch_emoji_data: packages already in $dest/node_modules" >&2
fi

"$python" -c 'import PIL' 2>/dev/null \
  || { echo "fetch_emoji_data: $python has no Pillow (apt-get install python3-pil, or set PYTHON)" >&2; exit 1; }
exec "$python" "$repo/scripts/make_emoji_dataset.py" --src "$dest" --out "$dest/dataset" "$@"
