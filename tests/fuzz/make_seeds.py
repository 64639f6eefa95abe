#!/usr/bin/python3
"""Writes the fuzz targets' seed inputs into tests/fuzz/corpus/<target>/ (seed-* files).

Every seed is made here (python3-torch, python3-pil) or copied from the repository's own test
fixtures and model directories: small valid inputs of each kind, from which libFuzzer mutates.
Rerun after changing a format; the inputs libFuzzer found later live beside them.
"""
import io
import json
import os
import shutil
import struct
import sys
import zipfile

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def seeds_safetensors():
    f32 = np.arange(6, dtype=np.float32).tobytes()
    put("safetensors", "f32.safetensors", safetensors({"w": ("F32", [2, 3], f32)}, {"format": "pt"}))
    put("safetensors", "dtypes.safetensors", safetensors({
        "a": ("BF16", [2], b"\x80\x3f\x00\x40"), "b": ("F16", [1], b"\x00\x3c"),
        "c": ("I64", [2], struct.pack("<qq", 1, -2)), "d": ("U8", [3], b"\x01\x02\x03"),
        "e": ("F32", [0, 4], b""), "f": ("BOOL", [1], b"\x01"), "g": ("F64", [], struct.pack("<d", 0.5))}))


def seeds_torch():
    state = {
        "weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
        "ids": torch.tensor([1, 2, 3], dtype=torch.int64),
        "half": torch.ones(2, dtype=torch.bfloat16),
    }
    state["view"] = state["weight"][1]  # shares the storage
    for name, obj in [("state_dict.bin", state), ("nested.bin", {"state_dict": {"w": torch.zeros(2)}, "epoch": 3})]:
        buf = io.BytesIO()
        torch.save(obj, buf)
        put("torch_checkpoint", name, buf.getvalue())
        with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
            pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
            put("pickle", name.replace(".bin", ".pkl"), z.read(pkl))


def seeds_captions():
    # The first byte picks the format ((byte & 7) % 5) and options (0x08 ';', 0x10 split column, 0x20 lower-case).
    put("caption_sources", "flickr.txt", "\x00image_name| comment_number| comment\n"
        "1.jpg| 0| A dog runs .\n1.jpg| 1| Another dog .\n2199200615.jpg| 4   A dog runs\n2.jpg| 0|\n")
    put("caption_sources", "karpathy.json", "\x01" + json.dumps({"images": [
        {"filepath": "train2014", "filename": "a.jpg", "split": "restval", "sentences": [{"raw": "A cat ."}]},
        {"filename": "b.jpg", "split": "test", "sentences": [{"raw": " Two cats. "}, {"raw": "x"}]}]}))
    put("caption_sources", "coco.json", "\x02" + json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "annotations": [{"image_id": 1, "caption": "A cat.\n"}, {"image_id": 2, "caption": "A dog"},
                        {"image_id": 9, "caption": "orphan"}]}))
    put("caption_sources", "jsonl.txt", "\x13" + "\n".join([
        json.dumps({"image": "a.png", "caption": "a red square", "split": "train"}),
        json.dumps({"image": "b.png", "caption": ["two", "captions"], "split": "val"}),
        "{not json", json.dumps({"image": "c.png"})]) + "\n")
    put("caption_sources", "csv.txt", "\x14image,caption,split\r\na.png,\"a \"\"quoted\"\", caption\",train\r\n"
        "b.png,plain,test\r\n\"c.png,unterminated\n")
    # Raw bytes: a BOM, UTF-8, and a Latin-1 byte.
    put("caption_sources", "csv-semicolon.txt", b"\x0c\xef\xbb\xbfimage;caption\na.png;caf\xc3\xa9\nb.png;bad \xe9 byte\n")


def seeds_tokenizers():
    put("bpe_tokenizers", "gpt2.txt", "\x00A dog runs on the grass. It's 3:45 -- isn't it?<|endoftext|>  \n\t")
    put("bpe_tokenizers", "gpt2-unicode.txt", "\x00h\u00e9llo w\u00f6rld \U0001F600 \u4e2d\u6587 \u00a0x")
    put("bpe_tokenizers", "clip.txt", "\x01A PHOTO of   a cat!!  <|startoftext|> don't \u00e9t\u00e9")
    put("bpe_tokenizers", "ids.bin", b"\x02" + b"".join(struct.pack(">H", i + 1000) for i in [0, 1, 262, 50256, 49407, 60000]))
    vocab = {"a": 0, "b": 1, "ab": 2, "a</w>": 3, "b</w>": 4, "ab</w>": 5, "<|endoftext|>": 6}
    put("bpe_tokenizers", "vocab.bin", b"\x03" + json.dumps(vocab).encode() + b"\x00#version: 0.2\na b\nab </w>\n")


def seeds_config():
    for src, name in [("models/emoji-tiny/config.json", "captioner.json"),
                      ("tests/fixtures/tiny-clip/config.json", "clip.json"),
                      ("tests/fixtures/tiny-gpt2/config.json", "gpt2.json"),
                      ("tests/fixtures/tiny-clip/preprocessor_config.json", "preprocessor.json")]:
        with open(os.path.join(ROOT, src), "rb") as f:
            put("model_config", name, f.read())


def seeds_images():
    d = os.path.join(ROOT, "tests", "fixtures", "images")
    for name in sorted(os.listdir(d)):
        if os.path.getsize(os.path.join(d, name)) <= 8192:
            shutil.copyfile(os.path.join(d, name), os.path.join(CORPUS, "image_decode", "seed-" + name))
    img = Image.fromarray((np.arange(24 * 16 * 3) % 251).astype(np.uint8).reshape(16, 24, 3))
    for fmt, ext, kw in [("JPEG", "jpg", {"quality": 80}), ("BMP", "bmp", {}), ("WEBP", "webp", {"quality": 80}),
                         ("TIFF", "tiff", {}), ("PPM", "ppm", {})]:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        put("image_decode", "rgb_24x16." + ext, buf.getvalue())
    buf = io.BytesIO()
    img.convert("L").save(buf, "JPEG", progressive=True)
    put("image_decode", "gray_progressive.jpg", buf.getvalue())


if __name__ == "__main__":
    os.makedirs(os.path.join(CORPUS, "image_decode"), exist_ok=True)
    seeds_safetensors()
    seeds_torch()
    seeds_captions()
    seeds_tokenizers()
    seeds_config()
    seeds_images()
    for t in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, t))
        print(f"{t}: {len(files)} files, {sum(os.path.getsize(os.path.join(CORPUS, t, f)) for f in files)} bytes",
              file=sys.stderr)
