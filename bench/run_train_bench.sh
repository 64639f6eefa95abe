#!/usr/bin/env bash
# The training benchmark, both sides in one session (bench/README.md):
#
#   bench/run_train_bench.sh [BUILD_DIR]          # default: build
#   THREADS=2 WARMUP=2 STEPS=5 DTYPES="f32 bf16" BATCH=64 bench/run_train_bench.sh build-bench
#
# Writes WARMUP + STEPS caption batches (py_train_baseline.py make-batches: seeded lengths of
# MIN_LEN..MAX_LEN tokens + EOS) that both sides train on, then per dtype runs build/bench/train_bench
# (clipcap's training step), train_bench --step plain (the Python baseline's algorithm on
# clipcap's modules) and bench/py_train_baseline.py (Debian's /usr/bin/python3 with python3-torch),
# one after the other so load changes hit all sides of a ratio alike, each in its own process (so
# each peak RSS is its own). Prints a markdown table and writes it with the raw JSON to
# bench/results/train_<time>.{md,json}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/common.sh"  # py, stamp, load, note, machine, report
bench_binary train_bench "${1:-build}"
THREADS="${THREADS:-2}" WARMUP="${WARMUP:-2}" STEPS="${STEPS:-5}" DTYPES="${DTYPES:-f32 bf16}"
BATCH="${BATCH:-64}" MIN_LEN="${MIN_LEN:-8}" MAX_LEN="${MAX_LEN:-20}" SEED="${SEED:-0}"
WORK="${WORK:-/tmp/clipcap-train-bench}"


# Both libtorch builds use OpenMP (and OpenBLAS's OpenMP variant): pin the pool to the same size.
export OMP_NUM_THREADS="$THREADS"
mkdir -p "$here/results" "$WORK"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
batches="$WORK/batches.json"
"$py" "$here/py_train_baseline.py" make-batches --out "$batches" --count $((WARMUP + STEPS)) --batch "$BATCH" \
  --min-len "$MIN_LEN" --max-len "$MAX_LEN" --seed "$SEED"
common=(--batches "$batches" --threads "$THREADS" --warmup "$WARMUP" --steps "$STEPS" --seed "$SEED")


note start
for dt in $DTYPES; do
  check=()
  [[ "$dt" = f32 ]] && check=(--check)  # caption_loss == the objective written out, before timing
  for step in clipcap plain; do
    echo "== C++ $step step, $dt, load $(load)" >&2
    "$bin" "${common[@]}" --dtype "$dt" --step "$step" --config "$root/configs/small.json" \
      --tokenizer "$root/tests/fixtures/tiny-gpt2" "${check[@]}" >> "$raw"
    check=()
  done
  echo "== python $dt, load $(load)" >&2
  "$py" "$here/py_train_baseline.py" run "${common[@]}" --dtype "$dt" >> "$raw"
done
note end

cmd="THREADS=$THREADS WARMUP=$WARMUP STEPS=$STEPS DTYPES=\"$DTYPES\" BATCH=$BATCH bench/run_train_bench.sh $(basename "$build")"
report train <<'EOF'
import json, sys
from bench_report import start, write_report
rows, events, out, cmd, cpu, kernel = start()
runs = [r for r in rows if "impl" in r]
get = lambda impl, dt: next((r for r in runs if (r["impl"], r["dtype"]) == (impl, dt)), None)
f = lambda r, k, fmt: format(r[k], fmt) if r else "-"
dtypes = [d for d in ("f32", "bf16") if any(r["dtype"] == d for r in runs)]
r0 = runs[0] if runs else {}
L = [f"Training steps of batch {r0.get('batch', '?')}, {r0.get('threads', '?')} threads; median of {r0.get('steps', '?')} "
     f"timed steps after {r0.get('warmup', '?')} warm-up steps; tokens/s = real target tokens / time over the timed "
     f"steps ({f(r0 or None, 'tokens_per_step', '.0f')} per step on average).", "",
     "| dtype | clipcap ms/step | clipcap steps/s | clipcap tokens/s | Python ms/step | Python steps/s | Python tokens/s "
     "| **clipcap speed-up** | plain step in C++ ms/step | plain C++ speed-up |",
     "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
ms = lambda r: f"{r['median_s'] * 1e3:,.0f}" if r else "-"
ratio = lambda base, fast: f"{base['median_s'] / fast['median_s']:.2f}x" if base and fast else "-"
for dt in dtypes:
    c, p, q = get("cpp", dt), get("python", dt), get("cpp-plain", dt)
    L.append(f"| {dt} | {ms(c)} | {f(c, 'steps_per_s', '.3f')} | {f(c, 'tokens_per_s', ',.0f')} | {ms(p)} | "
             f"{f(p, 'steps_per_s', '.3f')} | {f(p, 'tokens_per_s', ',.0f')} | **{ratio(p, c)}** | {ms(q)} | {ratio(p, q)} |")
L += ["", "Where the time goes (median ms per step: forward incl. collate and loss / backward / clip + optimizer step + zero_grad), "
      "peak RSS (getrusage ru_maxrss: the whole process, model included; in brackets: after building the model), first loss:", "",
      "| dtype | clipcap phases | plain C++ phases | Python phases | clipcap peak RSS MB | plain C++ peak RSS MB "
      "| Python peak RSS MB | clipcap first loss | Python first loss |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
ph = lambda r: " / ".join(f"{r['phases_median_s'][k] * 1e3:,.0f}" for k in ("forward", "backward", "optimizer")) if r else "-"
rss = lambda r: f"{r['peak_rss_mb']:,.0f} ({r['model_rss_mb']:,.0f})" if r else "-"
for dt in dtypes:
    c, p, q = get("cpp", dt), get("python", dt), get("cpp-plain", dt)
    L.append(f"| {dt} | {ph(c)} | {ph(q)} | {ph(p)} | {rss(c)} | {rss(q)} | {rss(p)} | {f(c, 'initial_loss', '.3f')} | "
             f"{f(p, 'initial_loss', '.3f')} |")
write_report(out, L, cmd, cpu, kernel, events, runs=runs)
EOF
