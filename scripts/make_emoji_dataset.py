#!/usr/bin/python3
"""Builds the embedded default's emoji caption dataset from the npm emoji packages.

    /usr/bin/python3 scripts/make_emoji_dataset.py --src .cache/emoji [--out DIR] [--limit N]
        [--vendors apple,google,facebook,twitter] [--test-vendor twitter] [--val-percent 5]

--src is the npm prefix scripts/fetch_emoji_data.sh installed into (it holds node_modules/
emoji-datasource-<vendor> and node_modules/emojibase-data). Writes into --out (default SRC/dataset):

  images/<vendor>_<unified>.png   the vendor's 64 px art, RGBA composited on white, saved as RGB
  results.csv                     Flickr/Kaggle format: "image_name| comment_number| comment"
  dataset_emoji.json              Karpathy format: images[] {filename, split, sentences[] {raw}}:
                                  the split travels with the input (clipcap-data --format karpathy)

Which emoji: every one (skin-tone variants included) that ALL the chosen vendors draw, in the
datasource's Unicode order (sort_order, then code points); --limit keeps the first N.
Captions, lower-cased: first the CLDR label (emojibase-data, en) rewritten into a phrase
("flag: X" -> "flag of X", "keycap: X" -> "keycap X", "X: bald" -> "bald X", "X: facing right"
-> "X facing right", other "X: Y" -> "X with Y"); second the datasource's Unicode-style name
where it differs (a skin-tone variant: its base's name with the variant's tones).
Splits (held out by art style, the honest test of generalisation): every --test-vendor image is
test; of the other vendors' images a deterministic --val-percent (smallest SHA-256 of the file
name) is val, the rest train. Same packages, same output, byte for byte (for one Pillow version).
"""

import argparse
import hashlib
import json
import os
import sys

from PIL import Image

ALL_VENDORS = ("apple", "google", "facebook", "twitter")
IMAGE_SIZE = 64  # the packages' per-emoji art size; the CLIP preprocessor downsamples as configured


def strip_fe0f(hexcode):
    # emojibase writes some sequences without the variation selector FE0F, the datasource with it.
    return "-".join(p for p in hexcode.upper().split("-") if p != "FE0F")


def phrase_from_label(label):
    """The CLDR label as a short phrase: the colon form reads badly as a caption."""
    text = label.lower()
    head, sep, tail = text.partition(": ")
    if not sep:
        return text
    if head == "flag":
        return "flag of " + tail
    if head == "keycap":
        return "keycap " + tail
    if tail == "bald":
        return "bald " + head
    if tail == "facing right":
        return head + " facing right"
    return head + " with " + tail


def skin_tones(label):
    """'kiss: man, man, light skin tone, dark skin tone' -> 'light skin tone, dark skin tone'."""
    _, _, tail = label.lower().partition(": ")
    return ", ".join(p for p in tail.split(", ") if p.endswith("skin tone"))


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        sys.exit(f"make_emoji_dataset: {path}: cannot read ({e.strerror}); run scripts/fetch_emoji_data.sh")
    except ValueError as e:
        sys.exit(f"make_emoji_dataset: {path}: invalid JSON ({e})")


def cldr_labels(src):
    """Code points without FE0F -> CLDR label (en), skin-tone variants included."""
    labels = {}
    for e in read_json(os.path.join(src, "node_modules", "emojibase-data", "en", "data.json")):
        labels[strip_fe0f(e["hexcode"])] = e["label"]
        for s in e.get("skins", []):
            labels[strip_fe0f(s["hexcode"])] = s["label"]
    return labels


def datasource_emoji(src, vendors):
    """[(sort key, unified, image file, datasource name, is_variant)] drawn by every vendor.

    Every emoji-datasource-<vendor> package ships the same emoji.json (flags for all vendors)."""
    path = os.path.join(src, "node_modules", "emoji-datasource-" + vendors[0], "emoji.json")
    out = []
    for e in read_json(path):
        entries = [(e, False)] + [(s, True) for _, s in sorted((e.get("skin_variations") or {}).items())]
        for entry, variant in entries:
            if all(entry.get("has_img_" + v) for v in vendors):
                out.append(((e.get("sort_order", 0), entry["unified"]), entry["unified"], entry["image"],
                            e["name"], variant))
    out.sort()
    return out


def captions_for(unified, name, variant, labels):
    label = labels.get(strip_fe0f(unified))
    if label is None:
        return None
    caps = [phrase_from_label(label)]
    second = name.lower()
    if variant:
        tones = skin_tones(label)
        if tones:
            second += (", " if ": " in second else " with ") + tones
    if second != caps[0]:
        caps.append(second)
    # '|' separates Flickr columns and a newline ends a row: neither may occur in a caption.
    return [" ".join(c.replace("|", " ").split()) for c in caps]


