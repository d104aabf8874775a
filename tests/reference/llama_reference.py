"""PyTorch oracle for the decoder architectures (Llama, Mistral, Qwen2, Qwen3, Gemma 1-3), written
from the HF modeling code's math (transformers' modeling_llama, modeling_qwen3, modeling_gemma*):
- Qwen3's q_norm and k_norm are RMSNorms over each head's head_dim values, applied before RoPE;
- sliding-window layers mask keys older than the window (masking_utils' sliding_window_overlay);
- Gemma's norms apply (1 + w); Gemma 2/3 normalise the attention's output and wrap the MLP in
  pre/post norms, scale queries by query_pre_attn_scalar, and Gemma 2 soft-caps scores and logits.
Makes small random models as HF directories (config.json + model.safetensors written here,
independently of Forge), then stores reference logits and greedy continuations in HDF5.

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
import torch.nn.functional as F

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
    # Sliding windows shorter than the 40 ids and the 8 + 64 greedy tokens: on every layer (Mistral
    # 7B v0.1), from max_window_layers on (Qwen2), where layer_types says (it outranks
    # max_window_layers, as in transformers' Qwen3Config)
    "mistral_window": dict(
        architectures=["MistralForCausalLM"], model_type="mistral", num_attention_heads=4, num_key_value_heads=2,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, rope_theta=10000.0,
        max_position_embeddings=256, sliding_window=12),
    "qwen2_window_layers": dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", num_attention_heads=4, num_key_value_heads=2,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, rope_theta=1000000.0,
        max_position_embeddings=256, use_sliding_window=True, sliding_window=9, max_window_layers=1),
    "qwen3_layer_types": dict(
        architectures=["Qwen3ForCausalLM"], model_type="qwen3", num_attention_heads=4, num_key_value_heads=2,
        head_dim=32, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, rope_theta=1000000.0,
        max_position_embeddings=256, attention_bias=False, use_sliding_window=True, sliding_window=16,
        max_window_layers=2, layer_types=["sliding_attention", "full_attention"]),
    # Gemma: (1 + w) norms, GeGLU, embeddings times sqrt(hidden), head_dim given
    "gemma_geglu": dict(
        architectures=["GemmaForCausalLM"], model_type="gemma", num_attention_heads=4, num_key_value_heads=1,
        head_dim=32, tie_word_embeddings=True, bos_token_id=2, eos_token_id=1, rope_theta=10000.0,
        max_position_embeddings=256, hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh"),
    # Gemma 2: sandwich norms, a query scale other than head_dim's, both soft-caps small enough to
    # bite, a window of 10 on layers 0 and 2 (of 3)
    "gemma2_softcap": dict(
        architectures=["Gemma2ForCausalLM"], model_type="gemma2", num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, tie_word_embeddings=True, bos_token_id=2, eos_token_id=1,
        rope_theta=10000.0, max_position_embeddings=256, hidden_act="gelu_pytorch_tanh",
        hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=4, sliding_window=10,
        attn_logit_softcapping=0.3, final_logit_softcapping=1.0),
    # Gemma 3 as transformers 4 writes it: QK-norm, sliding_window_pattern 3 (layers 0, 1 slide),
    # rope_local_base_freq on them, linear rope scaling on the global layer only
    "gemma3_pattern": dict(
        architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, tie_word_embeddings=True, bos_token_id=2, eos_token_id=[1, 106],
        rope_theta=1000000.0, rope_local_base_freq=10.0, rope_scaling=dict(rope_type="linear", factor=8.0),
        max_position_embeddings=256, hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=32,
        sliding_window=12, sliding_window_pattern=3, final_logit_softcapping=None, attn_logit_softcapping=None),
    # Gemma 3 as transformers 5 writes it: layer_types and rope_parameters per layer type
    "gemma3_rope_parameters": dict(
        architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", num_attention_heads=4, num_key_value_heads=1,
        head_dim=16, tie_word_embeddings=True, bos_token_id=2, eos_token_id=1, max_position_embeddings=256,
        hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=16, sliding_window=9,
        layer_types=["full_attention", "sliding_attention"],
        rope_parameters={"full_attention": dict(rope_type="linear", factor=4.0, rope_theta=100000.0),
                         "sliding_attention": dict(rope_type="default", rope_theta=50.0)}),
    # Qwen3 with YaRN (its long-context recipe): the ramp between kept and divided frequencies falls
    # inside the 16 frequencies; cos and sin carry 0.1 ln(4) + 1
    "qwen3_yarn": dict(
        architectures=["Qwen3ForCausalLM"], model_type="qwen3", num_attention_heads=4, num_key_value_heads=2,
        head_dim=32, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, rope_theta=10000.0,
        max_position_embeddings=256, attention_bias=False, use_sliding_window=False,
        rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=64)),
    # SmolLM3: layers 1 and 3 (of 4) without RoPE (no_rope_layer_interval 2)
    "smollm3_nope": dict(
        architectures=["SmolLM3ForCausalLM"], model_type="smollm3", num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, rope_theta=2000000.0,
        max_position_embeddings=256, use_sliding_window=False, no_rope_layer_interval=2),
    # Phi-3: fused qkv_proj and gate_up_proj, RoPE on 12 of 16 dims, Phi-3-mini's window on every layer
    "phi3_fused_window": dict(
        architectures=["Phi3ForCausalLM"], model_type="phi3", num_attention_heads=4, num_key_value_heads=2,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, rope_theta=10000.0, partial_rotary_factor=0.75,
        max_position_embeddings=256, original_max_position_embeddings=256, sliding_window=12, rope_scaling=None),
    # Phi-4-mini's shape: tied, one kv head, longrope with the short factors (every sequence here is
    # shorter than the original 128) and cos/sin times sqrt(1 + ln 4 / ln 128)
    "phi4mini_longrope": dict(
        architectures=["Phi3ForCausalLM"], model_type="phi3", num_attention_heads=4, num_key_value_heads=1,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, rope_theta=10000.0, partial_rotary_factor=0.75,
        max_position_embeddings=512, original_max_position_embeddings=128, sliding_window=262144,
        rope_scaling=dict(type="longrope", short_factor=[1.0, 1.1, 1.3, 1.6, 2.0, 2.5],
                          long_factor=[1.5, 2.0, 3.0, 5.0, 8.0, 12.0])),
    # ... and past an original context of 4: the long factors, from the 8-token prompt on
    "phi3_longrope_long": dict(
        architectures=["Phi3ForCausalLM"], model_type="phi3", num_attention_heads=4, num_key_value_heads=4,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, rope_theta=10000.0,
        max_position_embeddings=128, original_max_position_embeddings=4,
        rope_scaling=dict(rope_type="longrope", short_factor=[1.0] * 8, long_factor=[1.0 + i for i in range(8)])),
}
COMMON = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, vocab_size=256, rms_norm_eps=1e-5,
              hidden_act="silu", torch_dtype="float32")


def original_len(cfg, rs):
    """yarn / longrope's pretraining context: rope_scaling's, else Phi-3's top-level field, else max."""
    return (rs.get("original_max_position_embeddings") or cfg.get("original_max_position_embeddings")
            or cfg["max_position_embeddings"])


