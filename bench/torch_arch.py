"""PyTorch peer for `forge bench infer` / `forge bench train --lora` on the released-model presets
(qwen3-0.6b, gemma3-1b, phi4-mini): the same shapes, eager PyTorch with the math of
tests/reference/llama_reference.py (written from transformers' modeling files), random weights.

  decode: greedy tokens/s at batch 1 after a --prompt-token prompt, with a KV cache per layer
  lora:   training tokens/s of LoRA r 8 on q, k, v, o (forward + cross-entropy + backward + AdamW)
  full:   training tokens/s of a full finetune (every weight trained, AdamW)

usage: OMP_WAIT_POLICY=PASSIVE torch_arch.py --preset qwen3-0.6b --mode decode|lora|full [--dtype f32|bf16]
       [--prompt 128] [--new 128] [--batch 1] [--seq 128] [--steps 2] [--json]
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import llama_reference as L  # noqa: E402

# The presets' configs as their config.json files give them (models/presets.cpp).
PRESETS = {
    "qwen3-0.6b": dict(model_type="qwen3", hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                       num_attention_heads=16, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                       rope_theta=1e6, tie_word_embeddings=True),
    "gemma3-1b": dict(model_type="gemma3_text", hidden_size=1152, intermediate_size=6912, num_hidden_layers=26,
                      num_attention_heads=4, num_key_value_heads=1, head_dim=256, vocab_size=262144,
                      rope_theta=1e6, rope_local_base_freq=1e4, query_pre_attn_scalar=256, sliding_window=512,
                      sliding_window_pattern=6, tie_word_embeddings=True),
    "phi4-mini": dict(model_type="phi3", hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
                      num_attention_heads=24, num_key_value_heads=8, head_dim=128, vocab_size=200064,
                      rope_theta=1e4, partial_rotary_factor=0.75, tie_word_embeddings=True,
                      original_max_position_embeddings=4096,
                      rope_scaling=dict(rope_type="longrope", short_factor=[1.0] * 48, long_factor=[1.0] * 48)),
}


class Model:
    """Weights and a cached forward for one preset; LoRA adapters on q, k, v, o when lora_r > 0."""

    def __init__(self, cfg, dtype, lora_r=0):
        self.cfg, self.dtype = cfg, dtype
        gen = torch.Generator().manual_seed(1234)
        self.W = {k: v.to(dtype) for k, v in L.make_weights(cfg, gen, std=0.02).items()}
        self.W = L.unfuse(cfg, self.W)  # Phi-3: the split projections compute the same products
        H, D = cfg["num_attention_heads"], L.head_dim(cfg)
        self.H, self.Hkv, self.D = H, cfg["num_key_value_heads"], D
        self.R = int(D * cfg.get("partial_rotary_factor", 1.0))
        self.windows = L.layer_windows(cfg)
        self.freqs = L.layer_inv_freqs(cfg, self.R, self.windows, 1)
        self.lora = {}
        if lora_r:
            for name, w in self.W.items():
                if name.split(".")[-2] in ("q_proj", "k_proj", "v_proj", "o_proj"):
                    o, i = w.shape
                    a = (torch.randn(lora_r, i) / math.sqrt(i)).to(dtype).requires_grad_()
                    b = torch.zeros(o, lora_r, dtype=dtype, requires_grad=True)
                    self.lora[name] = (a, b)

    def lin(self, x, name):
        y = x @ self.W[name].T
        if name in self.lora:
            a, b = self.lora[name]
            y = y + (x @ a.T) @ b.T * 2.0  # alpha 16 / r 8
        return y

    def forward(self, ids, cache=None, start=0):
        """ids [B, T] -> logits [B, T, V]; cache: per layer [k, v] lists the new keys extend."""
        cfg, W, gemma = self.cfg, self.W, L.is_gemma(self.cfg)
        sandwich = cfg["model_type"] in ("gemma2", "gemma3_text")
        eps = 1e-6
        B, T = ids.shape
        x = W["model.embed_tokens.weight"][ids]
        if gemma:
            x = x * torch.tensor(cfg["hidden_size"] ** 0.5, dtype=x.dtype)
        scale = cfg.get("query_pre_attn_scalar", self.D) ** -0.5 if sandwich else self.D ** -0.5
        pos = torch.arange(start, start + T)
        for layer in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{layer}."
            norm = lambda t, n: L.rms_norm(t, W[p + n + ".weight"], eps, gemma)  # noqa: E731
            h = norm(x, "input_layernorm")
            q = self.lin(h, p + "self_attn.q_proj.weight").view(B, T, self.H, self.D)
            k = self.lin(h, p + "self_attn.k_proj.weight").view(B, T, self.Hkv, self.D)
            v = self.lin(h, p + "self_attn.v_proj.weight").view(B, T, self.Hkv, self.D).transpose(1, 2)
            if cfg["model_type"] in ("qwen3", "gemma3_text"):
                q, k = norm(q, "self_attn.q_norm"), norm(k, "self_attn.k_norm")
            inv_f, att = self.freqs[layer]
            ang = pos.float()[:, None] * inv_f[None, :]
            emb = torch.cat((ang, ang), -1)
            cos, sin = (emb.cos() * att).to(x.dtype), (emb.sin() * att).to(x.dtype)
            q, k = L.rope(q.transpose(1, 2), cos, sin), L.rope(k.transpose(1, 2), cos, sin)
            if cache is not None:
                if len(cache) <= layer:
                    cache.append([k, v])
                else:
                    cache[layer] = [torch.cat([cache[layer][0], k], 2), torch.cat([cache[layer][1], v], 2)]
                k, v = cache[layer]
            S = k.shape[2]
            i = torch.arange(start, start + T)[:, None]
            j = torch.arange(S)[None, :]
            keep = j <= i
            if self.windows[layer]:
                keep &= j > i - self.windows[layer]
            k, v = k.repeat_interleave(self.H // self.Hkv, 1), v.repeat_interleave(self.H // self.Hkv, 1)
            s = (q @ k.transpose(-1, -2)) * scale  # PyTorch 1.13 (Debian) has no fused SDPA
            a = s.masked_fill(~keep, float("-inf")).softmax(-1) @ v
            o = self.lin(a.transpose(1, 2).reshape(B, T, -1), p + "self_attn.o_proj.weight")
            if sandwich:
                x = x + norm(o, "post_attention_layernorm")
                h = norm(x, "pre_feedforward_layernorm")
            else:
                x = x + o
                h = norm(x, "post_attention_layernorm")
            g = h @ W[p + "mlp.gate_proj.weight"].T
            act = F.gelu(g, approximate="tanh") if gemma else F.silu(g)
            m = (act * (h @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
            x = x + (norm(m, "post_feedforward_layernorm") if sandwich else m)
        x = L.rms_norm(x, W["model.norm.weight"], eps, gemma)
        return x @ W["model.embed_tokens.weight"].T


def report(args, name, value, unit):
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    m = dict(name=name, shape=f"{args.preset}", dtype=args.dtype, threads=torch.get_num_threads(), value=value,
             unit=unit, backend="pytorch", peak_rss_gib=round(rss_gb, 2))
    print(json.dumps(m) if args.json else f"{name:14s} {args.preset:12s} {args.dtype:5s} pytorch "
          f"{m['threads']:2d} threads {value:10.2f} {unit}  peak RSS {rss_gb:.2f} GiB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--mode", required=True, choices=["decode", "lora", "full"])
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    cfg = dict(PRESETS[args.preset], max_position_embeddings=131072, rms_norm_eps=1e-6)
    dtype = torch.float32 if args.dtype == "f32" else torch.bfloat16
    gen = torch.Generator().manual_seed(7)
    if args.mode == "decode":
        model = Model(cfg, dtype)
        with torch.no_grad():
            cache = []
            ids = torch.randint(0, cfg["vocab_size"], (1, args.prompt), generator=gen)
            tok = model.forward(ids, cache)[:, -1].argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for n in range(args.new):
                tok = model.forward(tok, cache, args.prompt + n)[:, -1].argmax(-1, keepdim=True)
            report(args, "infer.decode", args.new / (time.perf_counter() - t0), "tok/s")
        return
    full = args.mode == "full"
    model = Model(cfg, dtype, lora_r=0 if full else 8)
    params = [w.requires_grad_() for w in model.W.values()] if full else [t for ab in model.lora.values() for t in ab]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(0, cfg["vocab_size"], (args.batch, args.seq + 1), generator=gen)
    times = []
    for _ in range(args.steps + 1):  # the first step warms up
        t0 = time.perf_counter()
        logits = model.forward(ids[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    report(args, "train." + args.mode, args.batch * args.seq / (sorted(times[1:])[len(times[1:]) // 2]), "tok/s")


if __name__ == "__main__":
    main()
