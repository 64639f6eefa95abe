#!/usr/bin/env bash
# The video captioning benchmark, both sides in one session (bench/README.md, "Video"):
#
#   bench/run_video_bench.sh [BUILD_DIR]        # default: build
#   THREADS=2 TOKENS=20 N=60 UPSTREAM_FRAMES=60 bench/run_video_bench.sh build-bench
#
# Makes (once) a 10-minute 1280x720 25 fps H.264 video (keyframe every 12 s: x264 puts none at a
# hue change, and its default 10 s would line up with the 10 s steps of -N 60) with a scene change every 17 s in
# .cache/video-bench/ (testsrc2 with its hue turned at each change; not committed), then measures the
# realtime factor (video seconds per wall second) of:
#   clipcap   build/bench/video_bench: VideoCaptioner, -N $N uniform frames (exact seeks, and
#             --seek keyframe), and --scenes; in f32 and each of DTYPES_EXTRA
#   (b)       bench/py_video_baseline.py --algo pipeline: OpenCV seek per frame + batched PyTorch
#   (a)       bench/py_video_baseline.py --algo upstream: upstream's algorithm, model loaded per frame
# and writes a markdown table plus the raw JSON to bench/results/video_<time>.{md,json}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/common.sh"  # py, stamp, load, note, machine, report
bench_binary video_bench "${1:-build}"
THREADS="${THREADS:-2}" TOKENS="${TOKENS:-20}" N="${N:-60}" SCENE_FRAMES="${SCENE_FRAMES:-3}" REPS="${REPS:-1}"
UPSTREAM_FRAMES="${UPSTREAM_FRAMES:-$N}"
# clipcap also in these dtypes (the baselines stay f32: upstream's code has no other); "" for none.
DTYPES_EXTRA="${DTYPES_EXTRA-bf16}"
cache="$root/.cache/video-bench"
video="$cache/bench_720p_600s.mp4"
weights="$cache/py_random_weights.pt"

"$py" -c "import torch, cv2" 2>/dev/null || { echo "run_video_bench.sh: $py needs torch and cv2 (apt-get install python3-torch python3-opencv)" >&2; exit 1; }

mkdir -p "$cache" "$here/results"
if [[ ! -s "$video" ]]; then
  echo "== making $video (10 min, 1280x720, 25 fps, a hue change every 17 s)" >&2
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=s=1280x720:r=25:d=600,hue=h='trunc(t/17)*97'" \
    -c:v libx264 -preset veryfast -g 300 -pix_fmt yuv420p "$video.tmp.mp4"
  mv "$video.tmp.mp4" "$video"
fi
[[ -s "$weights" ]] || "$py" "$here/py_video_baseline.py" --video "$video" --save-weights "$weights"

export OMP_NUM_THREADS="$THREADS"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
common=(--video "$video" --threads "$THREADS" --tokens "$TOKENS" --reps "$REPS")

note start
echo "== clipcap uniform -N $N, load $(load)" >&2
"$bin" "${common[@]}" --mode uniform -N "$N" >> "$raw"
for d in $DTYPES_EXTRA; do
  echo "== clipcap uniform -N $N --dtype $d, load $(load)" >&2
  "$bin" "${common[@]}" --mode uniform -N "$N" --dtype "$d" >> "$raw"
done
for d in f32 $DTYPES_EXTRA; do
  echo "== clipcap uniform -N $N --seek keyframe --dtype $d, load $(load)" >&2
  "$bin" "${common[@]}" --mode uniform -N "$N" --seek keyframe --dtype "$d" >> "$raw"
done
echo "== python (b) uniform -N $N, load $(load)" >&2
"$py" "$here/py_video_baseline.py" "${common[@]}" --algo pipeline --mode uniform -N "$N" >> "$raw"
echo "== clipcap scenes, load $(load)" >&2
"$bin" "${common[@]}" --mode scenes --scene-frames "$SCENE_FRAMES" >> "$raw"
for d in $DTYPES_EXTRA; do
  echo "== clipcap scenes --dtype $d, load $(load)" >&2
  "$bin" "${common[@]}" --mode scenes --scene-frames "$SCENE_FRAMES" --dtype "$d" >> "$raw"