def inv_freq(cfg, dim, theta=None, rs="config", seq_len=0):
    """(inverse frequencies [dim / 2], attention factor on cos and sin) as transformers'
    _compute_<rope_type>_parameters; longrope takes its long factors past the original context."""
    f = 1.0 / ((theta or cfg["rope_theta"]) ** (torch.arange(0, dim, 2, dtype=torch.int64).double() / dim))
    rs = cfg.get("rope_scaling") if rs == "config" else rs
    kind = rs.get("rope_type", rs.get("type")) if rs else "default"
    att = 1.0
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
    elif kind == "yarn":
        base, factor, old = theta or cfg["rope_theta"], rs["factor"], original_len(cfg, rs)
        fast, slow = rs.get("beta_fast", 32), rs.get("beta_slow", 1)

        def corr(rot):  # the dim whose wavelength turns `rot` times over the original context
            return dim * math.log(old / (rot * 2 * math.pi)) / (2 * math.log(base))
        low, high = max(math.floor(corr(fast)), 0), min(math.ceil(corr(slow)), dim - 1)
        high = high + 0.001 if low == high else high
        ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1).double()
        keep = 1 - ramp  # 1: the frequency as it is (extrapolation); 0: divided by factor
        f = f / factor * (1 - keep) + f * keep
        att = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0
    elif kind in ("longrope", "su"):
        old = original_len(cfg, rs)
        factor = rs.get("factor") or cfg["max_position_embeddings"] / old
        ext = rs["long_factor"] if seq_len > old else rs["short_factor"]
        f = f / torch.tensor(ext, dtype=torch.float64)
        att = math.sqrt(1 + math.log(factor) / math.log(old)) if factor > 1 else 1.0
    return f.float(), att


