"""PyTorch oracle for GRPO's loss (train/grpo_loss.h) as TRL's GRPOTrainer computes it, on fixed
rollouts: a random Llama base, the adapter that sampled the completions (the rollout policy) and
the adapter being trained, which has moved since (a later iteration over the same rollouts: ratios
differ from 1 and clipping is active). Two prompts with three completions each; rewards fixed.

  ratio = exp(lp - old), clipped = clamp(ratio, 1 - eps, 1 + eps_high)
  l_t = -min(ratio A, clipped A) + beta (exp(ref - lp) - (ref - lp) - 1)
  grpo: mean_i mean_t l   dapo: sum l / tokens   dr_grpo: sum l / (completions x max_len)
  A = r - mean(group), / (std(group) + 1e-4) when scaled (unbiased std, as torch.std)

usage: grpo_reference.py OUT_DIR   (writes OUT_DIR/base/, OUT_DIR/adapter_{rollout,current}/, OUT_DIR/grpo_reference.h5)
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import COMMON, VARIANTS, forward  # noqa: E402
from lora_reference import ALPHA, R, random_lora, write_adapter, write_base  # noqa: E402

torch.set_num_threads(2)
G = 3
REWARDS = [1.0, 0.0, 0.5, 0.2, 0.9, 0.2]
# name: (loss_type, epsilon, epsilon_high, beta, scale_rewards, max_completion_length)
CASES = {"grpo": ("grpo", 0.1, 0.1, 0.04, True, 16), "dapo": ("dapo", 0.1, 0.15, 0.0, True, 16),
         "dr_grpo": ("dr_grpo", 0.1, 0.1, 0.04, False, 16)}


def token_logps(cfg, W, AB, ids, labels):
    Wl = dict(W)
    for m, (a, b) in AB.items():
        Wl[m + ".weight"] = W[m + ".weight"] + (ALPHA / R) * (b @ a)
    logits = forward(cfg, Wl, ids)
    return -F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none",
                            ignore_index=-100).reshape(labels.shape)


def advantages(scale):
    r = torch.tensor(REWARDS).view(-1, G)
    a = r - r.mean(1, keepdim=True)
    if scale:
        a = a / (r.std(1, keepdim=True) + 1e-4)
    return a.reshape(-1)


def grpo(case, cfg, W, rollout, current, ids, labels):
    loss_type, eps, eps_high, beta, scale, max_len = CASES[case]
    mask = (labels != -100).float()
    AB = {m: (a.clone().requires_grad_(), b.clone().requires_grad_()) for m, (a, b) in current.items()}
    lp = token_logps(cfg, W, AB, ids, labels)
    with torch.no_grad():
        old = token_logps(cfg, W, rollout, ids, labels)
        ref = token_logps(cfg, W, {}, ids, labels)
    A = advantages(scale).unsqueeze(1)
    ratio = torch.exp(lp - old)
    clipped = torch.clamp(ratio, 1 - eps, 1 + eps_high)
    per_token = -torch.min(ratio * A, clipped * A)
    kl = torch.exp(ref - lp) - (ref - lp) - 1
    if beta:
        per_token = per_token + beta * kl
    if loss_type == "grpo":
        loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()
    elif loss_type == "dapo":
        loss = (per_token * mask).sum() / mask.sum()
    else:
        loss = (per_token * mask).sum() / (per_token.shape[0] * max_len)
    loss.backward()
    region = ((ratio < 1 - eps) & (A < 0)) | ((ratio > 1 + eps_high) & (A > 0))
    clip_ratio = (region.float() * mask).sum() / mask.sum()
    return AB, loss, (kl.detach() * mask).sum() / mask.sum(), clip_ratio


def main():
    out = sys.argv[1]
    gen = torch.Generator().manual_seed(97531)
    cfg = dict(COMMON, **VARIANTS["llama_gqa_llama3rope"])
    W = write_base(os.path.join(out, "base"), cfg, gen)
    rollout = random_lora(W, gen)
    current = {m: (a + 0.15 * torch.randn(a.shape, generator=gen), b + 0.15 * torch.randn(b.shape, generator=gen))
               for m, (a, b) in rollout.items()}
    write_adapter(os.path.join(out, "adapter_rollout"), rollout, torch.float32, False)
    write_adapter(os.path.join(out, "adapter_current"), current, torch.float32, False)
    B, T = len(REWARDS), 20
    ids = torch.randint(1, cfg["vocab_size"], (B, T), generator=gen)
    labels = torch.full((B, T), -100, dtype=torch.int64)
    for row in range(B):  # the group's prompt (5 + group tokens), then a completion of its own length
        prompt, comp = 5 + row // G, 4 + (row * 7) % 11
        ids[row, :prompt] = ids[(row // G) * G, :prompt]
        labels[row, prompt - 1:prompt - 1 + comp] = ids[row, prompt:prompt + comp]
    with h5py.File(os.path.join(out, "grpo_reference.h5.tmp"), "w") as h5:
        h5["ids"] = ids.numpy().astype(np.int64)
        h5["labels"] = labels.numpy().astype(np.int64)
        h5["rewards"] = np.array(REWARDS, dtype=np.float32)
        for case in CASES:
            AB, loss, kl, clip_ratio = grpo(case, cfg, W, rollout, current, ids, labels)
            g = h5.create_group(case)
            g["loss"] = np.array([loss.item()])
            g["kl"] = np.array([kl.item()])
            g["clip_ratio"] = np.array([clip_ratio.item()])
            g["advantages"] = advantages(CASES[case][4]).numpy()
            for m, (a, b) in AB.items():
                g[f"grad/{m}.lora_A.weight"] = a.grad.numpy()
                g[f"grad/{m}.lora_B.weight"] = b.grad.numpy()
            print(f"{case}: loss {loss.item():.6f} clip ratio {clip_ratio.item():.3f} kl {kl.item():.5f}")
    os.replace(os.path.join(out, "grpo_reference.h5.tmp"), os.path.join(out, "grpo_reference.h5"))


if __name__ == "__main__":
    main()
