"""Checks Forge's outputs with a reader that shares no code with Forge (json + struct + torch).

usage: check_peft_files.py adapter ADAPTER_DIR BASE_DIR
         PEFT layout: adapter_config.json fields and types, tensor names, shapes and dtype.
       check_peft_files.py merged BASE_DIR ADAPTER_DIR MERGED_DIR
         The merged weights equal W + scale * B @ A computed here, and a forward pass over the
         merged directory gives the logits of base + adapter.
"""
import json
import math
import os
import re
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import forward  # noqa: E402

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        raw = bytearray(data[b:end])
        t = torch.frombuffer(raw, dtype=torch.int16 if dt != torch.float32 else torch.float32)
        t = t.view(dt) if dt != torch.float32 else t
        out[name] = (t.reshape(e["shape"]).float(), e["dtype"])
    return out


def read_weights(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if not os.path.exists(idx):
        return read_safetensors(os.path.join(d, "model.safetensors"))
    out = {}
    for shard in sorted(set(json.load(open(idx))["weight_map"].values())):
        out.update(read_safetensors(os.path.join(d, shard)))
    return out


def check(cond, msg):
    if not cond:
        sys.exit("FAIL: " + msg)


def check_adapter(adapter, base):
    cfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
    bcfg = json.load(open(os.path.join(base, "config.json")))
    for key, typ in (("peft_type", str), ("r", int), ("lora_alpha", (int, float)), ("target_modules", (list, str)),
                     ("lora_dropout", (int, float)), ("bias", str), ("use_rslora", bool), ("task_type", str),
                     ("base_model_name_or_path", str)):
        check(key in cfg and isinstance(cfg[key], typ), f"adapter_config.json: '{key}' missing or of the wrong type")
    check(cfg["peft_type"] == "LORA" and cfg["task_type"] == "CAUSAL_LM" and cfg["bias"] == "none", "config values")
    r, C = cfg["r"], bcfg["hidden_size"]
    H, Hkv, F = bcfg["num_attention_heads"], bcfg["num_key_value_heads"], bcfg["intermediate_size"]
    D = C // H
    shapes = dict(q_proj=(H * D, C), k_proj=(Hkv * D, C), v_proj=(Hkv * D, C), o_proj=(C, H * D),
                  gate_proj=(F, C), up_proj=(F, C), down_proj=(C, F))
    tensors = read_safetensors(os.path.join(adapter, "adapter_model.safetensors"))
    pat = re.compile(r"base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])\.weight")
    seen = set()
    for name, (t, dt) in tensors.items():
        m = pat.fullmatch(name)
        check(m is not None, f"tensor name '{name}' is not PEFT's")
        layer, mod, ab = int(m.group(1)), m.group(3), m.group(4)
        check(layer < bcfg["num_hidden_layers"] and mod in shapes, f"'{name}' names no module of the base")
        o, i = shapes[mod]
        want = (r, i) if ab == "A" else (o, r)
        check(tuple(t.shape) == want, f"'{name}' has shape {tuple(t.shape)}, PEFT's is {want}")
        check(dt == "F32", f"'{name}' is {dt}")
        check(torch.isfinite(t).all(), f"'{name}' has non-finite values")
        seen.add(mod)
    if isinstance(cfg["target_modules"], list):
        check(seen == set(cfg["target_modules"]), f"target_modules {cfg['target_modules']} vs tensors for {seen}")
    print(f"adapter ok: {len(tensors)} tensors, r={r}, modules {sorted(seen)}")


def check_merged(base, adapter, merged):
    cfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
    bcfg = json.load(open(os.path.join(base, "config.json")))
    mcfg = json.load(open(os.path.join(merged, "config.json")))
    check(mcfg["architectures"] == bcfg["architectures"] and mcfg["hidden_size"] == bcfg["hidden_size"], "config.json")
    for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        check(os.path.exists(os.path.join(merged, f)), f"merged dir lacks {f}")
    scale = cfg["lora_alpha"] / (math.sqrt(cfg["r"]) if cfg["use_rslora"] else cfg["r"])
    W = {k: v for k, (v, _) in read_weights(base).items()}
    M = {k: v for k, (v, _) in read_weights(merged).items()}
    L = {k: v for k, (v, _) in read_safetensors(os.path.join(adapter, "adapter_model.safetensors")).items()}
    check(set(W) == set(M), "merged tensors differ from the base's names")
    want = dict(W)
    for name in L:
        if name.endswith("lora_A.weight"):
            mod = name[len("base_model.model."):-len(".lora_A.weight")]
            want[mod + ".weight"] = W[mod + ".weight"] + scale * (L[name.replace("lora_A", "lora_B")] @ L[name])
    worst = max(((M[k] - want[k]).abs().max() / want[k].abs().max()).item() for k in W)
    check(worst < 1e-5, f"merged weights differ from W + scale B A by {worst:.2e}")
    ids = torch.randint(0, bcfg["vocab_size"], (2, 16), generator=torch.Generator().manual_seed(0))
    cfg_fwd = dict(bcfg, rope_scaling=bcfg.get("rope_scaling"))
    with torch.no_grad():
        a, b = forward(cfg_fwd, M, ids), forward(cfg_fwd, want, ids)
    err = ((a - b).abs().max() / b.abs().max()).item()
    check(err < 1e-4, f"merged logits differ from base + adapter by {err:.2e}")
    print(f"merged ok: {len(M)} tensors, weights within {worst:.1e}, logits within {err:.1e}")


if __name__ == "__main__":
    if sys.argv[1] == "adapter":
        check_adapter(sys.argv[2], sys.argv[3])
    else:
        check_merged(sys.argv[2], sys.argv[3], sys.argv[4])
