"""The PyTorch models of the Python baselines (bench/README.md), one copy for all py_*_baseline.py.

Plain PyTorch, no transformers (Debian's python3-torch 1.13). Defaults are the small
configuration's shapes: CLIP ViT-B/32 vision tower -> upstream ConfigS mapping -> GPT-2 small.
Where the baselines time different variants (captioning: nn.Linear inference; training: HF's
Conv1D layout with dropout), the difference is a constructor option whose default is the
captioning variant, so each baseline runs the same kernels, random weights and numbers as it did
when it had its own copy.
"""
import json
import math
import os
import re
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EOS = 50256  # GPT-2 bos = eos
VOCAB = 50257

_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16}


def load_safetensors(path):
    """{name: float32 tensor} of a .safetensors file (F32, F16 or BF16 tensors)."""
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
            t = torch.from_numpy(np.frombuffer(data[begin:end], _SAFETENSORS_DTYPES[info["dtype"]]).copy()).float()
        out[name] = t.reshape(info["shape"])
    return out


# ---- CLIP vision tower (HF CLIPVisionTransformer, pooler_output = post_layernorm(CLS)) -----------
# `device` only lets load_clip_vision build it without a random init (nn.utils.skip_init).
class CLIPAttention(nn.Module):
    def __init__(self, d, heads, device=None):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d, device=device) for _ in range(4))

    def forward(self, x):  # (B, T, D)
        B, T, D = x.shape
        q, k, v = (p(x).view(B, T, self.heads, self.hd).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        a = torch.softmax((q * self.hd ** -0.5) @ k.transpose(-1, -2), dim=-1) @ v  # (B, H, T, hd)
        return self.out_proj(a.transpose(1, 2).reshape(B, T, D))


class CLIPLayer(nn.Module):
    def __init__(self, d, heads, mlp, eps, device=None):
        super().__init__()
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(d, eps, device=device), nn.LayerNorm(d, eps, device=device)
        self.self_attn = CLIPAttention(d, heads, device)
        self.fc1, self.fc2 = nn.Linear(d, mlp, device=device), nn.Linear(mlp, d, device=device)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        h = self.fc1(self.layer_norm2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))  # quick_gelu


class CLIPVision(nn.Module):
    def __init__(self, image=224, patch=32, d=768, layers=12, heads=12, mlp=3072, eps=1e-5, device=None):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, d, patch, patch, bias=False, device=device)
        self.class_embedding = nn.Parameter(torch.randn(d, device=device) * 0.02)
        self.position_embedding = nn.Embedding((image // patch) ** 2 + 1, d, device=device)
        self.pre_layrnorm = nn.LayerNorm(d, eps, device=device)
        self.post_layernorm = nn.LayerNorm(d, eps, device=device)
        self.layers = nn.ModuleList(CLIPLayer(d, heads, mlp, eps, device) for _ in range(layers))

    def forward(self, px):  # (B, 3, H, W), any float dtype -> pooler_output (B, D) in the weights' dtype
        x = self.patch_embedding(px.to(self.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)  # (B, N, D)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.position_embedding.weight  # (B, N+1, D)
        x = self.pre_layrnorm(x)
        for layer in self.layers:
            x = layer(x)
        return self.post_layernorm(x[:, 0])


def load_clip_vision(clip_dir, dtype):
    """The vision tower of an HF CLIP directory (config.json, model.safetensors), in `dtype`."""
    with open(os.path.join(clip_dir, "config.json")) as f:
        cfg = json.load(f)
    v = cfg.get("vision_config", cfg)
    if v.get("hidden_act", "quick_gelu") != "quick_gelu":
        raise SystemExit("py_models: only quick_gelu CLIP configs")
    # skip_init: the weights come from the file, as from_pretrained does (no random init to time)
    model = nn.utils.skip_init(CLIPVision, v["image_size"], v["patch_size"], v["hidden_size"], v["num_hidden_layers"],
                               v["num_attention_heads"], v["intermediate_size"], v.get("layer_norm_eps", 1e-5))
    # HF's names without the levels CLIPVision does not have (vision_model., embeddings., encoder., mlp.):
    # its flat names are those of the weights run_video_bench.sh saves once and keeps.
    prefix = "vision_model."
    weights = load_safetensors(os.path.join(clip_dir, "model.safetensors"))
    weights = {re.sub(r"^(embeddings|encoder)\.|mlp\.", "", k[len(prefix):]): t
               for k, t in weights.items() if k.startswith(prefix)}
    model.load_state_dict(weights)  # strict: every weight from the file, none left over
    return model.to(dtype)


# ---- upstream mapping: TransformerEncoder (post-norm, ReLU) + Linear(D, ep_len * D) ---------------
class Mapping(nn.Module):
    def __init__(self, d=768, layers=6, heads=16, ff=3072, ep_len=4, dropout=0.0, upstream_init=False):
        """upstream_init: re-initialise the linears as upstream does (kaiming-normal, zero biases) rather
        than keep PyTorch's defaults (what the captioning baselines' random weights were drawn with)."""
        super().__init__()
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=dropout, batch_first=True)
        self.transformer_encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.mapper = nn.Linear(d, ep_len * d)
        self.ep_len = ep_len
        if upstream_init:
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)

    def forward(self, pooled):  # (B, D): each image its own length-1 sequence -> (B, ep_len, D)
        y = self.mapper(self.transformer_encoder(pooled.unsqueeze(1)))  # (B, 1, ep_len*D)
        return y.view(pooled.shape[0], self.ep_len, -1)


# ---- GPT-2 small (lm_head tied to wte) ------------------------------------------------------------
def gelu_new(x):  # GPT-2's tanh GELU written out, as the captioning baselines time it (else fused_gelu)
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def _dropout(x, p, training):  # no call at all when p = 0 (the inference variant)
    return F.dropout(x, p, training) if p else x


class Conv1D(nn.Module):
    """HF GPT-2's projection: weight [in, out], addmm; HF's init N(0, std), zero bias."""

    def __init__(self, n_in, n_out, std=0.02):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * std)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        shape = x.shape[:-1] + (self.weight.shape[1],)
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(shape)


