#!/usr/bin/env bash
# The whole of clipcap on a fresh Debian 12 machine, in one command (the first time, packages and
# the build take most of it: README.md, "The demo", has the times; a rerun reuses everything): install,
# build, fetch the emoji data, evaluate the embedded default model on the held-out split, caption a
# video of held-out emoji into subtitles, check them.
#
#   scripts/demo.sh
#
#   1. scripts/setup.sh with the four executables only (skipped with CLIPCAP_SKIP_SETUP=1)
#   2. scripts/fetch_emoji_data.sh: the npm emoji packages -> .cache/emoji/dataset
#   3. the default model: models/emoji-tiny (captioner) + models/emoji-clip (its CLIP, with the text
#      tower for CLIPScore), committed; scripts/train_emoji_default.sh remakes them when missing
#   4. clipcap-data build: the dataset embedded with that CLIP              -> demo-out/data
#   5. clipcap-eval on the held-out test split (twitter art, never trained on)
#                                                        -> demo-out/eval/{report.html,metrics.json}
#   6. a video of 48 held-out emoji, 1.52 s each, made with the ffmpeg CLI  -> demo-out/video/emoji_demo.mp4
#   7. clipcap-infer video --scenes -> demo-out/video/emoji_demo_caption.{srt,vtt,json}, then the
#      check: SRT parsed by ffmpeg, cue boundaries within one frame of the known changes, and the
#      share of segments captioned with one of the shown emoji's references
#   8. the summary: where every output is, the headline metrics (also demo-out/summary.json)
#
# A rerun reuses every finished output (each step's last-written file marks it finished); outputs
# made with another model are redone. Any failing step stops the demo with its name, exit 1.
# Environment: CLIPCAP_BUILD_DIR (default build), CLIPCAP_SKIP_SETUP=1, CLIPCAP_DEMO_OUT (default
# demo-out), CLIPCAP_THREADS (default 1).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
t_start=$SECONDS

bin="${CLIPCAP_BUILD_DIR:-build}"
out="${CLIPCAP_DEMO_OUT:-demo-out}"
model=models/emoji-tiny
clip=models/emoji-clip
emoji=.cache/emoji/dataset
python=/usr/bin/python3
# One thread: the default model is so small that a second one saves a few seconds on an idle
# machine, while on a busy one (say, a build next to it) two threads waiting on each other made
# the evaluation 10-20x slower in our measurements.
threads=(--threads "${CLIPCAP_THREADS:-1}")
# Beam search of 3 whose 8 best candidates the model's own CLIP reranks (model/clip_reranker.h):
# the weight 0.3 was chosen on the val split; models/README.md has the held-out figures of each
# setting and of plain beam search.
decoding=(--beam 3 --rerank clip --rerank-candidates 8 --rerank-weight 0.3 --rerank-clip "$clip")

current=""
step() { current="$1"; echo; echo "== demo [$((SECONDS - t_start)) s]: $1" >&2; }
trap 'rc=$?; [ $rc -ne 0 ] && echo "demo: FAILED at step: ${current:-start} (exit $rc)" >&2' EXIT
die() { echo "demo: $*" >&2; exit 1; }
have_all() { for f in "$@"; do [ -s "$f" ] || return 1; done; }
reuse() { echo "demo: $1: reusing $2" >&2; }

# ---- 1. packages and the executables ----------------------------------------------------------------
if [ "${CLIPCAP_SKIP_SETUP:-0}" != 1 ]; then
  step "1/8 setup (packages, build of the four executables into $bin)"
  CLIPCAP_BUILD_DIR="$bin" scripts/setup.sh clipcap-data clipcap-train clipcap-eval clipcap-infer
fi
for tool in clipcap-data clipcap-train clipcap-eval clipcap-infer; do
  [ -x "$bin/$tool" ] || die "$bin/$tool is missing (run scripts/setup.sh, or set CLIPCAP_BUILD_DIR)"
done