def layer_inv_freqs(cfg, D, windows, seq_len):
    """Each layer's rotary frequencies: Gemma 3's sliding layers use rope_local_base_freq unscaled
    (transformers 4) or rope_parameters["sliding_attention"] (5); every other layer the global rope."""
    rp = cfg.get("rope_parameters")
    if rp and "full_attention" in rp:
        glob = inv_freq(cfg, D, rp["full_attention"]["rope_theta"], rp["full_attention"])
        local = inv_freq(cfg, D, rp["sliding_attention"]["rope_theta"], None)
    else:
        glob = inv_freq(cfg, D, seq_len=seq_len)
        local = inv_freq(cfg, D, cfg["rope_local_base_freq"], None) if is_gemma3(cfg) else glob
    return [local if w else glob for w in windows]


def is_gemma(cfg):
    return cfg["model_type"] in ("gemma", "gemma2", "gemma3_text")


def is_gemma3(cfg):
    return cfg["model_type"] == "gemma3_text"


def rms_norm(x, w, eps, unit_offset=False):
    """LlamaRMSNorm, or GemmaRMSNorm's x * (1 + w) with unit_offset."""
    v = x.pow(2).mean(-1, keepdim=True)
    return (1 + w if unit_offset else w) * (x * torch.rsqrt(v + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def layer_windows(cfg):
    """Each layer's window (0: full), by the rules of transformers' Mistral/Qwen2/Qwen3/Gemma configs."""
    n = cfg["num_hidden_layers"]
    if cfg["model_type"] in ("mistral", "phi3"):  # every layer
        return [cfg.get("sliding_window") or 0] * n
    if cfg["model_type"] in ("gemma2", "gemma3_text"):  # Gemma 2: every other layer; Gemma 3: 5 in 6
        pattern = 2 if cfg["model_type"] == "gemma2" else cfg.get("sliding_window_pattern", 6)
        types = cfg.get("layer_types") or [
            "sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]
        return [cfg["sliding_window"] if t == "sliding_attention" else 0 for t in types]
    if cfg["model_type"] in ("qwen2", "qwen3", "smollm3") and cfg.get("use_sliding_window"):
        w = cfg["sliding_window"]
        types = cfg.get("layer_types") or [
            "sliding_attention" if i >= cfg.get("max_window_layers", n) else "full_attention" for i in range(n)]
        return [w if t == "sliding_attention" else 0 for t in types]
    return [0] * n


def causal_mask(T, window):
    """Query i sees key j when j <= i and, with a window, i - j < window (HF's sliding_window_overlay)."""
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    keep = j <= i
    if window:
        keep &= j > i - window
    return torch.where(keep, 0.0, float("-inf"))


def rope_tables(freq, T):
    inv_f, att = freq
    ang = torch.arange(T).float()[:, None] * inv_f[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    return emb.cos() * att, emb.sin() * att


def rope(x, cos, sin):
    """rotate_half RoPE over the first cos.shape[-1] dims (partial rotary: the rest pass, as Phi-3)."""
    R = cos.shape[-1]
    r, rest = x[..., :R], x[..., R:]
    return torch.cat([r * cos + rotate_half(r) * sin, rest], dim=-1)


def rotates(cfg, layer):
    """SmolLM3's no_rope_layers: 1 where the layer applies RoPE; by default every fourth does not."""
    if cfg["model_type"] != "smollm3":
        return True
    n = cfg["num_hidden_layers"]
    flags = cfg.get("no_rope_layers") or [int((i + 1) % cfg.get("no_rope_layer_interval", 4) != 0) for i in range(n)]
    return bool(flags[layer])


def unfuse(cfg, W):
    """Phi-3's fused qkv_proj and gate_up_proj as the separate projections they compute (rows q, k,
    v; gate then up), so one forward serves every family."""
    if cfg["model_type"] != "phi3":
        return W
    W = dict(W)
    H, Hkv, D, F = cfg["num_attention_heads"], cfg["num_key_value_heads"], head_dim(cfg), cfg["intermediate_size"]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        q, k, v = W.pop(p + "self_attn.qkv_proj.weight").split([H * D, Hkv * D, Hkv * D])
        W[p + "self_attn.q_proj.weight"], W[p + "self_attn.k_proj.weight"], W[p + "self_attn.v_proj.weight"] = q, k, v
        W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"] = W.pop(p + "mlp.gate_up_proj.weight").split([F, F])
    return W


def head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def softcap(x, cap):
    return cap * torch.tanh(x / cap) if cap else x


def forward(cfg, W, ids):
    """ids [B, T] -> logits [B, T, V], no cache (the oracle recomputes everything)."""
    B, T = ids.shape
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps, gemma = cfg["rms_norm_eps"], is_gemma(cfg)
    sandwich = cfg["model_type"] in ("gemma2", "gemma3_text")

    def norm(x, name):
        return rms_norm(x, W[name], eps, unit_offset=gemma)

    scale = cfg.get("query_pre_attn_scalar", D) ** -0.5 if sandwich else D ** -0.5
    windows = layer_windows(cfg)
    R = int(D * cfg.get("partial_rotary_factor", 1.0))
    freqs = layer_inv_freqs(cfg, R, windows, T)
    W = unfuse(cfg, W)
    x = W["model.embed_tokens.weight"][ids]
    if gemma:  # embeddings times sqrt(hidden), a scalar of the weights' dtype
        x = x * torch.tensor(cfg["hidden_size"] ** 0.5, dtype=x.dtype)
    for l in range(cfg["num_hidden_layers"]):
        mask = causal_mask(T, windows[l])
        cos, sin = rope_tables(freqs[l], T)
        p = f"model.layers.{l}."
        h = norm(x, p + "input_layernorm.weight")

        def proj(name):
            y = h @ W[p + f"self_attn.{name}.weight"].T
            b = W.get(p + f"self_attn.{name}.bias")
            return y + b if b is not None else y

        q = proj("q_proj").view(B, T, H, D)
        k = proj("k_proj").view(B, T, Hkv, D)
        if cfg["model_type"] in ("qwen3", "gemma3_text"):  # QK-norm: over each head before RoPE
            q = norm(q, p + "self_attn.q_norm.weight")
            k = norm(k, p + "self_attn.k_norm.weight")
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = proj("v_proj").view(B, T, Hkv, D).transpose(1, 2)
        if rotates(cfg, l):
            q, k = rope(q, cos, sin), rope(k, cos, sin)
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
        s = softcap(q @ k.transpose(-1, -2) * scale, cfg.get("attn_logit_softcapping")) + mask
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * D)
        o = a @ W[p + "self_attn.o_proj.weight"].T
        if sandwich:  # Gemma 2/3: the attention's output is normalised, then a norm before the MLP
            x = x + norm(o, p + "post_attention_layernorm.weight")
            h = norm(x, p + "pre_feedforward_layernorm.weight")
        else:
            x = x + o
            h = norm(x, p + "post_attention_layernorm.weight")
        gate = h @ W[p + "mlp.gate_proj.weight"].T
        act = F.gelu(gate, approximate="tanh") if gemma else F.silu(gate)
        m = (act * (h @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
        x = x + (norm(m, p + "post_feedforward_layernorm.weight") if sandwich else m)
    x = norm(x, "model.norm.weight")
    head = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    return softcap(x @ head.T, cfg.get("final_logit_softcapping"))


def make_weights(cfg, gen, std=0.05):
    C, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or C // H
    bias = cfg["model_type"] == "qwen2"
    one = 0.0 if is_gemma(cfg) else 1.0  # Gemma's norms apply 1 + w: near zero is near identity
    W = {"model.embed_tokens.weight": torch.randn(V, C, generator=gen) * std}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        for n, (o, i) in dict(q_proj=(H * D, C), k_proj=(Hkv * D, C), v_proj=(Hkv * D, C), o_proj=(C, H * D)).items():
            W[p + f"self_attn.{n}.weight"] = torch.randn(o, i, generator=gen) * std
            if bias and n != "o_proj":
                W[p + f"self_attn.{n}.bias"] = torch.randn(o, generator=gen) * std
        for n, (o, i) in dict(gate_proj=(F, C), up_proj=(F, C), down_proj=(C, F)).items():
            W[p + f"mlp.{n}.weight"] = torch.randn(o, i, generator=gen) * std
        if cfg["model_type"] == "phi3":  # fused as Phi-3 stores them
            W[p + "self_attn.qkv_proj.weight"] = torch.cat([W.pop(p + f"self_attn.{n}_proj.weight") for n in "qkv"])
            W[p + "mlp.gate_up_proj.weight"] = torch.cat([W.pop(p + "mlp.gate_proj.weight"),
                                                          W.pop(p + "mlp.up_proj.weight")])
        if cfg["model_type"] in ("qwen3", "gemma3_text"):
            W[p + "self_attn.q_norm.weight"] = one + 0.1 * torch.randn(D, generator=gen)
            W[p + "self_attn.k_norm.weight"] = one + 0.1 * torch.randn(D, generator=gen)
        norms = ["input_layernorm", "post_attention_layernorm"]
        if cfg["model_type"] in ("gemma2", "gemma3_text"):
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        for n in norms:
            W[p + n + ".weight"] = one + 0.1 * torch.randn(C, generator=gen)
    W["model.norm.weight"] = one + 0.1 * torch.randn(C, generator=gen)
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
