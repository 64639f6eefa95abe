#!/usr/bin/env bash
# The captioning benchmark, both sides in one session (bench/README.md):
#
#   bench/run_caption_bench.sh [BUILD_DIR]        # default: build
#   THREADS=2 REPS=5 UPSTREAM_REPS=3 TOKENS=20 bench/run_caption_bench.sh build-bench
#
# clipcap also runs INT8_RUNS (int8 weights: Python has no counterpart; compared with clipcap's bf16)
# and first measures the machine's bounds (--probes: read bandwidth, f32/bf16 GEMM peaks), against
# which the report states each decoding phase's share.
#
# Runs build/bench/caption_bench (clipcap, C++) and bench/py_caption_baseline.py (Debian's
# /usr/bin/python3 with python3-torch) on the same shapes, thread count and token count, pair by
# pair (C++ then Python for each algorithm, so load changes hit both sides of a ratio alike), then
# prints a markdown table and writes it with the raw JSON to bench/results/caption_<time>.{md,json}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/common.sh"  # py, stamp, load, note, machine, report
bench_binary caption_bench "${1:-build}"
THREADS="${THREADS:-2}" REPS="${REPS:-5}" UPSTREAM_REPS="${UPSTREAM_REPS:-3}" TOKENS="${TOKENS:-20}" WARMUP="${WARMUP:-1}"
CACHED_RUNS="${CACHED_RUNS:-cached:f32:1,cached:f32:16,cached:bf16:1,cached:bf16:16}"
UPSTREAM_RUNS="${UPSTREAM_RUNS:-upstream:f32:16}"
INT8_RUNS="${INT8_RUNS:-cached:int8:1,cached:int8:16}"


# Both libtorch builds use OpenMP (and OpenBLAS's OpenMP variant): pin the pool to the same size.
export OMP_NUM_THREADS="$THREADS"
mkdir -p "$here/results"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
common=(--threads "$THREADS" --tokens "$TOKENS" --warmup "$WARMUP")


note start
echo "== clipcap cached ($CACHED_RUNS,$INT8_RUNS) after the hardware probes, load $(load)" >&2
"$bin" "${common[@]}" --probes --reps "$REPS" --runs "$CACHED_RUNS,$INT8_RUNS" >> "$raw"
echo "== python (a) cached, load $(load)" >&2
"$py" "$here/py_caption_baseline.py" "${common[@]}" --reps "$REPS" --runs "$CACHED_RUNS" >> "$raw"
echo "== clipcap upstream algorithm ($UPSTREAM_RUNS), load $(load)" >&2
"$bin" "${common[@]}" --reps "$UPSTREAM_REPS" --runs "$UPSTREAM_RUNS" >> "$raw"
echo "== python (b) upstream algorithm, load $(load)" >&2
"$py" "$here/py_caption_baseline.py" "${common[@]}" --reps "$UPSTREAM_REPS" --runs "$UPSTREAM_RUNS" >> "$raw"
note end

cmd="INT8_RUNS=$INT8_RUNS THREADS=$THREADS REPS=$REPS UPSTREAM_REPS=$UPSTREAM_REPS TOKENS=$TOKENS WARMUP=$WARMUP bench/run_caption_bench.sh $(basename "$build")"
report caption <<'EOF'
import json, sys
from bench_report import start, write_report
rows, events, out, cmd, cpu, kernel = start()
runs = [r for r in rows if "algo" in r]
hw = next((r for r in rows if r.get("probe") == "hardware"), None)
get = lambda impl, algo, dt, b: next((r for r in runs if (r["impl"], r["algo"], r["dtype"], r["batch"]) == (impl, algo, dt, b)), None)
ms = lambda r: f"{r['median_s'] * 1e3:,.0f}" if r else "-"
ips = lambda r: f"{r['images_per_s']:.2f}" if r else "-"
ratio = lambda base, fast: f"{base['median_s'] / fast['median_s']:.2f}x" if base and fast else "-"

tok = runs[0]["tokens"] if runs else "?"
L = [f"Captioning {tok} tokens per image, {runs[0]['threads'] if runs else '?'} threads; median of "
     f"{', '.join(sorted({str(r['reps']) for r in runs}))} timed runs after a warm-up.", "",
     "| configuration | clipcap C++ ms/batch | clipcap img/s | Python (a) ms/batch | Python (a) img/s | clipcap speed-up vs (a) |",
     "|---|---:|---:|---:|---:|---:|"]