done
echo "== python (b) scenes, load $(load)" >&2
"$py" "$here/py_video_baseline.py" "${common[@]}" --algo pipeline --mode scenes --scene-frames "$SCENE_FRAMES" >> "$raw"
echo "== python (a) upstream -N $N ($UPSTREAM_FRAMES frames timed), load $(load)" >&2
"$py" "$here/py_video_baseline.py" --video "$video" --threads "$THREADS" --tokens "$TOKENS" --algo upstream -N "$N" \
  --weights "$weights" --upstream-frames "$UPSTREAM_FRAMES" >> "$raw"
note end

cmd="DTYPES_EXTRA='$DTYPES_EXTRA' THREADS=$THREADS TOKENS=$TOKENS N=$N SCENE_FRAMES=$SCENE_FRAMES UPSTREAM_FRAMES=$UPSTREAM_FRAMES REPS=$REPS bench/run_video_bench.sh $(basename "$build")"
report video <<'EOF'
import json, sys
from bench_report import start
rows, events, out, cmd, cpu, kernel = start()
runs = [r for r in rows if "impl" in r]
get = lambda impl, algo, mode, dtype="f32", seek="exact": next((r for r in runs if r["impl"] == impl and r.get("algo", "pipeline") == algo
                                     and r["mode"] == mode and r.get("dtype", "f32") == dtype
                                     and r.get("seek", "exact") == seek), None)
extra_dtypes = sorted({r["dtype"] for r in runs if r["impl"] == "clipcap" and r.get("dtype", "f32") != "f32"})
lines = [f"Command: `{cmd}`", f"Machine: {cpu}; load average {events['start']['loadavg']} at the start, "
         f"{events['end']['loadavg']} at the end.", "",
         "Speed-up = the side's wall time / clipcap's; the baselines run f32 (upstream's code has no other dtype).", "",
         "| mode | side | frames captioned | wall s | realtime factor | clipcap f32 speed-up |"
         + "".join(f" clipcap {d} speed-up |" for d in extra_dtypes),
         "|---|---|---:|---:|---:|---:|" + "---:|" * len(extra_dtypes)]
for mode in ("uniform", "scenes"):
    ours = get("clipcap", "pipeline", mode)
    ours_extra = [get("clipcap", "pipeline", mode, d) for d in extra_dtypes]
    sides = [("clipcap", ours)] + [(f"clipcap `--dtype {d}`", r) for d, r in zip(extra_dtypes, ours_extra)] + [
        ("(b) Python pipeline", get("python", "pipeline", mode)), ("(a) upstream algorithm", get("python", "upstream", mode))]
    for label, r in sides:
        if not r:
            continue
        extra = f" ({r['frames_timed']} timed, scaled)" if "frames_timed" in r and r["frames_timed"] < r["frames"] else ""
        baseline = r["impl"] == "python"
        cells = [f"{r['median_s'] / o['median_s']:.1f}x" if baseline and o else "-" for o in [ours] + ours_extra]
        lines.append(f"| {mode} | {label} | {r['frames']}{extra} | {r['median_s']:.1f} | {r['rtf']:.1f}x | " + " | ".join(cells) + " |")
py_b, up = get("python", "pipeline", "uniform"), get("python", "upstream", "uniform")
for d in ["f32"] + extra_dtypes:
    key, exact = get("clipcap", "pipeline", "uniform", d, seek="keyframe"), get("clipcap", "pipeline", "uniform", d)
    if not key:
        continue
    lines += ["", f"`--seek keyframe --dtype {d}` (the nearest keyframe per target, {key['frames_decoded']} frames decoded): "
              f"{key['median_s']:.2f} s, realtime factor {key['rtf']:.1f}x"
              + (f"; {exact['median_s'] / key['median_s']:.2f}x clipcap's exact mode in {d} ({exact['frames_decoded']} frames decoded)" if exact else "")
              + (f", {py_b['median_s'] / key['median_s']:.1f}x the Python pipeline" if py_b else "")
              + (f", {up['median_s'] / key['median_s']:.1f}x upstream's algorithm" if up else "") + "."]
    timings = key.get("timings_s")
    if timings:
        lines.append(f"  Where its last run's time went (s): CLIP {timings['model_clip']:.2f}, captions {timings['model_captions']:.2f}, "
                     f"reader decoding {timings['reader_decode']:.2f} and preparing frames {timings['reader_frames']:.2f}, wall {timings['wall']:.2f}.")
text = "\n".join(lines) + "\n"
print(text)
open(out + ".md", "w").write(text)
json.dump(rows, open(out + ".json", "w"), indent=1)
EOF
