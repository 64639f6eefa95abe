#!/usr/bin/python3
"""The Python side of the dataset-build benchmark: what a PyTorch script does to embed a dataset.

    /usr/bin/python3 bench/py_data_baseline.py make-images --out /tmp/jpegs --count 200
    /usr/bin/python3 bench/py_data_baseline.py run --clip /tmp/vitb32 --captions /tmp/jpegs/results.csv \
        --images /tmp/jpegs --out /tmp/py-out --dtype f32 --threads 2 --batch-size 32 --reps 3 \
        [--decode-threads 0] [--check CLIPCAP_DATASET_DIR]

make-images writes --count varied 640x480 JPEGs (gradients, shapes, noise; quality 90) and a
Flickr-format results.csv naming them, once, for both sides.
run does clipcap-data build's work the usual Python way, DataLoader-free: per batch of
--batch-size, PIL decode + convert("RGB") + CLIPImageProcessor's steps (shortest edge 224 with
PIL bicubic, centre crop 224, rescale, normalise, in numpy), then one batched forward of
py_models.py's small CLIP vision transformer holding the weights of --clip's model.safetensors
(data_bench make-clip writes it), pooler_output; at the end the embeddings and an index are written.
torch.set_num_threads(--threads). --decode-threads N > 0 decodes each batch on a thread pool
(PIL releases the GIL): a stronger baseline than the plain loop (0, the default).
Prints one JSON line per rep: images/s = images / wall, the model load excluded (done once before).
--check compares the embeddings with a clipcap dataset built from the same images (f32 only).
phases (same options as run, plus --decode-images) times the two kinds of work alone, like
data_bench phases.
"""

import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from py_models import load_clip_vision, load_safetensors


# ---- images ---------------------------------------------------------------------------------

def make_images(out, count, seed):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(seed)
    w, h = 640, 480
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rows = ["image_name| comment_number| comment"]
    for i in range(count):
        # a smooth colour field, some shapes, noise, blur: JPEG work close to a photo's
        a, b, c = (rng.uniform(0.002, 0.03) for _ in range(3))
        base = np.stack([127 + 120 * np.sin(a * xx + rng.uniform(0, 6)),
                         127 + 120 * np.sin(b * yy + rng.uniform(0, 6)),
                         127 + 120 * np.sin(c * (xx + yy) + rng.uniform(0, 6))], axis=-1)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        d = ImageDraw.Draw(img)
        for _ in range(rng.randint(3, 12)):
            x0, y0 = rng.randint(0, w - 1), rng.randint(0, h - 1)
            box = [x0, y0, x0 + rng.randint(10, 300), y0 + rng.randint(10, 300)]
            fill = tuple(rng.randint(0, 255) for _ in range(3))
            (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=fill)
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 2)))
        noise = np.random.default_rng(seed * 100003 + i).normal(0, rng.uniform(2, 12), (h, w, 3))
        img = Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))
        name = f"img_{i:04d}.jpg"
        img.save(os.path.join(out, name), quality=90)
        rows.append(f"{name}| 0| synthetic image number {i}")
    with open(os.path.join(out, "results.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    print(f"py_data_baseline: wrote {count} 640x480 JPEGs and results.csv to {out}", file=sys.stderr)


def read_flickr_names(path):
    names = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            name = line.split("|", 1)[0].strip()
            if name and (not names or names[-1] != name):
                names.append(name)
    return names


class Preprocessor:
    """CLIPImageProcessor's steps, from preprocessor_config.json."""

    def __init__(self, cfg):
        size = cfg["size"]
        self.short = size["shortest_edge"] if isinstance(size, dict) else size
        crop = cfg["crop_size"]
        self.crop_h, self.crop_w = (crop["height"], crop["width"]) if isinstance(crop, dict) else (crop, crop)
        self.scale = float(cfg["rescale_factor"])
        self.mean = np.asarray(cfg["image_mean"], np.float32)
        self.std = np.asarray(cfg["image_std"], np.float32)

    def __call__(self, path):
        with Image.open(path) as im:
            im = im.convert("RGB")
        w, h = im.size
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(self.short * long / short)
        nw, nh = (self.short, new_long) if w <= h else (new_long, self.short)
        im = im.resize((nw, nh), Image.BICUBIC)
        top, left = (nh - self.crop_h) // 2, (nw - self.crop_w) // 2
        im = im.crop((left, top, left + self.crop_w, top + self.crop_h))
        x = np.asarray(im, np.float32) * self.scale
        x = (x - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))  # (3, H, W)


# ---- run ------------------------------------------------------------------------------------

def build_once(names, args, prep, model, pool):
    embeds = []
    index = []
    for s in range(0, len(names), args.batch_size):
        batch = names[s:s + args.batch_size]
        paths = [os.path.join(args.images, n) for n in batch]
        pixels = list(pool.map(prep, paths)) if pool else [prep(p) for p in paths]
        with torch.inference_mode():
            embeds.append(model(torch.stack(pixels)).float())  # (b, D)
        index.extend(batch)
    e = torch.cat(embeds).numpy()
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "embeddings.npy"), e)
    with open(os.path.join(args.out, "index.jsonl"), "w") as f:
        for n in index:
            f.write(json.dumps({"image": n}) + "\n")
    return e, index


