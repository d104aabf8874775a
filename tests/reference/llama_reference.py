"""PyTorch oracle for the decoder architectures (Llama, Mistral, Qwen2, Qwen3), written from the
HF modeling code's math (transformers' modeling_llama / modeling_qwen3: Qwen3's q_norm and k_norm
are RMSNorms over each head's head_dim values, applied before RoPE). Makes small random models as HF directories (config.json + model.safetensors written
here, independently of Forge), then stores reference logits and greedy continuations in HDF5.

usage: llama_reference.py OUT_DIR   (writes OUT_DIR/<variant>/ and OUT_DIR/llama_reference.h5)
"""
import json
import math
import os
import struct
import sys

import h5py
import numpy as np
import torch

torch.set_num_threads(2)

VARIANTS = {
    # GQA, separate lm_head, llama3 rope scaling, eos as a list
    "llama_gqa_llama3rope": dict(
        architectures=["LlamaForCausalLM"], model_type="llama", num_attention_heads=4, num_key_value_heads=2,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=[2, 3],
        rope_theta=500000.0, max_position_embeddings=256,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=64)),
    # tied embeddings, full multi-head attention, linear rope scaling
    "llama_tied_linear": dict(
        architectures=["LlamaForCausalLM"], model_type="llama", num_attention_heads=4, num_key_value_heads=4,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, rope_theta=10000.0,
        max_position_embeddings=256, rope_scaling=dict(type="linear", factor=2.0)),
    # bias on q/k/v, GQA, tied
    "qwen2_bias": dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", num_attention_heads=4, num_key_value_heads=1,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, rope_theta=1000000.0,
        max_position_embeddings=256, use_sliding_window=False),
    "mistral_gqa": dict(
        architectures=["MistralForCausalLM"], model_type="mistral", num_attention_heads=4, num_key_value_heads=2,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, rope_theta=10000.0,
        max_position_embeddings=256, sliding_window=None),
    # Mistral-Nemo's shape: head_dim given and larger than hidden / heads (q is wider than hidden)
    "mistral_nemo_headdim": dict(
        architectures=["MistralForCausalLM"], model_type="mistral", num_attention_heads=4, num_key_value_heads=2,
        head_dim=32, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, rope_theta=1000000.0,
        max_position_embeddings=256, sliding_window=None),
    # Llama 3.2's: tied embeddings with llama3 rope scaling
    "llama32_tied_llama3rope": dict(
        architectures=["LlamaForCausalLM"], model_type="llama", num_attention_heads=4, num_key_value_heads=1,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=[2, 3], rope_theta=500000.0,
        max_position_embeddings=256,
        rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=64)),
    # QK-norm, head_dim given (not hidden / heads), GQA, tied (the small sizes' layout)
    "qwen3_qknorm": dict(
        architectures=["Qwen3ForCausalLM"], model_type="qwen3", num_attention_heads=4, num_key_value_heads=2,
        head_dim=32, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, rope_theta=1000000.0,
        max_position_embeddings=256, attention_bias=False, use_sliding_window=False, sliding_window=None),
}
COMMON = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, vocab_size=256, rms_norm_eps=1e-5,
              hidden_act="silu", torch_dtype="float32")


def inv_freq(cfg, head_dim):
    f = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.int64).double() / head_dim))
    rs = cfg.get("rope_scaling")
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "linear":
            f = f / rs["factor"]
        elif kind == "llama3":
            factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
            old = rs["original_max_position_embeddings"]
            lo_w, hi_w = old / lo, old / hi
            wl = 2 * math.pi / f
            g = torch.where(wl > lo_w, f / factor, f)
            smooth = (old / wl - lo) / (hi - lo)
            smoothed = (1 - smooth) * g / factor + smooth * g
            medium = ~(wl < hi_w) & ~(wl > lo_w)
            f = torch.where(medium, smoothed, g)
    return f.float()