# ---- 2. the emoji data ---------------------------------------------------------------------------
if ! have_all "$emoji/dataset_emoji.json"; then
  step "2/8 emoji data (npm)"
  scripts/fetch_emoji_data.sh
else
  reuse "2/8 emoji data" "$emoji"
fi

# ---- 3. the model ----------------------------------------------------------------------------------
model_files=("$model"/{config.json,model.safetensors,preprocessor_config.json,tokenizer.model}
             "$clip"/{config.json,model.safetensors,preprocessor_config.json,vocab.json,merges.txt})
if ! have_all "${model_files[@]}"; then
  step "3/8 training the default model (scripts/train_emoji_default.sh; no complete $model + $clip)"
  CLIPCAP_BUILD_DIR="$bin" scripts/train_emoji_default.sh
  have_all "${model_files[@]}" || die "scripts/train_emoji_default.sh left an incomplete $model or $clip"
else
  reuse "3/8 default model" "$model + $clip"
fi
# Outputs of another model (retrained, or changed by git) are stale: start them over.
mkdir -p "$out"
stamp="$( (cat "$model/model.safetensors" "$model/config.json" "$clip/model.safetensors"; echo "${decoding[*]}") | sha256sum | cut -c1-16)"
if [ "$(cat "$out/model.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$out/data" "$out/data.partial" "$out/eval" "$out/video" "$out/summary.json"
  echo "$stamp" > "$out/model.stamp"
fi

# ---- 4. the dataset embedded with the model's CLIP -------------------------------------------------
# The kind of embedding the captioner reads (pooler_output or image_embeds) is in its config.json.
kind="$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["prefix_input"])' "$model/config.json")" \
  || die "$model/config.json: no prefix_input"
if ! have_all "$out/data/meta.json"; then
  step "4/8 embedding the emoji dataset with $clip ($kind)"
  "$bin/clipcap-data" build --format karpathy --captions "$emoji/dataset_emoji.json" --images "$emoji/images" \
    --clip "$clip" --embedding "$kind" --out "$out/data" --restart "${threads[@]}"
else
  reuse "4/8 embedded dataset" "$out/data"
fi

# ---- 5. evaluation on the held-out split -------------------------------------------------------------
if ! have_all "$out/eval/metrics.json" "$out/eval/exact_match.json"; then
  step "5/8 evaluating $model on the held-out test split (twitter art)"
  rm -rf "$out/eval"
  "$bin/clipcap-eval" --model "$model" --data "$out/data" --split test --out "$out/eval" --clip "$clip" \
    --run "$model/training" "${decoding[@]}" "${threads[@]}"
  "$python" scripts/caption_match.py "$out/eval/predictions.jsonl" --out "$out/eval/exact_match.json"
else
  reuse "5/8 evaluation" "$out/eval"
fi

# ---- 6. the demo video ----------------------------------------------------------------------------------
video="$out/video/emoji_demo.mp4"
if ! have_all "$out/video/segments.json" "$video"; then
  step "6/8 demo video of held-out emoji (ffmpeg)"
  rm -rf "$out/video"
  "$python" scripts/demo_video.py make --dataset "$emoji/dataset_emoji.json" --images "$emoji/images" \
    --out "$out/video" --count 48 --seconds 1.5 --size 256 --fps 25
else
  reuse "6/8 demo video" "$video"
fi

# ---- 7. captioning it into subtitles, and the check ---------------------------------------------------
subs=("$out/video/emoji_demo_caption."{srt,vtt,json})
if ! have_all "${subs[@]}" "$out/video/check.json" || ! grep -q '"boundaries_ok": true' "$out/video/check.json"; then
  step "7/8 captioning the video (clipcap-infer video --scenes)"
  # Static emoji on white differ less than film shots: a lower threshold than film's 27 still
  # leaves every within-segment difference (H.264 noise) far below it.
  "$bin/clipcap-infer" video -m "$model" "$video" --scenes --scene-threshold 8 --out-dir "$out/video" \
    --video-caption "${decoding[@]}" "${threads[@]}"
  cues=$(ffprobe -v error -show_entries packet=pts_time -of csv=p=0 "${subs[0]}" | grep -c .) \
    || die "ffmpeg cannot parse ${subs[0]}"
  echo "demo: ffmpeg reads $cues cues from ${subs[0]}" >&2
  "$python" scripts/demo_video.py check --segments "$out/video/segments.json" --srt "${subs[0]}" \
    --out "$out/video/check.json"
else
  reuse "7/8 subtitles and their check" "$out/video"
fi

# ---- 8. summary ------------------------------------------------------------------------------------
step "8/8 summary"
"$python" - "$out" "$model" "$clip" "$((SECONDS - t_start))" "${decoding[*]}" <<'EOF'
import json, os, sys
out, model, clip, seconds, decoding = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
m = json.load(open(os.path.join(out, "eval", "metrics.json")))
metrics, counts = m["metrics"], m["counts"]
em = json.load(open(os.path.join(out, "eval", "exact_match.json")))
chk = json.load(open(os.path.join(out, "video", "check.json")))
seg_s = json.load(open(os.path.join(out, "video", "segments.json")))["seconds_per_segment"]
summary = {
    "seconds": seconds, "model": model, "clip": clip, "decoding": decoding,
    "held_out": {"split": "test", "images": em["images"], "bleu4": metrics["BLEU-4"], "cider_d": metrics["CIDEr-D"],
                 "exact_match": em["share"], "exact_matches": em["matches"],
                 "clip_score": metrics.get("CLIPScore"), "ref_clip_score": metrics.get("RefCLIPScore")},
    "demo_video": {"segments": chk["segments"], "matches": chk["matches"], "match_share": chk["match_share"],
                   "boundaries_ok": chk["boundaries_ok"]},
    "outputs": {"report": f"{out}/eval/report.html", "metrics": f"{out}/eval/metrics.json",
                "predictions": f"{out}/eval/predictions.jsonl", "video": f"{out}/video/emoji_demo.mp4",
                "subtitles": [f"{out}/video/emoji_demo_caption.{e}" for e in ("srt", "vtt", "json")],
                "video_check": f"{out}/video/check.json"},
}
tmp = os.path.join(out, "summary.json.tmp")
with open(tmp, "w") as f:
    json.dump(summary, f, indent=1)
os.replace(tmp, os.path.join(out, "summary.json"))
h, v = summary["held_out"], summary["demo_video"]
if not v["boundaries_ok"]:
    sys.exit(f"demo: {out}/video/check.json: the subtitles' cue boundaries are off the known segment changes")
print(f"""
clipcap demo: done in {seconds} s
  model        {model} (captioner), {clip} (its CLIP)
  decoding     {decoding}
  held-out     {h['images']} test images (twitter art style, unseen in training)
               BLEU-4 {h['bleu4']:.3f} | CIDEr-D {h['cider_d']:.3f} | exact match {100 * h['exact_match']:.1f}% ({h['exact_matches']}/{h['images']})""" +
      (f" | CLIPScore {h['clip_score']:.3f}" if h["clip_score"] is not None else "") + f"""
  demo video   {v['segments']} held-out emoji, {seg_s:g} s each: {v['matches']}/{v['segments']} captions match a reference ({100 * v['match_share']:.0f}%); cue boundaries within one frame of the changes: {'yes' if v['boundaries_ok'] else 'NO'}
  outputs
    report       {out}/eval/report.html
    metrics      {out}/eval/metrics.json, {out}/eval/predictions.jsonl, {out}/eval/exact_match.json
    video        {out}/video/emoji_demo.mp4 (segments: {out}/video/segments.json)
    subtitles    {out}/video/emoji_demo_caption.srt, .vtt, .json (check: {out}/video/check.json)
    summary      {out}/summary.json""")
EOF
current=""