def check_against(dataset, e, index):
    st = load_safetensors(os.path.join(dataset, "embeddings.safetensors"))["image_embeds"]
    with open(os.path.join(dataset, "index.jsonl")) as f:
        rows = {json.loads(l)["image"]: i for i, l in enumerate(f)}
    theirs = torch.stack([st[rows[n]] for n in index])
    diff = (theirs - torch.from_numpy(e)).abs().max().item()
    scale = theirs.abs().max().item()
    return diff, scale


def run(args):
    torch.set_num_threads(args.threads)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    names = read_flickr_names(args.captions)
    t0 = time.perf_counter()
    with open(os.path.join(args.clip, "preprocessor_config.json")) as f:
        prep = Preprocessor(json.load(f))
    model = load_clip_vision(args.clip, dtype)
    load_s = time.perf_counter() - t0
    pool = ThreadPoolExecutor(args.decode_threads) if args.decode_threads > 0 else None
    impl = "python" if pool is None else f"python-{args.decode_threads}-decode-threads"
    if os.environ.get("MALLOC_MMAP_MAX_") == "0":  # run_data_bench.sh: clipcap's allocator settings
        impl += "-malloc-tuned"
    for rep in range(args.reps):
        t = time.perf_counter()
        e, index = build_once(names, args, prep, model, pool)
        wall = time.perf_counter() - t
        line = {"impl": impl, "dtype": args.dtype, "batch": args.batch_size, "threads": torch.get_num_threads(),
                "decode_threads": args.decode_threads, "rep": rep, "images": len(index), "wall_s": wall,
                "load_s": load_s, "images_per_s": len(index) / wall}
        if args.check and rep == 0:
            diff, scale = check_against(args.check, e, index)
            line["check_max_abs_diff"] = diff
            line["check_max_abs"] = scale
        print(json.dumps(line), flush=True)


def phases(args):
    """Where the time goes: decode + preprocessing on one thread, and the batched forward, alone."""
    torch.set_num_threads(args.threads)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    names = read_flickr_names(args.captions)[:max(args.decode_images, args.batch_size)]
    with open(os.path.join(args.clip, "preprocessor_config.json")) as f:
        prep = Preprocessor(json.load(f))
    model = load_clip_vision(args.clip, dtype)
    t = time.perf_counter()
    pixels = [prep(os.path.join(args.images, n)) for n in names]
    decode_ms = (time.perf_counter() - t) * 1e3 / len(names)
    batch = torch.stack(pixels[:args.batch_size])
    runs = []
    with torch.inference_mode():
        model(batch)  # warm-up, as the C++ side
        for _ in range(max(1, args.reps)):
            t = time.perf_counter()
            model(batch)
            runs.append((time.perf_counter() - t) * 1e3 / args.batch_size)
    print(json.dumps({"impl": "python", "phases": True, "dtype": args.dtype, "batch": args.batch_size,
                      "threads": torch.get_num_threads(), "decode_images": len(names),
                      "decode_ms_per_image_1_thread": decode_ms,
                      "forward_ms_per_image": sorted(runs)[len(runs) // 2]}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-images")
    mk.add_argument("--out", required=True)
    mk.add_argument("--count", type=int, default=200)
    mk.add_argument("--seed", type=int, default=0)
    rn = sub.add_parser("run")
    rn.add_argument("--clip", required=True)
    rn.add_argument("--captions", required=True)
    rn.add_argument("--images", required=True)
    rn.add_argument("--out", required=True)
    rn.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    rn.add_argument("--threads", type=int, default=os.cpu_count())
    rn.add_argument("--batch-size", type=int, default=32)
    rn.add_argument("--reps", type=int, default=3)
    rn.add_argument("--decode-threads", type=int, default=0)
    rn.add_argument("--check", help="a clipcap dataset of the same images to compare embeddings with")
    ph = sub.add_parser("phases")
    ph.add_argument("--clip", required=True)
    ph.add_argument("--captions", required=True)
    ph.add_argument("--images", required=True)
    ph.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ph.add_argument("--threads", type=int, default=os.cpu_count())
    ph.add_argument("--batch-size", type=int, default=32)
    ph.add_argument("--decode-images", type=int, default=64)
    ph.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    if args.cmd == "make-images":
        make_images(args.out, args.count, args.seed)
    elif args.cmd == "phases":
        phases(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
