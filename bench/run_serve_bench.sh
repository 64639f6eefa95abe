#!/usr/bin/env bash
# clipcap-serve under load, with batching and one request at a time, in one session
# (bench/README.md, "Caption server"):
#
#   bench/run_serve_bench.sh [BUILD_DIR]              # default: build
#   CLIENTS=64 REQUESTS=2000 THREADS=2 MODEL=models/emoji-tiny bench/run_serve_bench.sh build
#
# Starts the server on a free loopback port (the default batching: --max-batch 32,
# --batch-wait-ms 5), sends REQUESTS greedy chat completions from CLIENTS concurrent connections
# (bench/serve_load.cpp), stops it with SIGTERM; then the same with --max-batch 1 --batch-wait-ms 0
# (each request alone). Writes bench/results/serve_<time>.{md,json}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/common.sh"  # py, stamp, load, note, machine, report
bench_binary serve_load "${1:-build}"
CLIENTS="${CLIENTS:-64}" REQUESTS="${REQUESTS:-2000}" THREADS="${THREADS:-2}" MODEL="${MODEL:-models/emoji-tiny}"
[[ "$MODEL" = /* ]] || MODEL="$root/$MODEL"
images=("$root/tests/fixtures/images/rgb_160x120.png" "$root/tests/fixtures/images/palette_100x30.png"
        "$root/tests/fixtures/images/rgba_40x40.png" "$root/tests/fixtures/images/gray_37x53.png")
raw="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$raw" "$log"' EXIT

serve_and_load() {  # NAME, then the server's extra flags
  local name=$1
  shift
  serve_start "$log" --model "$MODEL" --port 0 --threads "$THREADS" "$@"
  echo "== $name ($*), load $(load)" >&2
  "$bin" --url "http://127.0.0.1:$port" --clients "$CLIENTS" --requests "$REQUESTS" "${images[@]}" \
    | sed "s/^{/{\"config\": \"$name\", /" >> "$raw"
  kill -TERM "$server_pid"
  wait "$server_pid"
}

note start
serve_and_load batched
serve_and_load one-at-a-time --max-batch 1 --batch-wait-ms 0
note end

cmd="CLIENTS=$CLIENTS REQUESTS=$REQUESTS THREADS=$THREADS bench/run_serve_bench.sh $(basename "$build")"
report serve <<'EOF2'
from bench_report import start, write_report
rows, events, out, cmd, cpu, kernel = start()
runs = {r["config"]: r for r in rows if "config" in r}
L = ["Greedy chat completions from concurrent clients on loopback; every request counted.", "",
     "| server | clients | requests | ok | failed | requests/s | p50 ms | p90 ms | p99 ms | mean batch |",
     "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for name, r in runs.items():
    L.append(f"| {name} | {r['clients']} | {r['requests']} | {r['ok']} | {r['failed']} | {r['requests_per_s']:.1f} | "
             f"{r['p50_ms']:.0f} | {r['p90_ms']:.0f} | {r['p99_ms']:.0f} | {r.get('mean_batch_rows', 0):.1f} |")
b, o = runs.get("batched"), runs.get("one-at-a-time")
if b and o:
    L += ["", f"**Batching: {b['requests_per_s'] / o['requests_per_s']:.2f}x the throughput of one request at a time.**"]
write_report(out, L, cmd, cpu, kernel, events, runs=list(runs.values()))
EOF2