class GPT2Block(nn.Module):
    def __init__(self, d, heads, layers, conv1d, pdrop, fused_gelu, f32_softmax):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.pdrop, self.fused_gelu, self.f32_softmax = pdrop, fused_gelu, f32_softmax
        if conv1d:  # HF's layout and init, the residual projections at 0.02 / sqrt(2 * layers)
            resid_std = 0.02 / math.sqrt(2 * layers)
            proj = lambda n_in, n_out, resid=False: Conv1D(n_in, n_out, resid_std if resid else 0.02)  # noqa: E731
        else:
            proj = lambda n_in, n_out, resid=False: nn.Linear(n_in, n_out)  # noqa: E731
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.attn_proj = proj(d, 3 * d), proj(d, d, True)
        self.c_fc, self.mlp_proj = proj(d, 4 * d), proj(4 * d, d, True)

    def forward(self, x, mask, cache=None, past=0):
        """x (B, T, D); mask (T, P+T) bool, True = hidden, or None; cache: (k_buf, v_buf) of
        (B, H, Pmax, hd), filled up to `past`; None = no cache."""
        B, T, D = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, self.heads, self.hd).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        if cache is not None:
            kb, vb = cache
            kb[:, :, past:past + T] = k
            vb[:, :, past:past + T] = v
            k, v = kb[:, :, :past + T], vb[:, :, :past + T]  # (B, H, P+T, hd)
        s = (q @ k.transpose(-1, -2)) * self.hd ** -0.5  # (B, H, T, P+T)
        if mask is not None:
            s = s.masked_fill(mask, float("-inf"))
        if self.f32_softmax and s.dtype != torch.float32:  # low-precision scores, as clipcap computes them
            w = torch.softmax(s, -1, dtype=torch.float32).to(s.dtype)
        else:
            w = torch.softmax(s, -1)
        a = (_dropout(w, self.pdrop, self.training) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + _dropout(self.attn_proj(a), self.pdrop, self.training)
        h = self.c_fc(self.ln_2(x))
        h = F.gelu(h, approximate="tanh") if self.fused_gelu else gelu_new(h)
        return x + _dropout(self.mlp_proj(h), self.pdrop, self.training)


class GPT2(nn.Module):
    def __init__(self, vocab=VOCAB, n_pos=1024, d=768, layers=12, heads=12,
                 conv1d=False, pdrop=0.0, fused_gelu=False, f32_softmax=False):
        """The defaults are the captioning baselines' inference variant: nn.Linear ([out, in]) with
        PyTorch's init, no dropout, gelu_new written out, softmax in the model's dtype. The training
        baseline's: conv1d (HF's Conv1D [in, out] weights and init, the layout clipcap's GPT-2 keeps),
        pdrop 0.1, fused_gelu (F.gelu tanh), f32_softmax (bf16 scores through a float32 softmax)."""
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(n_pos, d)
        for e in (self.wte, self.wpe):
            nn.init.normal_(e.weight, std=0.02)
        self.h = nn.ModuleList(GPT2Block(d, heads, layers, conv1d, pdrop, fused_gelu, f32_softmax)
                               for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.pdrop = pdrop

    def new_cache(self, batch, max_len, dtype):
        blk = self.h[0]
        shape = (batch, blk.heads, max_len, blk.hd)
        return [(torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)) for _ in self.h]

    def forward(self, embeds, cache=None, past=0):  # inputs_embeds (B, T, D) -> hidden after ln_f (B, T, D)
        T = embeds.shape[1]
        # causal mask; a single new token sees everything before it
        mask = torch.ones(T, past + T, dtype=torch.bool).triu(past + 1) if T > 1 else None
        x = _dropout(embeds + self.wpe.weight[past:past + T], self.pdrop, self.training)
        for i, blk in enumerate(self.h):
            x = blk(x, mask, None if cache is None else cache[i], past)
        return self.ln_f(x)

    def logits(self, hidden):  # (..., D) -> (..., V)
        return F.linear(hidden, self.wte.weight)


class Captioner(nn.Module):
    """Upstream's Net: CLIP vision tower -> mapping -> GPT-2."""

    def __init__(self, clip=True, mapping=None, gpt2=None):
        """clip=False: no vision tower (training starts from image embeddings); mapping, gpt2: keyword
        options of Mapping and GPT2. Built in this order, so a seed gives the same weights."""
        super().__init__()
        self.clip = CLIPVision() if clip else None
        self.mapping = Mapping(**(mapping or {}))
        self.gpt2 = GPT2(**(gpt2 or {}))

    def prefix(self, px):  # (B, 3, 224, 224) float32 -> (B, ep_len, D) in the model's dtype
        return self.mapping(self.clip(px))

    def trainable(self):
        """Upstream's freeze policy: mapping, wte (tied LM head), wpe, first and last block, ln_f."""
        for p in self.parameters():
            p.requires_grad_(False)
        g = self.gpt2
        mods = [self.mapping, g.wte, g.wpe, g.h[0], g.h[-1], g.ln_f]
        for m in mods:
            for p in m.parameters():
                p.requires_grad_(True)
        return [p for m in mods for p in m.parameters()]
