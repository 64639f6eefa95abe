#!/usr/bin/python3
"""Exact-match share of captions: the honest figure for the emoji default.

    caption_match.py PREDICTIONS.jsonl [--out FILE.json]

PREDICTIONS.jsonl is clipcap-eval's (one {"image", "prediction", "references"} per line). A
prediction matches when it equals one of its image's references after normalise() (lower case,
punctuation dropped, spaces collapsed). BLEU and CIDEr reward shared n-grams ("flag of ...",
"... skin tone") even on the wrong emoji; an exact match is the right emoji named. Prints
"exact match: K/N (P%)"; --out also writes {"matches", "images", "share"}.
"""

import argparse
import json
import os
import re
import sys


def normalise(text):
    """Lower case, punctuation dropped, spaces collapsed: 'Flag of Japan.' == 'flag of japan'."""
    text = re.sub(r"[^\w\s#*]", " ", text.lower())  # '#' and '*' are words of keycap captions
    return " ".join(text.split())


def matches(prediction, references):
    refs = [references] if isinstance(references, str) else references
    return normalise(prediction) in {normalise(r) for r in refs}


def exact_match_share(path):
    """(matches, images) over a predictions JSONL file; SystemExit naming the file and line on bad input."""
    hits = total = 0
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    pred, refs = rec["prediction"], rec["references"]
                except (ValueError, KeyError, TypeError) as e:
                    sys.exit(f"caption_match: {path}:{n}: not a prediction record ({e})")
                total += 1
                hits += matches(pred, refs)
    except OSError as e:
        sys.exit(f"caption_match: {path}: cannot read ({e.strerror})")
    if total == 0:
        sys.exit(f"caption_match: {path}: no predictions")
    return hits, total


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("predictions")
    p.add_argument("--out", help="also write the result as JSON here")
    args = p.parse_args()
    hits, total = exact_match_share(args.predictions)
    result = {"predictions": args.predictions, "matches": hits, "images": total, "share": hits / total}
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        os.replace(tmp, args.out)
    print(f"exact match: {hits}/{total} ({100.0 * hits / total:.1f}%)")


if __name__ == "__main__":
    main()
