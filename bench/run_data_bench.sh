#!/usr/bin/env bash
# The dataset-build benchmark, both sides in one session (bench/README.md):
#
#   bench/run_data_bench.sh [BUILD_DIR]                  # default: build
#   THREADS=2 REPS=3 BATCH=32 COUNT=200 DTYPES="f32 bf16" WORK=/tmp/clipcap-data-bench bench/run_data_bench.sh build
#
# Once (kept in WORK for later runs): COUNT varied 640x480 JPEGs + results.csv
# (py_data_baseline.py make-images) and a random-weight ViT-B/32 CLIP directory
# (data_bench make-clip). Then per dtype, side by side so load changes hit both alike:
# clipcap's real build path (data_bench run: build_embedding_dataset, as `clipcap-data build`),
# the plain Python loop, Python with a decode thread pool of THREADS, and the plain loop with
# clipcap's allocator settings. The f32 Python run also
# checks its embeddings against clipcap's. Then both sides time decode + preprocessing and the
# CLIP forward alone (phases), to show where the time goes. Prints a markdown table and writes it with the raw JSON
# to bench/results/data_<time>.{md,json}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/common.sh"  # py, stamp, load, note, machine, report
bench_binary data_bench "${1:-build}"
THREADS="${THREADS:-$(nproc)}" REPS="${REPS:-3}" BATCH="${BATCH:-32}" COUNT="${COUNT:-200}"
DTYPES="${DTYPES:-f32 bf16}" WORK="${WORK:-/tmp/clipcap-data-bench}"

"$py" -c "import torch, PIL" 2>/dev/null || { echo "run_data_bench.sh: $py lacks torch or PIL (apt-get install python3-torch python3-pil)" >&2; exit 1; }

images="$WORK/jpegs_$COUNT" clip="$WORK/clip-vit-b32-random"
[[ -f "$images/results.csv" ]] || "$py" "$here/py_data_baseline.py" make-images --out "$images" --count "$COUNT"
[[ -f "$clip/model.safetensors" ]] || "$bin" make-clip --out "$clip"

# Both libtorch builds use OpenMP: pin the pool to the same size on both sides.
export OMP_NUM_THREADS="$THREADS"
mkdir -p "$here/results"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
pyrun=("$py" "$here/py_data_baseline.py" run --clip "$clip" --captions "$images/results.csv" --images "$images"
       --out "$WORK/py-out" --threads "$THREADS" --batch-size "$BATCH" --reps "$REPS")

note start
for dt in $DTYPES; do
  echo "== clipcap $dt, load $(load)" >&2
  "$bin" run --clip "$clip" --captions "$images/results.csv" --images "$images" --work "$WORK/cpp-out" \
    --dtype "$dt" --threads "$THREADS" --batch-size "$BATCH" --reps "$REPS" >> "$raw"
  check=()
  [[ "$dt" = f32 ]] && check=(--check "$WORK/cpp-out/f32")
  echo "== python $dt, load $(load)" >&2
  "${pyrun[@]}" --dtype "$dt" "${check[@]}" >> "$raw"
  echo "== python $dt with $THREADS decode threads, load $(load)" >&2
  "${pyrun[@]}" --dtype "$dt" --decode-threads "$THREADS" >> "$raw"
  # The allocator settings clipcap makes for itself (common/allocator.h), given to Python through
  # glibc's environment: how much of the difference they are.
  echo "== python $dt with clipcap's malloc settings, load $(load)" >&2
  MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 "${pyrun[@]}" --dtype "$dt" >> "$raw"
  echo "== phases $dt (decode alone, forward alone), load $(load)" >&2
  phase=(--clip "$clip" --captions "$images/results.csv" --images "$images" --dtype "$dt" --threads "$THREADS"
         --batch-size "$BATCH" --reps 5)
  "$bin" phases "${phase[@]}" >> "$raw"
  "$py" "$here/py_data_baseline.py" phases "${phase[@]}" >> "$raw"
done
note end

cmd="THREADS=$THREADS REPS=$REPS BATCH=$BATCH COUNT=$COUNT DTYPES=\"$DTYPES\" bench/run_data_bench.sh $(basename "$build")"
report data <<'EOF'
import json, statistics, sys
from bench_report import start, write_report
rows, events, out, cmd, cpu, kernel = start()
runs = [r for r in rows if "impl" in r and not r.get("phases")]
phases = [r for r in rows if r.get("phases")]
def med(match, dt):
    rs = [r for r in runs if match(r["impl"]) and r["dtype"] == dt]
    return statistics.median(r["images_per_s"] for r in rs) if rs else None
f = lambda x: f"{x:.1f}" if x else "-"
ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
first = runs[0] if runs else {}
L = [f"Building an embedding dataset from {first.get('images', '?')} 640x480 JPEGs with a ViT-B/32-shaped CLIP "
     f"(random weights), batch {first.get('batch', '?')}, {first.get('threads', '?')} threads; images/s = "
     f"images / (wall - model load), median of {sum(1 for r in runs if r['impl'] == 'clipcap' and r['dtype'] == first.get('dtype'))} builds.", "",
     "| dtype | clipcap (clipcap-data build path) | Python loop | clipcap / Python | Python + decode thread pool | clipcap / that | Python loop + clipcap's malloc settings | clipcap / that |",
     "|---|---:|---:|---:|---:|---:|---:|---:|"]
for dt in dict.fromkeys(r["dtype"] for r in runs):
    c = med(lambda i: i == "clipcap", dt)
    p = med(lambda i: i == "python", dt)
    pt = med(lambda i: i.endswith("-decode-threads"), dt)
    pm = med(lambda i: i == "python-malloc-tuned", dt)
    L.append(f"| {dt} | {f(c)} | {f(p)} | {ratio(c, p)} | {f(pt)} | {ratio(c, pt)} | {f(pm)} | {ratio(c, pm)} |")
chk = [r for r in runs if "check_max_abs_diff" in r]
if chk:
    L += ["", f"Same work check (f32): max |clipcap - Python| embedding difference {chk[0]['check_max_abs_diff']:.2e} "
          f"(embeddings up to {chk[0]['check_max_abs']:.2f})."]
if phases:
    L += ["", "Where the time goes: each kind of work alone (ms per image; decode = file read + decode + CLIP "
          "preprocessing on one thread, forward = batched CLIP vision forward on all threads, median of 5). "
          "With the same forward cost, overlapping decode with the forward (clipcap's pipeline) can at most "
          "save the decode share of the Python loop's time: bound = (decode + forward) / forward.", "",
          "| dtype | clipcap decode | Python decode | clipcap forward | Python forward | decode share of the Python loop | bound on clipcap / Python |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    ph = lambda impl, dt: next((r for r in phases if r["impl"] == impl and r["dtype"] == dt), None)
    for dt in dict.fromkeys(r["dtype"] for r in phases):
        c, p = ph("clipcap", dt), ph("python", dt)
        if c and p:
            pd, pf = p["decode_ms_per_image_1_thread"], p["forward_ms_per_image"]
            L.append(f"| {dt} | {c['decode_ms_per_image_1_thread']:.1f} | {pd:.1f} | {c['forward_ms_per_image']:.1f} | "
                     f"{pf:.1f} | {100 * pd / (pd + pf):.0f}% | {(pd + pf) / pf:.2f}x |")
write_report(out, L, cmd, cpu, kernel, events, runs=runs, phases=phases)
EOF
