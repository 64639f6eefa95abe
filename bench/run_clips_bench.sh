#!/usr/bin/env bash
# Dataset-scale video captioning: a batch of short clips, in clips/s, all sides in one session
# (bench/README.md, "Short clips"):
#
#   bench/run_clips_bench.sh [BUILD_DIR]           # default: build
#   CLIPS=200 N=4 THREADS=2 TOKENS=20 UPSTREAM_CLIPS=3 bench/run_clips_bench.sh build
#   MODEL=models/emoji-tiny bench/run_clips_bench.sh build     # a small real captioner (clipcap sides only)
#
# Makes (once) CLIPS clips in .cache/video-bench/clips/: 2-10 s, 640x360, 25 fps, H.264 (mp4),
# VP9 (webm) and MPEG-4 Part 2 (avi) in turn. Then, -N $N frames per clip, EOS banned until TOKENS:
#   clipcap   build/bench/video_bench --videos: one worker and exact seeks (the batch as it was),
#             the worker pool (--video-workers 0: from the cores), the pool with --seek keyframe
#   (b)       bench/py_video_baseline.py --videos --algo pipeline: the Python pipeline, clip by clip
#   (a)       bench/py_video_baseline.py --videos --algo upstream: upstream's algorithm on the first
#             UPSTREAM_CLIPS clips, scaled to all
# Writes bench/results/clips_<time>.{md,json}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/common.sh"  # py, stamp, load, note, machine, report
bench_binary video_bench "${1:-build}"
CLIPS="${CLIPS:-200}" N="${N:-4}" THREADS="${THREADS:-2}" TOKENS="${TOKENS:-20}" UPSTREAM_CLIPS="${UPSTREAM_CLIPS:-3}"
MODEL="${MODEL:-}"
cache="$root/.cache/video-bench"
clips="$cache/clips"
weights="$cache/py_random_weights.pt"
mkdir -p "$clips" "$here/results"
list="$clips/list_$CLIPS.txt"
if [[ ! -s "$list" ]]; then
  echo "== making $CLIPS clips in $clips" >&2
  : > "$list.tmp"
  for i in $(seq 0 $((CLIPS - 1))); do
    d=$((2 + i % 9))
    src="testsrc2=s=640x360:r=25:d=$d,hue=h=$((i * 37 % 360))"
    case $((i % 3)) in
      0) f="$clips/clip_$i.mp4"; args=(-c:v libx264 -preset veryfast -pix_fmt yuv420p) ;;
      1) f="$clips/clip_$i.webm"; args=(-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 1M) ;;
      2) f="$clips/clip_$i.avi"; args=(-c:v mpeg4 -q:v 5) ;;
    esac
    [[ -s "$f" ]] || ffmpeg -nostdin -v error -y -f lavfi -i "$src" "${args[@]}" "$f"
    echo "$f" >> "$list.tmp"
  done
  mv "$list.tmp" "$list"
fi

export OMP_NUM_THREADS="$THREADS"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
common=(--videos "$list" -N "$N" --threads "$THREADS" --tokens "$TOKENS")
[[ -n "$MODEL" ]] && common+=(--model "$MODEL")

note start
echo "== clipcap, one video at a time, exact, load $(load)" >&2
"$bin" "${common[@]}" --video-workers 1 >> "$raw"
echo "== clipcap, worker pool, exact, load $(load)" >&2
"$bin" "${common[@]}" --video-workers 0 >> "$raw"
echo "== clipcap, worker pool, keyframe, load $(load)" >&2
"$bin" "${common[@]}" --video-workers 0 --seek keyframe >> "$raw"
if [[ -z "$MODEL" ]]; then
  [[ -s "$weights" ]] || "$py" "$here/py_video_baseline.py" --video "$(head -1 "$list")" --save-weights "$weights"
  echo "== python (b) pipeline, load $(load)" >&2
  "$py" "$here/py_video_baseline.py" --videos "$list" -N "$N" --threads "$THREADS" --tokens "$TOKENS" --algo pipeline >> "$raw"
  echo "== python (a) upstream on $UPSTREAM_CLIPS clips, load $(load)" >&2
  "$py" "$here/py_video_baseline.py" --videos "$list" -N "$N" --threads "$THREADS" --tokens "$TOKENS" --algo upstream \
    --weights "$weights" --upstream-clips "$UPSTREAM_CLIPS" >> "$raw"
fi
note end

cmd="CLIPS=$CLIPS N=$N THREADS=$THREADS TOKENS=$TOKENS UPSTREAM_CLIPS=$UPSTREAM_CLIPS${MODEL:+ MODEL=$MODEL} bench/run_clips_bench.sh $(basename "$build")"
report clips <<'EOF2'
from bench_report import start, write_report
rows, events, out, cmd, cpu, kernel = start()
runs = [r for r in rows if r.get("batch")]
def label(r):
    if r["impl"] == "python":
        return "(a) upstream algorithm" + (f" ({r['clips_timed']} clips timed, scaled)" if "clips_timed" in r else "") \
            if r["algo"] == "upstream" else "(b) Python pipeline"
    pool = "one video at a time" if r["video_workers"] == 1 else f"{r['effective_workers']} videos at once"
    return f"clipcap, {pool}, --seek {r['seek']}"
base = next((r for r in runs if r["impl"] == "clipcap" and r["video_workers"] == 1), None)
model = base["model"] if base else "?"
L = [f"{runs[0]['clips'] if runs else '?'} clips (2-10 s, 640x360, H.264 / VP9 / MPEG-4), -N {base['num_frames'] if base else '?'} "
     f"frames each, {base['tokens'] if base else '?'} tokens a caption, model: {model}.", "",
     "| side | seconds | clips/s | vs clipcap one at a time |", "|---|---:|---:|---:|"]
for r in runs:
    ratio = r["clips_per_s"] / base["clips_per_s"] if base else float("nan")
    L.append(f"| {label(r)} | {r['median_s']:.1f} | {r['clips_per_s']:.2f} | {ratio:.2f}x |")
write_report(out, L, cmd, cpu, kernel, events, runs=runs)
EOF2
