#!/usr/bin/env bash
# Data-parallel training speed, clipcap's ranks against PyTorch's DistributedDataParallel, in one
# session (bench/README.md, "Distributed training"):
#
#   bench/run_ddp_bench.sh [BUILD_DIR]           # default: build
#   RANKS="1 2 4" THREADS=2 WARMUP=2 STEPS=5 DTYPES=f32 BATCH=64 bench/run_ddp_bench.sh build
#
# For every dtype and rank count R: R processes of build/bench/train_bench started with torchrun's
# environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), each with max(1, THREADS / R) threads,
# training blocks of the same global batches (py_train_baseline.py make-batches); then the same
# with bench/py_train_baseline.py (DDP over Gloo, the ranks started the same way). Prints
# a markdown table and writes it with the raw JSON to bench/results/ddp_<time>.{md,json}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/common.sh"  # py, stamp, load, note, machine, report
bench_binary train_bench "${1:-build}"
RANKS="${RANKS:-1 2}" THREADS="${THREADS:-2}" WARMUP="${WARMUP:-2}" STEPS="${STEPS:-5}" DTYPES="${DTYPES:-f32}"
BATCH="${BATCH:-64}" SEED="${SEED:-0}" PORT="${PORT:-29731}"
WORK="${WORK:-/tmp/clipcap-ddp-bench}"

mkdir -p "$here/results" "$WORK"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
batches="$WORK/batches.json"
"$py" "$here/py_train_baseline.py" make-batches --out "$batches" --count $((WARMUP + STEPS)) --batch "$BATCH" --seed "$SEED"
common=(--batches "$batches" --warmup "$WARMUP" --steps "$STEPS" --seed "$SEED")

# R ranks of a command, started with torchrun's environment, as torchrun would (Debian's
# torch.distributed.run fails on Python 3.11: its default redirects are None); rank 0's stdout goes
# to $raw.
ranks() {
  local r=$1 t=$2 pids=() k
  shift 2
  for ((k = r - 1; k >= 0; k--)); do
    if ((k == 0)); then
      RANK=0 LOCAL_RANK=0 WORLD_SIZE=$r LOCAL_WORLD_SIZE=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT OMP_NUM_THREADS=$t \
        "$@" >> "$raw"
    else
      RANK=$k LOCAL_RANK=$k WORLD_SIZE=$r LOCAL_WORLD_SIZE=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT \
        OMP_NUM_THREADS=$t "$@" > /dev/null &
      pids+=($!)
    fi
  done
  for k in "${pids[@]}"; do wait "$k"; done
}

note start
for dt in $DTYPES; do
  for r in $RANKS; do
    t=$((THREADS / r)); ((t >= 1)) || t=1
    PORT=$((PORT + 1))
    echo "== clipcap, $r rank(s) x $t thread(s), $dt, load $(load)" >&2
    ranks "$r" "$t" "$bin" "${common[@]}" --threads "$t" --dtype "$dt" --config "$root/configs/small.json" \
      --tokenizer "$root/tests/fixtures/tiny-gpt2"
    PORT=$((PORT + 1))
    echo "== PyTorch DDP, $r rank(s) x $t thread(s), $dt, load $(load)" >&2
    ranks "$r" "$t" "$py" "$here/py_train_baseline.py" run "${common[@]}" --threads "$t" --dtype "$dt"
  done
done
note end

cmd="RANKS=\"$RANKS\" THREADS=$THREADS WARMUP=$WARMUP STEPS=$STEPS DTYPES=\"$DTYPES\" BATCH=$BATCH bench/run_ddp_bench.sh $(basename "$build")"
report ddp <<'EOF2'
import json, sys
from bench_report import start, write_report
rows, events, out, cmd, cpu, kernel = start()
runs = [r for r in rows if "impl" in r]
side = lambda r: "clipcap" if r["impl"].startswith("cpp") else "python"
get = lambda s, dt, n: next((r for r in runs if side(r) == s and r["dtype"] == dt and r["ranks"] == n), None)
r0 = runs[0] if runs else {}
L = [f"Global batch {r0.get('batch', '?')}, the small configuration's training step (upstream freeze policy); median of "
     f"{r0.get('steps', '?')} timed steps after {r0.get('warmup', '?')} warm-up steps; samples/s = global batch / median step.", "",
     "| dtype | ranks x threads | clipcap ms/step | clipcap samples/s | PyTorch DDP ms/step | PyTorch DDP samples/s "
     "| **clipcap / DDP** | clipcap all-reduce ms (share) | MB all-reduced per step | mean loss (clipcap / DDP) |",
     "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
mean = lambda r: f"{sum(r['losses']) / len(r['losses']):.3f}" if r else "-"
for dt in ("f32", "bf16"):
    for n in sorted({r["ranks"] for r in runs}):
        c, p = get("clipcap", dt, n), get("python", dt, n)
        if not c and not p:
            continue
        ms = lambda r: f"{r['median_s'] * 1e3:,.0f}" if r else "-"
        sps = lambda r: f"{r['samples_per_s']:.2f}" if r else "-"
        red = (f"{c['phases_median_s']['allreduce'] * 1e3:,.0f} ({c['phases_median_s']['allreduce'] / c['median_s']:.0%})"
               if c and n > 1 else "-")
        mb = f"{c['allreduce_bytes_per_step'] / 1e6:,.0f}" if c and n > 1 else "-"
        ratio = f"**{p['median_s'] / c['median_s']:.2f}x**" if c and p else "-"
        L.append(f"| {dt} | {n} x {c['threads'] if c else p['threads']} | {ms(c)} | {sps(c)} | {ms(p)} | {sps(p)} | {ratio} | "
                 f"{red} | {mb} | {mean(c)} / {mean(p)} |")
L += ["", "Losses: the global batch's token mean, over all steps (warm-up included). Dropout (0.1, as upstream) draws "
      "other masks on other rank counts, and clipcap and PyTorch start from different random weights, so losses agree "
      "to the noise only; that the arithmetic is the same is what tests/test_distributed_cli.cpp checks (no dropout)."]
write_report(out, L, cmd, cpu, kernel, events, runs=runs)
EOF2
