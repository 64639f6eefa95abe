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
PIL bicubic, centre crop 224, rescale, normalise, in numpy), then one batched forward of its own
small CLIP vision transformer holding the weights of --clip's model.safetensors (data_bench
make-clip writes it), pooler_output; at the end the embeddings and an index are written.
torch.set_num_threads(--threads). --decode-threads N > 0 decodes each batch on a thread pool
(PIL releases the GIL): a stronger baseline than the plain loop (0, the default).
Prints one JSON line per rep: images/s = images / wall, the model load excluded (done once before).
--check compares the embeddings with a clipcap dataset built from the same images (f32 only).
phases (same options as run, plus --decode-images) times the two kinds of work alone, like
data_bench phases.
"""

import argparse
import json
import math
import os
import random
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter


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


# ---- model ----------------------------------------------------------------------------------

DTYPES = {"F32": np.float32, "F16": np.float16}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[begin:end], np.int16).copy()
            t = torch.from_numpy(raw).view(torch.bfloat16).float()
        else:
            t = torch.from_numpy(np.frombuffer(data[begin:end], DTYPES[info["dtype"]]).copy()).float()
        out[name] = t.reshape(info["shape"])
    return out


class VisionTransformer(torch.nn.Module):
    """HF CLIPVisionTransformer's forward (pre-LN, quick_gelu), on HF-named weights."""

    def __init__(self, cfg, weights, dtype):
        super().__init__()
        v = cfg.get("vision_config", cfg)
        self.patch = v["patch_size"]
        self.heads = v["num_attention_heads"]
        self.layers = v["num_hidden_layers"]
        self.eps = v.get("layer_norm_eps", 1e-5)
        if v.get("hidden_act", "quick_gelu") != "quick_gelu":
            raise SystemExit("py_data_baseline: only quick_gelu CLIP configs")
        self.w = {k[len("vision_model."):]: t.to(dtype) for k, t in weights.items() if k.startswith("vision_model.")}
        self.dtype = dtype

    def ln(self, x, name):
        return F.layer_norm(x, x.shape[-1:], self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def lin(self, x, name):
        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def forward(self, px):
        w = self.w
        x = F.conv2d(px.to(self.dtype), w["embeddings.patch_embedding.weight"], stride=self.patch)  # (B, D, g, g)
        x = x.flatten(2).transpose(1, 2)                                                            # (B, N, D)
        B, N, D = x.shape
        cls = w["embeddings.class_embedding"].expand(B, 1, D)
        x = torch.cat([cls, x], 1) + w["embeddings.position_embedding.weight"][: N + 1]            # (B, T, D)
        x = self.ln(x, "pre_layrnorm")
        hd = D // self.heads
        for i in range(self.layers):
            p = f"encoder.layers.{i}."
            h = self.ln(x, p + "layer_norm1")
            q = self.lin(h, p + "self_attn.q_proj") * hd ** -0.5
            k = self.lin(h, p + "self_attn.k_proj")
            v_ = self.lin(h, p + "self_attn.v_proj")
            q, k, v_ = (t.view(B, -1, self.heads, hd).transpose(1, 2) for t in (q, k, v_))        # (B, H, T, hd)
            a = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v_                                  # (B, H, T, hd)
            x = x + self.lin(a.transpose(1, 2).reshape(B, -1, D), p + "self_attn.out_proj")
            h = self.lin(self.ln(x, p + "layer_norm2"), p + "mlp.fc1")
            x = x + self.lin(h * torch.sigmoid(1.702 * h), p + "mlp.fc2")
        return self.ln(x[:, 0], "post_layernorm")                                                  # (B, D)


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
    with open(os.path.join(args.clip, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(args.clip, "preprocessor_config.json")) as f:
        prep = Preprocessor(json.load(f))
    model = VisionTransformer(cfg, load_safetensors(os.path.join(args.clip, "model.safetensors")), dtype)
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
    with open(os.path.join(args.clip, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(args.clip, "preprocessor_config.json")) as f:
        prep = Preprocessor(json.load(f))
    model = VisionTransformer(cfg, load_safetensors(os.path.join(args.clip, "model.safetensors")), dtype)
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
