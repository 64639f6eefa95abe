#!/usr/bin/env bash
# One client asking clipcap-serve for N sampled choices per request (bench/README.md, "Caption
# server": sampled choices in one batch). Prints the mean milliseconds per request and the
# request's choices (to compare two builds' answers):
#
#   bench/run_serve_choices_bench.sh [BUILD_DIR]                # default: build
#   N=8 REQUESTS=20 THREADS=2 MODEL=models/emoji-tiny bench/run_serve_choices_bench.sh build
#
# Alternate two builds (e.g. the previous main's, built in a git worktree) in one session to
# compare them: the ratio, not the milliseconds, is what carries between machines.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="${1:-build}"
[[ "$build" = /* ]] || build="$root/$build"
N="${N:-8}" REQUESTS="${REQUESTS:-20}" THREADS="${THREADS:-2}" MODEL="${MODEL:-models/emoji-tiny}"
[[ "$MODEL" = /* ]] || MODEL="$root/$MODEL"
[[ -x "$build/clipcap-serve" ]] || { echo "run_serve_choices_bench.sh: $build/clipcap-serve not found" >&2; exit 1; }
. "$here/common.sh"  # serve_start

log="$(mktemp)"
body="$(mktemp)"
trap 'kill "$server_pid" 2>/dev/null || true; rm -f "$log" "$body"' EXIT
serve_start "$log" --model "$MODEL" --port 0 --threads "$THREADS"
[[ -n "$port" ]] || { echo "run_serve_choices_bench.sh: the server did not start:" >&2; cat "$log" >&2; exit 1; }
printf '{"model": "%s", "n": %d, "temperature": 0.9, "seed": 7, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%s"}}]}]}' \
  "$(basename "$MODEL")" "$N" "$(base64 -w0 "$root/tests/fixtures/images/rgb_160x120.png")" > "$body"
ask() { curl -sf -X POST -H 'Content-Type: application/json' --data @"$body" "http://127.0.0.1:$port/v1/chat/completions"; }
first="$(ask)"  # warm-up, and the answer to compare
start=$(date +%s.%N)
for _ in $(seq "$REQUESTS"); do ask > /dev/null; done
end=$(date +%s.%N)
echo "$first" | "$py" -c 'import json, sys; print(json.dumps([c["message"]["content"] for c in json.load(sys.stdin)["choices"]]))'
"$py" -c "print(f'$build: n=$N, {($end - $start) / $REQUESTS * 1000:.1f} ms per request (mean of $REQUESTS), load $(load)')"
