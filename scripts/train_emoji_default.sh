#!/usr/bin/env bash
# Reproduces the embedded default model (models/emoji-tiny + models/emoji-clip) with clipcap's own
# tools, from the npm emoji data. The committed models took 30 minutes on this 2-core machine with
# CLIPCAP_THREADS=2 (CLIP ~23 min, embedding ~1 min, captioner ~6 min: their training.json and
# training/metrics.jsonl record it; scripts/emoji_ablation.sh E4-clip144-aug-noise03, models/README.md).
#
#   scripts/train_emoji_default.sh [--work DIR] [--models DIR] [--clip-args "..."] [--train-args "..."]
#                                  [--embedding pooler_output|image_embeds]
#
# --clip-args / --train-args: more flags for step 1 (clipcap-train clip, e.g. "--epochs 72") and
# step 3 (clipcap-train, e.g. "--set epochs=48"); the ablation runs of models/README.md use
# them (scripts/emoji_ablation.sh), each into its own --work and --models.
#
#   1. scripts/fetch_emoji_data.sh (unless .cache/emoji/dataset is there)
#   2. clipcap-train clip  --config configs/clip-emoji-tiny.json   (a tiny CLIP, trained from scratch
#                          on the apple/google/facebook art; the twitter art stays unseen)
#   3. clipcap-data build  --format karpathy --embedding $EMBEDDING (the dataset embedded with it)
#   4. clipcap-train       --config configs/emoji-tiny.json         (mapping + from-scratch decoder)
#   5. WORK/run/best -> MODELS/emoji-tiny, WORK/clip -> MODELS/emoji-clip (each replaced whole)
#
# WORK (default runs/emoji-default) keeps every intermediate; a step whose output is complete there
# is not run again, so a rerun after a failure continues (delete WORK to start over).
# Environment: CLIPCAP_BUILD_DIR (default build), CLIPCAP_THREADS (default: all cores; 1 is faster
# on a machine busy with other work), CLIPCAP_CLIP_DTYPE (bf16 | f32; default below).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

work=runs/emoji-default
EMBEDDING=pooler_output  # the prefix the captioner reads: why, below
models=models
clip_args=()
train_args=()
while (($#)); do
  case "$1" in
    --work) work="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --clip-args) read -r -a clip_args <<< "$2"; shift 2 ;;
    --train-args) read -r -a train_args <<< "$2"; shift 2 ;;
    --embedding) EMBEDDING="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "train_emoji_default: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

# pooler_output: the vision tower's pooler_output (upstream's choice), which the
# captioner L2-normalises (normalize_prefix_input in configs/emoji-tiny.json). On the held-out
# twitter art, nearest-neighbour caption retrieval is as good or better with it than with the
# projected image_embeds (20.6% vs 19.7% exact), and so was the decoder trained on it.

# The CLIP step under bf16 autocast (f32 weights and optimizer) where the CPU computes bf16 natively
# (AVX512-BF16 / AMX): 1.8x faster there; elsewhere f32. The committed CLIP was trained with bf16
# (its training.json says which).
clip_dtype="${CLIPCAP_CLIP_DTYPE:-}"
if [ -z "$clip_dtype" ]; then
  clip_dtype=f32
  grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null && clip_dtype=bf16
fi
# glibc returns every large tensor buffer to the kernel when it is freed and page-faults it back in
# the next step; keeping them (thresholds up) makes training ~25% faster and changes no result.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456}"

bin="${CLIPCAP_BUILD_DIR:-build}"
threads=()
[ -n "${CLIPCAP_THREADS:-}" ] && threads=(--threads "$CLIPCAP_THREADS")
emoji=.cache/emoji/dataset  # relative: training.json and meta.json record these paths

step() { echo; echo "== train_emoji_default: $*" >&2; }
die() { echo "train_emoji_default: FAILED: $*" >&2; exit 1; }
for tool in clipcap-train clipcap-data; do
  [ -x "$bin/$tool" ] || die "$bin/$tool not built (scripts/setup.sh clipcap-data clipcap-train, or set CLIPCAP_BUILD_DIR)"
done
mkdir -p "$work" "$models"
t0=$SECONDS

if [ ! -f "$emoji/dataset_emoji.json" ]; then
  step "fetching the emoji data"
  scripts/fetch_emoji_data.sh || die "scripts/fetch_emoji_data.sh"
fi

if [ ! -f "$work/clip/training.json" ]; then
  step "1/3 CLIP from scratch (configs/clip-emoji-tiny.json, $clip_dtype)"
  "$bin/clipcap-train" clip --config configs/clip-emoji-tiny.json --format karpathy \
    --captions "$emoji/dataset_emoji.json" --images "$emoji/images" --out "$work/clip" --overwrite \
    --dtype "$clip_dtype" "${threads[@]}" "${clip_args[@]}" \
    || die "clipcap-train clip"
fi

if [ ! -f "$work/data/meta.json" ]; then
  step "2/3 embedding the dataset with it ($EMBEDDING)"
  "$bin/clipcap-data" build --format karpathy --captions "$emoji/dataset_emoji.json" --images "$emoji/images" \
    --clip "$work/clip" --embedding "$EMBEDDING" --out "$work/data" "${threads[@]}" \
    || die "clipcap-data build"
fi

if [ ! -f "$work/run/best/model.safetensors" ] || [ ! -f "$work/run/done" ]; then
  step "3/3 captioner (configs/emoji-tiny.json)"
  rm -rf "$work/run"
  "$bin/clipcap-train" --config configs/emoji-tiny.json --data "$work/data" --out "$work/run" "${threads[@]}" \
    "${train_args[@]}" \
    || die "clipcap-train"
  touch "$work/run/done"
fi

# Each model directory is replaced whole, never left half-copied.
publish() {  # publish SRC DEST
  rm -rf "$2.tmp"
  cp -r "$1" "$2.tmp"
  rm -rf "$2.old"
  [ -e "$2" ] && mv "$2" "$2.old"
  mv "$2.tmp" "$2"
  rm -rf "$2.old"
}
step "publishing into $models/"
publish "$work/clip" "$models/emoji-clip"
publish "$work/run/best" "$models/emoji-tiny"
# Provenance next to the weights: the resolved training config and the per-epoch log (clipcap-eval
# --run draws the curves from them).
mkdir -p "$models/emoji-tiny/training"
cp "$work/run/train_config.json" "$work/run/metrics.jsonl" "$models/emoji-tiny/training/"
echo "train_emoji_default: done in $((SECONDS - t0)) s: $models/emoji-tiny (captioner), $models/emoji-clip (CLIP)" >&2
