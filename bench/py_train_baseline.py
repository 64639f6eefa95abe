#!/usr/bin/python3
"""Python baseline for the training benchmark (bench/README.md).

    /usr/bin/python3 bench/py_train_baseline.py make-batches --out /tmp/batches.json
    /usr/bin/python3 bench/py_train_baseline.py run --batches /tmp/batches.json --threads 2 \
        --dtype f32 --warmup 2 --steps 5

make-batches writes the caption batches both sides train on: seeded random caption lengths
(--min-len..--max-len tokens, uniform) of random GPT-2 token ids, each followed by EOS, in batches
of --batch. bench/train_bench.cpp reads the same file, so both sides see the same token ids,
lengths and padding, step by step.

run times one training step of the small configuration (upstream ConfigS: mapping = a
TransformerEncoder of 6 post-norm layers, d_model 768, 16 heads, feed-forward 3072, dropout 0.1,
over each image's own length-1 sequence, then Linear(768, 4 * 768) = 4 prefix vectors; GPT-2
small with HF's layout (Conv1D weights [in, out], tied LM head, pdrop 0.1); py_models.py's
training variant), random seeded weights, random 768-d image embeddings (ViT-B/32 pooler_output
width). One step is what upstream-style PyTorch code does and what clipcap's trainer does:

    collate (dynamic padding) -> inputs_embeds = [prefix(4), caption tokens without the last]
    -> GPT-2 -> logits of the positions from the last prefix slot on (B, T, V) -> float32
    -> cross-entropy ignoring padding -> backward -> clip_grad_norm_(params, 1.3)
    -> Adam(lr 3e-3).step() -> zero_grad()

with upstream's freeze policy (trainable: mapping, wte (= the tied LM head), wpe, GPT-2 blocks 0
and 11, ln_f). --dtype bf16 runs the forward and the loss under torch.autocast('cpu', bfloat16)
(weights, gradients and Adam stay float32), like clipcap-train's `autocast: bf16`.

Started as ranks (torchrun: `python3 -m torch.distributed.run --nproc_per_node N ... run`), run
trains with PyTorch's DistributedDataParallel over Gloo, as a PyTorch user scales out: every rank
takes its block of each global batch, DDP all-reduces the gradients in 25 MB buckets overlapped
with backward; the loss is each rank's token sum over the global batch's tokens times the world
size (DDP averages), so the step is the whole batch's token mean, as clipcap-train's. Rank 0
prints the JSON.

One JSON object per run on stdout; progress on stderr. Plain PyTorch (Debian's python3-torch 1.13).
"""
import argparse
import json
import os
import random
import resource
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

from py_models import EOS, Captioner


# The training variant of py_models.py's models: upstream's mapping init and dropout; GPT-2 in HF's
# Conv1D layout (clipcap's too) with dropout, fused gelu_new and a float32 softmax for bf16 scores.
MAPPING_OPTIONS = dict(dropout=0.1, upstream_init=True)
GPT2_OPTIONS = dict(conv1d=True, pdrop=0.1, fused_gelu=True, f32_softmax=True)


def collate(examples):
    """Dynamic padding: tokens (B, T) padded with 0, targets (B, T) with -100; real target count."""
    T = max(len(e) for e in examples)
    tokens = torch.zeros(len(examples), T, dtype=torch.long)
    targets = torch.full((len(examples), T), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        tokens[i, :len(e)] = torch.tensor(e)
        targets[i, :len(e)] = tokens[i, :len(e)]
    return tokens, targets, sum(len(e) for e in examples)


def caption_loss(model, embeds, tokens, targets):
    """The objective: [prefix, tokens[:-1]] as inputs_embeds, the last prefix slot on predicts tokens."""
    g = model.gpt2
    prefix = model.mapping(embeds)  # (B, E, D)
    E, T = prefix.shape[1], tokens.shape[1]
    inputs = torch.cat([prefix, g.wte(tokens[:, :T - 1]).to(prefix.dtype)], dim=1)  # (B, E+T-1, D)
    hidden = g(inputs)[:, E - 1:]  # (B, T, D)
    logits = g.logits(hidden)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100)


