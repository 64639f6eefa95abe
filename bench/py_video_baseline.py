#!/usr/bin/python3
"""Python baselines for the video captioning benchmark (bench/README.md, "Video").

    /usr/bin/python3 bench/py_video_baseline.py --video V --algo pipeline --mode uniform -N 60
    /usr/bin/python3 bench/py_video_baseline.py --video V --algo pipeline --mode scenes
    /usr/bin/python3 bench/py_video_baseline.py --video V --algo upstream -N 60 --weights W/model.pt

Same model shapes and caption length as bench/video_bench.cpp (py_caption_baseline.py's models,
from py_models.py: CLIP ViT-B/32 -> upstream ConfigS mapping -> GPT-2 small, random weights,
exactly --tokens greedy tokens per caption). Frames: OpenCV's VideoCapture (FFmpeg backend),
preprocessing as CLIP's (shortest side 224 bicubic, centre crop, mean/std) in OpenCV + numpy.

  pipeline  (b) what a competent Python user writes: seek to each frame time with
            CAP_PROP_POS_MSEC and read it, then batched CLIP (16 frames) + KV-cached greedy captioning
            (--caption-batch captions at a time, 64 like clipcap's default).
            --mode scenes: read every frame, PySceneDetect's ContentDetector score (HSV of the frame
            shrunk to 160 px, mean |difference|, threshold 27, min scene 0.6 s), then seek to
            --scene-frames frames spread through each scene, caption the mean embedding per scene.
  upstream  (a) upstream v2c.py's algorithm: per frame, seek + read, load the whole model from disk
            (torch.load + load_state_dict into a new model, as v2c.py's per-frame Net(...) does),
            caption with upstream's Net.forward (no KV cache, one image). Frames one after the other
            (v2c.py's thread pool adds no throughput on a CPU whose cores torch already uses).
            --upstream-frames M times only the first M frames and scales to all N (the per-frame
            cost is the same for every frame); the JSON says so.

One JSON object per run on stdout.
"""
import argparse
import json
import os
import statistics
import sys
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import py_caption_baseline as cap  # noqa: E402  (its decoding loops)
from py_models import Captioner  # noqa: E402

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def preprocess(bgr):  # (H, W, 3) uint8 BGR -> (3, 224, 224) float32
    h, w = bgr.shape[:2]
    s = 224 / min(h, w)
    nw, nh = max(224, int(round(w * s))), max(224, int(round(h * s)))
    img = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_CUBIC)
    top, left = (nh - 224) // 2, (nw - 224) // 2
    img = img[top:top + 224, left:left + 224, ::-1].astype(np.float32) / 255.0
    return torch.from_numpy(((img - MEAN) / STD).transpose(2, 0, 1).copy())


def video_duration(capture):
    fps = capture.get(cv2.CAP_PROP_FPS)
    n = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return n / fps, fps


def read_at(capture, t):
    capture.set(cv2.CAP_PROP_POS_MSEC, t * 1000.0)
    ok, frame = capture.read()
    if not ok:
        raise RuntimeError(f"cannot read the frame at {t:.3f} s")
    return frame


def caption_embeddings(model, embeds, tokens):
    """Batched KV-cached greedy captioning from CLIP embeddings (B, D)."""
    g = model.gpt2
    prefix = model.mapping(embeds.to(g.wte.weight.dtype))
    B, P, _ = prefix.shape
    cache = g.new_cache(B, P + tokens, prefix.dtype)
    h = g(prefix, cache, 0)
    tok = cap.next_token(g.logits(h[:, -1]).float(), 0, tokens)
    out = [tok]
    for step in range(1, tokens):
        h = g(g.wte(tok).unsqueeze(1), cache, P + step - 1)
        tok = cap.next_token(g.logits(h[:, -1]).float(), step, tokens)
        out.append(tok)
    return torch.stack(out, dim=1)


def embed(model, pixels, batch):
    rows = []
    for i in range(0, len(pixels), batch):
        rows.append(model.clip(torch.stack(pixels[i:i + batch])))
    return torch.cat(rows)


def pipeline_uniform(model, path, n, tokens, batch, caption_batch):
    capture = cv2.VideoCapture(path)
    duration, _ = video_duration(capture)
    frames = [preprocess(read_at(capture, i * duration / n)) for i in range(n)]
    emb = embed(model, frames, batch)
    ids = [caption_embeddings(model, emb[i:i + caption_batch], tokens) for i in range(0, n, caption_batch)]
    return duration, n, sum(len(x) for x in ids)


