"""PyTorch oracle for LoRA: a random Llama base (HF directory) and a random PEFT adapter written
here in PEFT's layout (F32, BF16 and F16 copies, written without Forge or PEFT code), with the
logits of base + adapter, a loss, and the gradient of every lora_A / lora_B weight.

LoRA as PEFT computes it: y = x W^T + scale * (x A^T) B^T, scale = alpha / r (rsLoRA: / sqrt(r)).

usage: lora_reference.py OUT_DIR   (writes OUT_DIR/base/, OUT_DIR/adapter_{f32,bf16,f16}/, OUT_DIR/lora_reference.h5)
"""
import json
import math
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import COMMON, VARIANTS, forward, make_weights, write_safetensors  # noqa: E402

torch.set_num_threads(2)
R, ALPHA = 4, 8.0
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "qkv_proj", "gate_up_proj"]
# Other architectures' bases with an f32 adapter each (OUT_DIR/arch_<variant>/), gradients in the
# HDF5 group arch_<variant>.
ARCH_VARIANTS = ["qwen3_qknorm", "mistral_nemo_headdim", "llama32_tied_llama3rope", "gemma_geglu", "gemma2_softcap",
                 "gemma3_pattern", "qwen3_yarn", "smollm3_nope", "phi3_fused_window", "phi4mini_longrope"]


def adapted_loss(cfg, W, AB, ids, labels, scale):
    """Logits and mean cross-entropy of base W with each adapter (A, B) of AB merged in."""
    Wl = dict(W)
    for m, (a, b) in AB.items():
        Wl[m + ".weight"] = W[m + ".weight"] + scale * (b @ a)
    logits = forward(cfg, Wl, ids)
    return logits, torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def lora_pass(cfg, W, lora, ids, labels, dtype, scale):
    """Logits, loss and the lora_A / lora_B gradients of base W plus the adapter `lora`."""
    AB = {m: (a.to(dtype).float().clone().requires_grad_(), b.to(dtype).float().clone().requires_grad_())
          for m, (a, b) in lora.items()}
    logits, loss = adapted_loss(cfg, W, AB, ids, labels, scale)
    loss.backward()
    return AB, logits, loss


def train_losses(cfg, W, lora, ids, labels, scale, steps=5):
    """The losses of `steps` AdamW steps (lr 1e-2, weight decay 0.01) on the adapter alone, one
    fixed batch: what a short LoRA run logs."""
    AB = {m: (a.clone().requires_grad_(), b.clone().requires_grad_()) for m, (a, b) in lora.items()}
    opt = torch.optim.AdamW([t for ab in AB.values() for t in ab], lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.01)
    losses = []
    for _ in range(steps):
        _, loss = adapted_loss(cfg, W, AB, ids, labels, scale)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return np.array(losses)


def write_base(d, cfg, gen):
    """A random base model of cfg as an HF directory d (config.json, model.safetensors); its weights."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    W = make_weights(cfg, gen)
    write_safetensors(os.path.join(d, "model.safetensors"), W)
    return W


def random_lora(W, gen):
    """Random A and B (B nonzero, unlike a fresh adapter, so every gradient path is exercised)."""
    lora = {}
    for name in sorted(W):
        mod = name[: -len(".weight")]
        if mod.split(".")[-1] in TARGETS:
            o, i = W[name].shape
            lora[mod] = (torch.randn(R, i, generator=gen) * 0.2, torch.randn(o, R, generator=gen) * 0.2)
    return lora


def write_adapter(d, AB, dtype, rslora):
    os.makedirs(d, exist_ok=True)
    tensors = {}
    for m, (a, b) in AB.items():
        tensors[f"base_model.model.{m}.lora_A.weight"] = a.detach()
        tensors[f"base_model.model.{m}.lora_B.weight"] = b.detach()
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors, dtype, {"format": "pt"})
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(dict(peft_type="LORA", task_type="CAUSAL_LM", r=R, lora_alpha=ALPHA, lora_dropout=0.0,
                       target_modules=TARGETS, bias="none", use_rslora=rslora, fan_in_fan_out=False,
                       modules_to_save=None, base_model_name_or_path="base", use_dora=False), f, indent=2)


def write_group(g, AB, logits, loss):
    g["logits"] = logits.detach().numpy()
    g["loss"] = np.array([loss.item()])
    for m, (a, b) in AB.items():
        g[f"grad/{m}.lora_A.weight"] = a.grad.numpy()
        g[f"grad/{m}.lora_B.weight"] = b.grad.numpy()


def main():
    out = sys.argv[1]
    gen = torch.Generator().manual_seed(4321)
    cfg = dict(COMMON, **VARIANTS["llama_gqa_llama3rope"])
    W = write_base(os.path.join(out, "base"), cfg, gen)

    lora = random_lora(W, gen)
    ids = torch.randint(0, cfg["vocab_size"], (2, 24), generator=gen)
    labels = torch.randint(0, cfg["vocab_size"], (2, 24), generator=gen)
    labels[0, :5] = -100  # some positions carry no loss

    with h5py.File(os.path.join(out, "lora_reference.h5.tmp"), "w") as h5:
        h5["ids"] = ids.numpy().astype(np.int64)
        h5["labels"] = labels.numpy().astype(np.int64)
        for tag, dtype, rslora in (("f32", torch.float32, False), ("bf16", torch.bfloat16, False),
                                   ("f16", torch.float16, False), ("rslora", torch.float32, True)):
            # The values as stored: rounded to the file's dtype, computed in f32.
            AB, logits, loss = lora_pass(cfg, W, lora, ids, labels, dtype, ALPHA / math.sqrt(R) if rslora else ALPHA / R)
            write_adapter(os.path.join(out, "adapter_" + tag), AB, dtype, rslora)
            write_group(h5.create_group(tag), AB, logits, loss)
        for variant in ARCH_VARIANTS:
            acfg = dict(COMMON, **VARIANTS[variant])
            d = os.path.join(out, "arch_" + variant)
            AW = write_base(os.path.join(d, "base"), acfg, gen)
            alora = random_lora(AW, gen)
            AB, logits, loss = lora_pass(acfg, AW, alora, ids, labels, torch.float32, ALPHA / R)
            write_adapter(os.path.join(d, "adapter"), AB, torch.float32, False)
            g = h5.create_group("arch_" + variant)
            write_group(g, AB, logits, loss)
            g["train_losses"] = train_losses(acfg, AW, alora, ids, labels, ALPHA / R)
    os.replace(os.path.join(out, "lora_reference.h5.tmp"), os.path.join(out, "lora_reference.h5"))


if __name__ == "__main__":
    main()