def rms_norm(x, w, eps):
    v = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(v + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(cfg, W, ids):
    """ids [B, T] -> logits [B, T, V], no cache (the oracle recomputes everything)."""
    B, T = ids.shape
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    pos = torch.arange(T).float()
    ang = pos[:, None] * inv_freq(cfg, D)[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x = W["model.embed_tokens.weight"][ids]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)

        def proj(name):
            y = h @ W[p + f"self_attn.{name}.weight"].T
            b = W.get(p + f"self_attn.{name}.bias")
            return y + b if b is not None else y

        q = proj("q_proj").view(B, T, H, D)
        k = proj("k_proj").view(B, T, Hkv, D)
        if cfg["model_type"] == "qwen3":  # Qwen3: RMSNorm over each head before RoPE
            q = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = proj("v_proj").view(B, T, Hkv, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
        s = q @ k.transpose(-1, -2) / math.sqrt(D) + mask
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + a @ W[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = torch.nn.functional.silu(h @ W[p + "mlp.gate_proj.weight"].T) * (h @ W[p + "mlp.up_proj.weight"].T)
        x = x + g @ W[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    return x @ head.T


def make_weights(cfg, gen, std=0.05):
    C, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or C // H
    bias = cfg["model_type"] == "qwen2"
    W = {"model.embed_tokens.weight": torch.randn(V, C, generator=gen) * std}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        for n, (o, i) in dict(q_proj=(H * D, C), k_proj=(Hkv * D, C), v_proj=(Hkv * D, C), o_proj=(C, H * D)).items():
            W[p + f"self_attn.{n}.weight"] = torch.randn(o, i, generator=gen) * std
            if bias and n != "o_proj":
                W[p + f"self_attn.{n}.bias"] = torch.randn(o, generator=gen) * std
        for n, (o, i) in dict(gate_proj=(F, C), up_proj=(F, C), down_proj=(C, F)).items():
            W[p + f"mlp.{n}.weight"] = torch.randn(o, i, generator=gen) * std
        if cfg["model_type"] == "qwen3":
            W[p + "self_attn.q_norm.weight"] = 1 + 0.1 * torch.randn(D, generator=gen)
            W[p + "self_attn.k_norm.weight"] = 1 + 0.1 * torch.randn(D, generator=gen)
        W[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(C, generator=gen)
        W[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(C, generator=gen)
    W["model.norm.weight"] = 1 + 0.1 * torch.randn(C, generator=gen)
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = torch.randn(V, C, generator=gen) * std
    return W


ST_DTYPE = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def write_safetensors(path, W, dtype=torch.float32, metadata=None):
    """A plain safetensors writer (F32, BF16 or F16), independent of Forge's."""
    header, blobs, off = ({"__metadata__": metadata} if metadata else {}), [], 0
    for name in sorted(W):
        t = W[name].to(dtype).contiguous()
        b = t.numpy().astype("<f4").tobytes() if dtype == torch.float32 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": ST_DTYPE[dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    with h5py.File(os.path.join(out, "llama_reference.h5.tmp"), "w") as h5:
        for name, extra in VARIANTS.items():
            cfg = dict(COMMON, **extra)
            d = os.path.join(out, name)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
            W = make_weights(cfg, gen)
            write_safetensors(os.path.join(d, "model.safetensors"), W)
            with torch.no_grad():
                ids = torch.randint(0, cfg["vocab_size"], (3, 40), generator=gen)
                logits = forward(cfg, W, ids)
                seq = torch.randint(3, cfg["vocab_size"], (1, 8), generator=gen)
                prompt = seq.clone()
                for _ in range(64):  # greedy, recomputing the whole sequence each step
                    nxt = forward(cfg, W, seq)[:, -1].argmax(-1, keepdim=True)
                    seq = torch.cat([seq, nxt], dim=1)
            g = h5.create_group(name)
            g["ids"] = ids.numpy().astype(np.int64)
            g["logits"] = logits.numpy()
            g["prompt"] = prompt.numpy().astype(np.int64)
            g["greedy"] = seq[:, prompt.shape[1]:].numpy().astype(np.int64)
    os.replace(os.path.join(out, "llama_reference.h5.tmp"), os.path.join(out, "llama_reference.h5"))


if __name__ == "__main__":
    main()
