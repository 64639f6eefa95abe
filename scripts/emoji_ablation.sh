#!/usr/bin/env bash
# One row of the embedded default's ablation table (models/README.md): trains a variant of the
# default with scripts/train_emoji_default.sh into runs/ablation/NAME, then evaluates it on the
# held-out twitter split (test) and on val, plain (beam 3) and CLIP-reranked, and appends the row to
# runs/ablation/results.jsonl.
#
#   scripts/emoji_ablation.sh NAME [train_emoji_default.sh arguments, e.g. --clip-args "--epochs 72"]
#   scripts/emoji_ablation.sh NAME --eval-only MODEL_DIR CLIP_DIR DATA_DIR   # an existing model
#
# Rerun safe: training resumes where train_emoji_default.sh left it; evaluation is redone.
# Environment: CLIPCAP_BUILD_DIR (default build), CLIPCAP_THREADS (default 1 for training: see
# train_emoji_default.sh), RERANK (default "--rerank clip --rerank-candidates 8 --rerank-weight 0.3").
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
[ $# -ge 1 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
name="$1"; shift
bin="${CLIPCAP_BUILD_DIR:-build}"
python=/usr/bin/python3
root=runs/ablation
work="$root/$name"
mkdir -p "$work"
read -r -a rerank <<< "${RERANK:---rerank clip --rerank-candidates 8 --rerank-weight 0.3}"

train_s=0
if [ "${1:-}" = "--eval-only" ]; then
  [ $# -eq 4 ] || { echo "emoji_ablation: --eval-only MODEL_DIR CLIP_DIR DATA_DIR" >&2; exit 2; }
  model="$2"; clip="$3"; data="$4"; args="(eval only: $model)"
else
  args="$*"
  t0=$SECONDS
  CLIPCAP_THREADS="${CLIPCAP_THREADS:-1}" scripts/train_emoji_default.sh --work "$work" --models "$work/models" "$@"
  train_s=$((SECONDS - t0))
  model="$work/models/emoji-tiny"; clip="$work/models/emoji-clip"; data="$work/data"
fi

row="{\"name\": \"$name\", \"args\": $($python -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$args"), \"train_s\": $train_s"
for split in test val; do
  for mode in beam3 rerank; do
    out="$work/eval-$split-$mode"
    extra=()
    [ "$mode" = rerank ] && extra=("${rerank[@]}")
    rm -rf "$out"
    t0=$SECONDS
    "$bin/clipcap-eval" --model "$model" --data "$data" --split "$split" --out "$out" --clip "$clip" --beam 3 \
      --threads 2 "${extra[@]}" > "$out.log" 2>&1 || { echo "emoji_ablation: clipcap-eval failed: $out.log" >&2; exit 1; }
    eval_s=$((SECONDS - t0))
    "$python" scripts/caption_match.py "$out/predictions.jsonl" --out "$out/exact_match.json" > /dev/null
    row+=", \"${split}_${mode}\": $($python - "$out" "$eval_s" <<'PY'
import json, sys
out, secs = sys.argv[1], int(sys.argv[2])
m = json.load(open(out + "/metrics.json"))["metrics"]
em = json.load(open(out + "/exact_match.json"))
print(json.dumps({"exact": em["share"], "bleu4": m["BLEU-4"], "cider_d": m["CIDEr-D"], "eval_s": secs}))
PY
)"
  done
done
row+="}"
echo "$row" >> "$root/results.jsonl"
"$python" - "$row" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
f = lambda k: "%.1f%% / %.3f / %.2f" % (100 * r[k]["exact"], r[k]["bleu4"], r[k]["cider_d"])
print("| %s | %s | %d s | %s | %s | %s |" % (r["name"], r["args"], r["train_s"], f("test_beam3"), f("test_rerank"), f("val_rerank")))
PY
