#!/usr/bin/env bash
# The remote backend's path against clipcap-serve on this machine, beside the local model in
# process, in one session (bench/README.md, "Remote backend"):
#
#   bench/run_remote_bench.sh [BUILD_DIR]                  # default: build
#   IMAGES=240 THREADS=2 MODEL=models/emoji-tiny bench/run_remote_bench.sh build
#
# Images: IMAGES files (copies of the fixture images) captioned by `clipcap-infer image -m MODEL`
# (local), then by `clipcap-infer image --backend openai` against a clipcap-serve of the same model
# on loopback, at --concurrency 1, 8 and 32, JPEG and PNG. Video: a 60 s 640x360 clip at -N 60,
# local and remote (--concurrency 8). Server and client share the machine's cores, as they would
# on one GPU box. Writes bench/results/remote_<time>.{md,json}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/common.sh"  # py, stamp, load, note, machine, report, serve_start
root="$(dirname "$here")"
build="${1:-build}"
[[ "$build" = /* ]] || build="$root/$build"
for t in clipcap-infer clipcap-serve; do
  [[ -x "$build/$t" ]] || { echo "$(basename "$0"): $build/$t not found; build it first" >&2; exit 1; }
done
IMAGES="${IMAGES:-240}" THREADS="${THREADS:-2}" MODEL="${MODEL:-models/emoji-tiny}"
[[ "$MODEL" = /* ]] || MODEL="$root/$MODEL"
work="$(mktemp -d)"
raw="$work/raw.jsonl"
trap 'kill -TERM "${server_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

fixtures=("$root"/tests/fixtures/images/*.png)
mkdir -p "$work/images"
for i in $(seq 0 $((IMAGES - 1))); do
  cp "${fixtures[$((i % ${#fixtures[@]}))]}" "$work/images/img_$i.png"
done
ffmpeg -v error -f lavfi -i testsrc2=duration=60:size=640x360:rate=25 -c:v libx264 -pix_fmt yuv420p "$work/clip.mp4"

serve_start "$work/serve.log" --model "$MODEL" --port 0 --threads "$THREADS"
endpoint="http://127.0.0.1:$port/v1"

timed() {  # NAME ITEMS UNIT, then the command; appends a row
  local name=$1 items=$2 unit=$3 t0 t1
  shift 3
  echo "== $name, load $(load)" >&2
  t0=$(date +%s.%N)
  "$@" > "$work/out_$name" 2> "$work/err_$name" || { cat "$work/err_$name" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "{\"config\": \"$name\", \"items\": $items, \"unit\": \"$unit\", \"seconds\": $(echo "$t1 - $t0" | bc)}" >> "$raw"
}

note start
timed image-local "$IMAGES" image "$build/clipcap-infer" image -m "$MODEL" --threads "$THREADS" "$work/images"
for c in 1 8 32; do
  for f in jpeg png; do
    timed "image-remote-c$c-$f" "$IMAGES" image "$build/clipcap-infer" image --backend openai --endpoint "$endpoint" \
      --api-model emoji-tiny --concurrency "$c" --image-format "$f" "$work/images"
  done
done
cmp -s "$work/out_image-local" "$work/out_image-remote-c8-png" || echo "warning: remote PNG captions differ from local" >&2
timed video-local 60 frame "$build/clipcap-infer" video -m "$MODEL" --threads "$THREADS" -N 60 --out-dir "$work/vl" "$work/clip.mp4"
timed video-remote-c8 60 frame "$build/clipcap-infer" video --backend openai --endpoint "$endpoint" --api-model emoji-tiny \
  --concurrency 8 -N 60 --out-dir "$work/vr" "$work/clip.mp4"
note end

cmd="IMAGES=$IMAGES THREADS=$THREADS bench/run_remote_bench.sh $(basename "$build")"
report remote <<'EOF2'
from bench_report import start, write_report
rows, events, out, cmd, cpu, kernel = start()
runs = [r for r in rows if "config" in r]
base = {r["unit"]: r for r in runs if r["config"].endswith("-local")}
L = ["clipcap-infer through `--backend openai` against clipcap-serve (the same model) on loopback, beside the local model "
     "in process. Wall time of the whole command (model loading included).", "",
     "| path | items | seconds | items/s | vs local |", "|---|---:|---:|---:|---:|"]
for r in runs:
    rate = r["items"] / r["seconds"]
    b = base.get(r["unit"])
    ratio = rate / (b["items"] / b["seconds"]) if b else float("nan")
    L.append(f"| {r['config']} | {r['items']} {r['unit']}s | {r['seconds']:.2f} | {rate:.1f} | {ratio:.2f}x |")
write_report(out, L, cmd, cpu, kernel, events, runs=runs)
EOF2
