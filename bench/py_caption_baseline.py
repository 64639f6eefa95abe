#!/usr/bin/python3
"""Python baselines for the captioning benchmark (bench/README.md).

    /usr/bin/python3 bench/py_caption_baseline.py --threads 2 --reps 5 \
        --runs cached:f32:1,cached:f32:16,cached:bf16:1,cached:bf16:16,upstream:f32:16

Same shapes as bench/caption_bench.cpp: CLIP ViT-B/32 vision tower -> upstream ConfigS mapping
(TransformerEncoder 768/6 layers/16 heads/3072, ep_len 4) -> GPT-2 small, random seeded weights,
random 224x224 pixel tensors (no image decoding or preprocessing), exactly --tokens greedy tokens
per image (EOS suppressed, like DecodeOptions min_len = max_len). The models are py_models.py's
Captioner with its defaults, the inference variant (nn.Linear layers); this file has the decoding.

Two algorithms:
  cached    (a) what a competent PyTorch user writes: the whole batch at once, one prefill over the
              prefix, then one token per step against a preallocated KV cache, inference_mode.
  upstream  (b) upstream's Net.forward: one image at a time, CLIP, mapping, then every step
              recomputes GPT-2 (and the LM head on every position, as GPT2LMHeadModel does) over
              [BOS, prefix, tokens so far] with no cache; wpe added by hand as upstream does.

One JSON object per run goes to stdout (one line each); progress goes to stderr. Plain PyTorch,
no transformers (Debian's python3-torch only).
"""
import argparse
import json
import statistics
import sys
import time

import torch

from py_models import EOS, Captioner


def next_token(logits, step, min_len):  # (B, V) greedy, EOS banned before min_len
    if step < min_len:
        logits[:, EOS] = float("-inf")
    return logits.argmax(dim=-1)


PHASES = {}  # seconds of the last caption_cached call per phase


def caption_cached(model, px, n_tokens):
    """(a): batched greedy decoding with a preallocated KV cache. Returns (B, n_tokens) ids."""
    g = model.gpt2
    t0 = time.perf_counter()
    pooled = model.clip(px)  # (B, D)
    t1 = time.perf_counter()
    prefix = model.mapping(pooled)  # (B, P, D)
    t2 = time.perf_counter()
    B, P, _ = prefix.shape
    cache = g.new_cache(B, P + n_tokens, prefix.dtype)
    h = g(prefix, cache, 0)  # (B, P, D)
    out = []
    tok = next_token(g.logits(h[:, -1]).float(), 0, n_tokens)
    out.append(tok)
    for step in range(1, n_tokens):
        h = g(g.wte(tok).unsqueeze(1), cache, P + step - 1)  # (B, 1, D)
        tok = next_token(g.logits(h[:, -1]).float(), step, n_tokens)
        out.append(tok)
    ids = torch.stack(out, dim=1)
    PHASES.update(clip=t1 - t0, mapping=t2 - t1, decode=time.perf_counter() - t2)
    return ids


def caption_full_recompute(model, px, n_tokens):
    """(a) without the cache, batched: the reference that caption_cached must agree with."""
    g = model.gpt2
    x = model.prefix(px)
    out = []
    for step in range(n_tokens):
        tok = next_token(g.logits(g(x)[:, -1]).float(), step, n_tokens)
        out.append(tok)
        x = torch.cat([x, g.wte(tok).unsqueeze(1)], dim=1)
    return torch.stack(out, dim=1)


def caption_upstream(model, px, n_tokens):
    """(b): upstream Net.forward for each image separately, no cache. Returns (B, n_tokens) ids."""
    g = model.gpt2
    wte, wpe = g.wte.weight, g.wpe.weight
    result = []
    for i in range(px.shape[0]):
        prefix = model.prefix(px[i:i + 1])[0]  # (ep_len, D)
        start = torch.cat([wte[EOS][None], prefix])  # (1+ep_len, D)
        tokens = []
        for step in range(n_tokens):
            emb = torch.cat([start, wte[tokens]]) if tokens else start  # step 0 aliases start
            emb += wpe[: emb.shape[0]]  # by hand (GPT-2 adds wpe again inside)
            logits = g.logits(g(emb.unsqueeze(0)))[0]  # (T, V): the LM head on every row, like HF
            probs = torch.softmax(logits.float(), dim=-1)  # upstream: argmax(softmax(logits / T))
            tokens.append(int(next_token(probs[-1:].clone(), step, n_tokens)[0]))
        result.append(tokens)
    return torch.tensor(result)


ALGORITHMS = {"cached": caption_cached, "upstream": caption_upstream, "recompute": caption_full_recompute}
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}


def bench(fn, model, px, n_tokens, warmup, reps):
    with torch.inference_mode():
        for _ in range(warmup):  # one image is enough to warm up the per-image algorithm
            fn(model, px[:1] if fn is caption_upstream else px, n_tokens)
        times, phases = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            ids = fn(model, px, n_tokens)
            times.append(time.perf_counter() - t0)
            phases.append(dict(PHASES))
    assert ids.shape == (px.shape[0], n_tokens), ids.shape
    return times, phases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="cached:f32:1,cached:f32:16,cached:bf16:1,cached:bf16:16,upstream:f32:16",
                    help="comma-separated algo:dtype:batch (algo: cached|upstream|recompute)")
    ap.add_argument("--tokens", type=int, default=20, help="generated tokens per image")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true",
                    help="first check that cached decoding equals full recompute (f32, batch 2)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Captioner().eval()
    print(f"py: torch {torch.__version__}, threads {torch.get_num_threads()}", file=sys.stderr)

    if args.check:
        px = torch.randn(2, 3, 224, 224)
        with torch.inference_mode():
            a, b = caption_cached(model, px, args.tokens), caption_full_recompute(model, px, args.tokens)
        if not torch.equal(a, b):
            sys.exit(f"py: KV-cached tokens differ from full recompute:\n{a}\n{b}")
        print("py: check ok: cached == recompute", file=sys.stderr)

    for run in args.runs.split(","):
        algo, dname, batch = run.split(":")
        batch = int(batch)
        m = model.to(DTYPES[dname])
        px = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(args.seed + 1))  # float32
        PHASES.clear()
        times, phases = bench(ALGORITHMS[algo], m, px, args.tokens, args.warmup, args.reps)
        med = statistics.median(times)
        rec = {"impl": "python", "algo": algo, "dtype": dname, "batch": batch, "tokens": args.tokens,
               "threads": torch.get_num_threads(), "reps": args.reps, "median_s": med,
               "images_per_s": batch / med, "times_s": times}
        if algo == "cached":
            rec["phases_median_s"] = {k: statistics.median(p[k] for p in phases) for k in ("clip", "mapping", "decode")}
        print(f"py: {algo} {dname} batch {batch}: median {med * 1e3:.1f} ms, {batch / med:.2f} img/s", file=sys.stderr)
        print(json.dumps(rec), flush=True)
    model.float()


if __name__ == "__main__":
    main()