def content_score(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def pipeline_scenes(model, path, k, tokens, batch, caption_batch, threshold=27.0, min_len=0.6):
    capture = cv2.VideoCapture(path)
    duration, fps = video_duration(capture)
    starts, prev, index = [0], None, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        s = 160 / max(h, w)
        small = cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        if prev is not None and content_score(prev, hsv) >= threshold and (index - starts[-1]) / fps >= min_len:
            starts.append(index)
        prev, index = hsv, index + 1
    bounds = starts + [index]
    picks = []  # (scene, frame index)
    for si in range(len(starts)):
        first, count = bounds[si], bounds[si + 1] - bounds[si]
        for j in range(min(k, count)):
            picks.append((si, first + int((j + 0.5) * count / min(k, count))))
    frames = []
    for _, fi in picks:
        capture.set(cv2.CAP_PROP_POS_FRAMES, fi)
        ok, frame = capture.read()
        if not ok:
            raise RuntimeError(f"cannot read frame {fi}")
        frames.append(preprocess(frame))
    emb = embed(model, frames, batch)
    scene_emb = torch.stack([emb[[i for i, (s, _) in enumerate(picks) if s == si]].mean(0) for si in range(len(starts))])
    for i in range(0, len(scene_emb), caption_batch):
        caption_embeddings(model, scene_emb[i:i + caption_batch], tokens)
    return duration, len(frames), len(starts)


def upstream_uniform(path, n, tokens, weights, frames_timed):
    capture = cv2.VideoCapture(path)
    duration, _ = video_duration(capture)
    per_frame = []
    for i in range(min(n, frames_timed)):
        t0 = time.perf_counter()
        px = preprocess(read_at(capture, i * duration / n)).unsqueeze(0)
        model = Captioner()  # a new model, its weights loaded from disk, for every frame
        model.load_state_dict(torch.load(weights))
        model.eval()
        with torch.inference_mode():
            cap.caption_upstream(model, px, tokens)
        per_frame.append(time.perf_counter() - t0)
        print(f"py: upstream frame {i}: {per_frame[-1]:.2f} s", file=sys.stderr)
    return duration, per_frame


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video")
    ap.add_argument("--videos", help="a file with a video path per line: one batch, clips/s (uniform only)")
    ap.add_argument("--upstream-clips", type=int, default=1 << 30, help="upstream --videos: clips timed (scaled to all)")
    ap.add_argument("--algo", choices=["pipeline", "upstream"], default="pipeline")
    ap.add_argument("--mode", choices=["uniform", "scenes"], default="uniform")
    ap.add_argument("-N", type=int, default=60)
    ap.add_argument("--scene-frames", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16, help="frames per CLIP forward")
    ap.add_argument("--caption-batch", type=int, default=64, help="captions per generation batch")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", help="upstream: model weights file (written by --save-weights)")
    ap.add_argument("--save-weights", help="write the random model's weights here and exit")
    ap.add_argument("--upstream-frames", type=int, default=1 << 30, help="upstream: frames timed (scaled to N)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    torch.manual_seed(args.seed)
    if args.save_weights:
        torch.save(Captioner().state_dict(), args.save_weights)
        return
    rec = {"impl": "python", "algo": args.algo, "mode": args.mode, "threads": args.threads, "tokens": args.tokens,
           "num_frames": args.N, "scene_frames": args.scene_frames}
    if args.videos:
        paths = [p for p in open(args.videos).read().splitlines() if p]
        rec["batch"] = True
        rec["clips"] = len(paths)
        if args.algo == "upstream":
            timed = paths[:args.upstream_clips]
            t0 = time.perf_counter()
            for p in timed:
                upstream_uniform(p, args.N, args.tokens, args.weights, args.N)
            total = (time.perf_counter() - t0) * len(paths) / len(timed)
            rec.update(clips_timed=len(timed), median_s=total, clips_per_s=len(paths) / total)
        else:
            model = Captioner().eval()
            t0 = time.perf_counter()
            with torch.inference_mode():
                for p in paths:
                    pipeline_uniform(model, p, args.N, args.tokens, args.batch_size, args.caption_batch)
            total = time.perf_counter() - t0
            rec.update(median_s=total, clips_per_s=len(paths) / total)
        print(json.dumps(rec), flush=True)
        return
    if args.algo == "upstream":
        duration, per_frame = upstream_uniform(args.video, args.N, args.tokens, args.weights, args.upstream_frames)
        total = statistics.mean(per_frame) * args.N
        rec.update(video_s=duration, frames=args.N, frames_timed=len(per_frame), median_s=total, rtf=duration / total,
                   per_frame_s=per_frame)
    else:
        t_model = time.perf_counter()
        model = Captioner().eval()
        rec["model_build_s"] = time.perf_counter() - t_model
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            with torch.inference_mode():
                if args.mode == "uniform":
                    duration, frames, cues = pipeline_uniform(model, args.video, args.N, args.tokens, args.batch_size,
                                                                     args.caption_batch)
                else:
                    duration, frames, cues = pipeline_scenes(model, args.video, args.scene_frames, args.tokens,
                                                             args.batch_size, args.caption_batch)
            times.append(time.perf_counter() - t0)
            print(f"py: {args.algo} {args.mode}: {times[-1]:.2f} s, {frames} frames, {cues} captions", file=sys.stderr)
        med = statistics.median(times)
        rec.update(video_s=duration, frames=frames, cues=cues, median_s=med, times_s=times, rtf=duration / med)
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