for dt in ("f32", "bf16"):
    for b in sorted({r["batch"] for r in runs if r["algo"] == "cached"}):
        c, p = get("cpp", "cached", dt, b), get("python", "cached", dt, b)
        if c or p:
            L.append(f"| {dt} batch {b} | {ms(c)} | {ips(c)} | {ms(p)} | {ips(p)} | {ratio(p, c)} |")
L += ["", "Where the time goes in the cached runs (median ms per batch: CLIP vision / mapping / GPT-2 decoding):", "",
      "| configuration | clipcap C++ | Python (a) |", "|---|---:|---:|"]
ph = lambda r: " / ".join(f"{r['phases_median_s'][k] * 1e3:,.0f}" for k in ("clip", "mapping", "decode")) if r and "phases_median_s" in r else "-"
for dt in ("f32", "bf16"):
    for b in sorted({r["batch"] for r in runs if r["algo"] == "cached"}):
        c, p = get("cpp", "cached", dt, b), get("python", "cached", dt, b)
        if c or p:
            L.append(f"| {dt} batch {b} | {ph(c)} | {ph(p)} |")
ub = max([r["batch"] for r in runs if r["algo"] == "upstream"] or [16])
pu, cu = get("python", "upstream", "f32", ub), get("cpp", "upstream", "f32", ub)
L += ["", f"Upstream's algorithm (b) on {ub} images (one at a time, no KV cache, f32):", "",
      f"| (b) run by | ms for {ub} images | img/s | clipcap f32 batch {ub} speed-up | clipcap bf16 batch {ub} speed-up |",
      "|---|---:|---:|---:|---:|"]
for name, u in (("Python (upstream's code path)", pu), ("C++ (same algorithm on clipcap modules)", cu)):
    L.append(f"| {name} | {ms(u)} | {ips(u)} | {ratio(u, get('cpp', 'cached', 'f32', ub))} | "
             f"{ratio(u, get('cpp', 'cached', 'bf16', ub))} |")
int8 = [r for r in runs if r["dtype"] == "int8"]
if int8:
    L += ["", "int8 weights (clipcap only; f32 activations), against clipcap's bf16:", "",
          "| configuration | ms/batch | img/s | CLIP / mapping / decoding ms | speed-up vs clipcap bf16 |", "|---|---:|---:|---:|---:|"]
    for r in sorted(int8, key=lambda r: r["batch"]):
        L.append(f"| int8 batch {r['batch']} | {ms(r)} | {ips(r)} | {ph(r)} | {ratio(get('cpp', 'cached', 'bf16', r['batch']), r)} |")
if hw:
    # Batch 1 streams every weight once per token: bound = bandwidth / weight bytes. Batch 16 does
    # 16x the arithmetic on the same bytes: bound = the GEMM peak of the dtype it computes in
    # (int8 weights are multiplied in f32).
    L += ["", f"Hardware bounds measured in the same process: read bandwidth {hw['read_gb_per_s']:.1f} GB/s, "
          f"GEMM peak f32 {hw['gemm_f32_gflop_per_s']:.0f} GFLOP/s, bf16 {hw['gemm_bf16_gflop_per_s']:.0f} GFLOP/s "
          "(2048^3 product through the model's own oneDNN path). GPT-2 decoding against them "
          f"({tok} weight passes per image):", "",
          "| configuration | weight MB per pass | decoding GB/s | share of bandwidth | decoding GFLOP/s | share of GEMM peak |",
          "|---|---:|---:|---:|---:|---:|"]
    for dt in ("f32", "bf16", "int8"):
        for b in sorted({r["batch"] for r in runs if r["algo"] == "cached"}):
            c = get("cpp", "cached", dt, b)
            if not c or "decode_step" not in c:
                continue
            s, d = c["phases_median_s"]["decode"], c["decode_step"]
            gbs, gfs = d["weight_bytes"] * c["tokens"] / s / 1e9, d["flop_per_row"] * b * c["tokens"] / s / 1e9
            peak = hw["gemm_bf16_gflop_per_s"] if dt == "bf16" else hw["gemm_f32_gflop_per_s"]
            L.append(f"| {dt} batch {b} | {d['weight_bytes'] / 1e6:,.0f} | {gbs:.1f} | {100 * gbs / hw['read_gb_per_s']:.0f} % | "
                     f"{gfs:.0f} | {100 * gfs / peak:.0f} % |")
write_report(out, L, cmd, cpu, kernel, events, runs=runs, hardware=hw)
EOF