def write_image(src_png, dst_png):
    with Image.open(src_png) as im:
        rgba = im.convert("RGBA")
    if rgba.size != (IMAGE_SIZE, IMAGE_SIZE):
        rgba = rgba.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    tmp = dst_png + ".tmp"
    rgb.save(tmp, format="PNG")
    os.replace(tmp, dst_png)


def write_text(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="npm prefix holding node_modules/ (fetch_emoji_data.sh DEST)")
    ap.add_argument("--out", help="output directory (default SRC/dataset)")
    ap.add_argument("--limit", type=int, default=0, help="keep only the first N emoji (tests, CI)")
    ap.add_argument("--vendors", default=",".join(ALL_VENDORS), help="comma-separated art styles to use")
    ap.add_argument("--test-vendor", default="twitter", help="held-out art style: all its images are test")
    ap.add_argument("--val-percent", type=float, default=5.0, help="val share of the other vendors' images")
    args = ap.parse_args(argv)

    vendors = [v.strip() for v in args.vendors.split(",") if v.strip()]
    bad = [v for v in vendors if v not in ALL_VENDORS]
    if bad or not vendors:
        sys.exit(f"make_emoji_dataset: --vendors: unknown vendor {bad[0] if bad else '(none)'}; "
                 f"choose from {','.join(ALL_VENDORS)}")
    if args.test_vendor and args.test_vendor not in vendors:
        sys.exit(f"make_emoji_dataset: --test-vendor: {args.test_vendor} is not among --vendors")
    out = args.out or os.path.join(args.src, "dataset")
    os.makedirs(os.path.join(out, "images"), exist_ok=True)

    labels = cldr_labels(args.src)
    emoji = []
    unlabelled = 0
    for _, unified, image, name, variant in datasource_emoji(args.src, vendors):
        caps = captions_for(unified, name, variant, labels)
        if caps is None:
            unlabelled += 1  # no CLDR label: no honest caption
            continue
        emoji.append((unified, image, caps, variant))
    if args.limit > 0:
        emoji = emoji[:args.limit]
    if not emoji:
        sys.exit("make_emoji_dataset: no emoji drawn by every chosen vendor")

    images = []  # (file name, vendor, unified, captions)
    for vendor in vendors:
        art = os.path.join(args.src, "node_modules", "emoji-datasource-" + vendor, "img", vendor, str(IMAGE_SIZE))
        for unified, image, caps, _ in emoji:
            name = f"{vendor}_{unified}.png"
            src_png = os.path.join(art, image)
            if not os.path.isfile(src_png):
                sys.exit(f"make_emoji_dataset: {src_png}: missing (the package marks it as drawn)")
            write_image(src_png, os.path.join(out, "images", name))
            images.append((name, vendor, unified, caps))

    # Images of an earlier run with other options would otherwise linger beside the new dataset.
    keep = {n for n, _, _, _ in images}
    for stale in sorted(os.listdir(os.path.join(out, "images"))):
        if stale.endswith(".png") and stale not in keep:
            os.remove(os.path.join(out, "images", stale))

    # val: the smallest hashes among the non-test images, so the choice does not depend on order.
    pool = sorted((hashlib.sha256(n.encode()).hexdigest(), n) for n, v, _, _ in images if v != args.test_vendor)
    val = {n for _, n in pool[:round(len(pool) * args.val_percent / 100.0)]}
    split_of = {n: ("test" if v == args.test_vendor else "val" if n in val else "train") for n, v, _, _ in images}

    rows = ["image_name| comment_number| comment"]
    karpathy = []
    sentid = 0
    for imgid, (name, vendor, unified, caps) in enumerate(images):
        sentences = []
        for k, cap in enumerate(caps):
            rows.append(f"{name}| {k}| {cap}")
            sentences.append({"raw": cap, "tokens": cap.split(), "imgid": imgid, "sentid": sentid})
            sentid += 1
        karpathy.append({"filename": name, "imgid": imgid, "split": split_of[name], "vendor": vendor,
                         "unified": unified, "sentids": [s["sentid"] for s in sentences], "sentences": sentences})
    write_text(os.path.join(out, "results.csv"), "\n".join(rows) + "\n")
    write_text(os.path.join(out, "dataset_emoji.json"),
               json.dumps({"dataset": "emoji", "images": karpathy}, ensure_ascii=False, indent=None) + "\n")

    counts = {s: sum(1 for x in split_of.values() if x == s) for s in ("train", "val", "test")}
    print(f"make_emoji_dataset: {len(emoji)} emoji ({sum(1 for e in emoji if e[3])} skin-tone variants, "
          f"{sum(1 for e in emoji if len(e[2]) > 1)} with a second caption) x {len(vendors)} vendors "
          f"= {len(images)} images, {sentid} captions; train {counts['train']}, val {counts['val']}, "
          f"test {counts['test']} ({args.test_vendor or 'none'}); "
          f"{unlabelled} drawn emoji without a CLDR label skipped -> {out}")


if __name__ == "__main__":
    main()