class TokenSumLoss(torch.nn.Module):
    """caption_loss summed over the target tokens, as a module DDP can wrap (its forward runs DDP's hooks)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, embeds, tokens, targets, real):
        return caption_loss(self.model, embeds, tokens, targets) * real


def make_batches(args):
    rng = random.Random(args.seed)
    batches = [[[rng.randrange(EOS) for _ in range(rng.randint(args.min_len, args.max_len))] + [EOS]
                for _ in range(args.batch)] for _ in range(args.count)]
    doc = {"what": "caption token ids (caption + EOS) for bench/train_bench.cpp and py_train_baseline.py",
           "seed": args.seed, "batch": args.batch, "min_len": args.min_len, "max_len": args.max_len,
           "eos": EOS, "batches": batches}
    with open(args.out + ".tmp", "w") as f:
        json.dump(doc, f)
    os.replace(args.out + ".tmp", args.out)
    tokens = [sum(len(e) for e in b) for b in batches]
    print(f"py: {args.out}: {args.count} batches of {args.batch}, {min(tokens)}-{max(tokens)} target tokens each",
          file=sys.stderr)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run(args):
    torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    with open(args.batches) as f:
        doc = json.load(f)
    batches = doc["batches"]
    n = args.warmup + args.steps
    if len(batches) < n:
        sys.exit(f"py: {args.batches}: {len(batches)} batches, need --warmup + --steps = {n}")
    torch.manual_seed(args.seed)
    model = Captioner(clip=False, mapping=MAPPING_OPTIONS, gpt2=GPT2_OPTIONS)  # from embeddings: no CLIP
    params = model.trainable()
    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    model.train()
    step_model = TokenSumLoss(model)
    if world > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(step_model)  # broadcasts rank 0's weights
    per_rank = doc["batch"] // world
    if per_rank * world != doc["batch"]:
        sys.exit(f"py: batch {doc['batch']} does not split over {world} ranks")
    say = (lambda *a, **k: print(*a, **k)) if rank == 0 else (lambda *a, **k: None)
    dim = model.mapping.mapper.in_features
    rss_model = peak_rss_mb()
    say(f"py: torch {torch.__version__}, ranks {world}, threads {torch.get_num_threads()}, {sum(p.numel() for p in params):,} "
          f"trainable of {sum(p.numel() for p in model.parameters()):,} parameters", file=sys.stderr)

    times, phases, losses, n_tokens = [], [], [], []
    for i in range(n):
        # Image embeddings: randn from (seed, batch index), the same numbers libtorch draws.
        embeds = torch.randn(len(batches[i]), dim, generator=torch.Generator().manual_seed(args.seed + 1 + i))
        first, last = rank * per_rank, (rank + 1) * per_rank
        global_tokens = sum(len(e) for e in batches[i])
        t0 = time.perf_counter()
        tokens, targets, real = collate(batches[i][first:last])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
            token_sum = step_model(embeds[first:last], tokens, targets, real)
        t1 = time.perf_counter()
        (token_sum * (world / global_tokens)).backward()
        t2 = time.perf_counter()
        loss = token_sum.detach() / global_tokens
        if world > 1:
            dist.all_reduce(loss)
        torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        opt.step()
        opt.zero_grad()
        t3 = time.perf_counter()
        losses.append(loss.item())
        if i >= args.warmup:
            times.append(t3 - t0)
            phases.append({"forward": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2})
            n_tokens.append(global_tokens)
        say(f"py: step {i + 1}/{n}{' (warm-up)' if i < args.warmup else ''}: loss {losses[-1]:.4f}, "
              f"{(t3 - t0) * 1e3:.0f} ms", file=sys.stderr)

    if rank != 0:
        return
    med = statistics.median(times)
    reduced = sum(p.numel() for p in params) * 4 if world > 1 else 0
    rec = {"impl": "python-ddp" if world > 1 else "python", "ranks": world, "samples_per_s": doc["batch"] / med,
           "allreduce_bytes_per_step": reduced, "dtype": args.dtype, "batch": doc["batch"], "threads": torch.get_num_threads(),
           "warmup": args.warmup, "steps": args.steps, "median_s": med, "steps_per_s": 1.0 / med,
           "tokens_per_s": sum(n_tokens) / sum(times), "tokens_per_step": statistics.mean(n_tokens),
           "initial_loss": losses[0], "losses": losses, "times_s": times,
           "phases_median_s": {k: statistics.median(p[k] for p in phases) for k in ("forward", "backward", "optimizer")},
           "peak_rss_mb": peak_rss_mb(), "model_rss_mb": rss_model,
           "trainable_params": sum(p.numel() for p in params)}
    print(f"py: {args.dtype}: median {med * 1e3:.0f} ms/step, {rec['steps_per_s']:.3f} steps/s, "
          f"{rec['tokens_per_s']:.0f} tokens/s, peak RSS {rec['peak_rss_mb']:.0f} MB", file=sys.stderr)
    print(json.dumps(rec), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-batches", help="write the caption batches both sides train on")
    mk.add_argument("--out", required=True)
    mk.add_argument("--count", type=int, default=12, help="number of batches (>= warm-up + timed steps)")
    mk.add_argument("--batch", type=int, default=64)
    mk.add_argument("--min-len", type=int, default=8, help="shortest caption, tokens before EOS")
    mk.add_argument("--max-len", type=int, default=20, help="longest caption, tokens before EOS")
    mk.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run", help="time training steps")
    r.add_argument("--batches", required=True, help="file from make-batches")
    r.add_argument("--dtype", choices=("f32", "bf16"), default="f32", help="bf16: autocast forward")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--warmup", type=int, default=2)
    r.add_argument("--steps", type=int, default=5)
    r.add_argument("--seed", type=int, default=0, help="weights and image embeddings")
    r.add_argument("--lr", type=float, default=3e-3, help="configs/small.json's peak lr")
    r.add_argument("--grad-clip", type=float, default=1.3)
    args = ap.parse_args()
    if args.cmd == "make-batches":
        if not (1 <= args.min_len <= args.max_len) or args.count < 1 or args.batch < 1:
            sys.exit("py: make-batches: need 1 <= --min-len <= --max-len, --count >= 1, --batch >= 1")
        make_batches(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
