#!/usr/bin/python3
"""Python baselines for the captioning benchmark (bench/README.md).

    /usr/bin/python3 bench/py_caption_baseline.py --threads 2 --reps 5 \
        --runs cached:f32:1,cached:f32:16,cached:bf16:1,cached:bf16:16,upstream:f32:16

Same shapes as bench/caption_bench.cpp: CLIP ViT-B/32 vision tower -> upstream ConfigS mapping
(TransformerEncoder 768/6 layers/16 heads/3072, ep_len 4) -> GPT-2 small, random seeded weights,
random 224x224 pixel tensors (no image decoding or preprocessing), exactly --tokens greedy tokens
per image (EOS suppressed, like DecodeOptions min_len = max_len).

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
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

EOS = 50256  # GPT-2 bos = eos


# ---- CLIP vision tower (HF CLIPVisionTransformer, pooler_output = post_layernorm(CLS)) -----------
class CLIPAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):  # (B, T, D)
        B, T, D = x.shape
        q, k, v = (p(x).view(B, T, self.heads, self.hd).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        a = torch.softmax((q * self.hd ** -0.5) @ k.transpose(-1, -2), dim=-1) @ v  # (B, H, T, hd)
        return self.out_proj(a.transpose(1, 2).reshape(B, T, D))


class CLIPLayer(nn.Module):
    def __init__(self, d, heads, mlp):
        super().__init__()
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = CLIPAttention(d, heads)
        self.fc1, self.fc2 = nn.Linear(d, mlp), nn.Linear(mlp, d)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        h = self.fc1(self.layer_norm2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))  # quick_gelu


class CLIPVision(nn.Module):
    def __init__(self, image=224, patch=32, d=768, layers=12, heads=12, mlp=3072):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, d, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(d) * 0.02)
        self.position_embedding = nn.Embedding((image // patch) ** 2 + 1, d)
        self.pre_layrnorm, self.post_layernorm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.layers = nn.ModuleList(CLIPLayer(d, heads, mlp) for _ in range(layers))

    def forward(self, px):  # (B, 3, H, W) -> pooler_output (B, D)
        x = self.patch_embedding(px).flatten(2).transpose(1, 2)  # (B, N, D)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.position_embedding.weight  # (B, N+1, D)
        x = self.pre_layrnorm(x)
        for layer in self.layers:
            x = layer(x)
        return self.post_layernorm(x[:, 0])


# ---- upstream mapping: TransformerEncoder (post-norm, ReLU) + Linear(D, ep_len * D) ---------------
class Mapping(nn.Module):
    def __init__(self, d=768, layers=6, heads=16, ff=3072, ep_len=4):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
        self.transformer_encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.mapper = nn.Linear(d, ep_len * d)
        self.ep_len = ep_len

    def forward(self, pooled):  # (B, D): each image its own length-1 sequence -> (B, ep_len, D)
        y = self.mapper(self.transformer_encoder(pooled.unsqueeze(1)))  # (B, 1, ep_len*D)
        return y.view(pooled.shape[0], self.ep_len, -1)


# ---- GPT-2 small (nn.Linear weights [out, in]; lm_head tied to wte) --------------------------------
def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class GPT2Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.attn_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.c_fc, self.mlp_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, cache=None, past=0):
        """x (B, T, D). cache: (k_buf, v_buf) of (B, H, Pmax, hd), filled up to `past`; None = no cache."""
        B, T, D = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, self.heads, self.hd).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        if cache is not None:
            kb, vb = cache
            kb[:, :, past:past + T] = k
            vb[:, :, past:past + T] = v
            k, v = kb[:, :, :past + T], vb[:, :, :past + T]  # (B, H, P+T, hd)
        s = (q @ k.transpose(-1, -2)) * self.hd ** -0.5  # (B, H, T, P+T)
        if T > 1:  # causal mask; a single new token sees everything before it
            P = k.shape[2] - T
            mask = torch.ones(T, P + T, dtype=torch.bool).triu(P + 1)
            s = s.masked_fill(mask, float("-inf"))
        a = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.attn_proj(a)
        return x + self.mlp_proj(gelu_new(self.c_fc(self.ln_2(x))))


class GPT2(nn.Module):
    def __init__(self, vocab=50257, n_pos=1024, d=768, layers=12, heads=12):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(n_pos, d)
        for e in (self.wte, self.wpe):
            nn.init.normal_(e.weight, std=0.02)
        self.h = nn.ModuleList(GPT2Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def new_cache(self, batch, max_len, dtype):
        blk = self.h[0]
        shape = (batch, blk.heads, max_len, blk.hd)
        return [(torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)) for _ in self.h]

    def forward(self, embeds, cache=None, past=0):  # (B, T, D) -> hidden after ln_f (B, T, D)
        x = embeds + self.wpe.weight[past:past + embeds.shape[1]]
        for i, blk in enumerate(self.h):
            x = blk(x, None if cache is None else cache[i], past)
        return self.ln_f(x)

    def logits(self, hidden):  # (..., D) -> (..., V)
        return F.linear(hidden, self.wte.weight)


class Captioner(nn.Module):
    def __init__(self):
        super().__init__()
        self.clip, self.mapping, self.gpt2 = CLIPVision(), Mapping(), GPT2()

    def prefix(self, px):  # (B, 3, 224, 224) float32 -> (B, ep_len, D) in the model's dtype
        return self.mapping(self.clip(px.to(self.gpt2.wte.weight.dtype)))


def next_token(logits, step, min_len):  # (B, V) greedy, EOS banned before min_len
    if step < min_len:
        logits[:, EOS] = float("-inf")
    return logits.argmax(dim=-1)


PHASES = {}  # seconds of the last caption_cached call per phase


def caption_cached(model, px, n_tokens):
    """(a): batched greedy decoding with a preallocated KV cache. Returns (B, n_tokens) ids."""
    g = model.gpt2
    t0 = time.perf_counter()
    pooled = model.clip(px.to(g.wte.weight.dtype))  # (B, D)
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
