"""PyTorch oracle for DPO (train/dpo.h) as TRL computes it: a random Llama base, a random LoRA
adapter on it (B nonzero, so the policy differs from the reference, which is the base alone), three
preference pairs (rows chosen, rejected, chosen, ...; labels -100 outside each reply), and per loss
type the mean loss over pairs, TRL's metrics and the gradient of every lora_A / lora_B weight.

  logps: each row's summed target log-probabilities (ipo, simpo: their mean over the reply)
  logits = (pc - pr) - (rc - rr)          simpo: pc - pr - gamma / beta
  sigmoid: -(1-ls) logsigmoid(beta l) - ls logsigmoid(-beta l)     hinge: relu(1 - beta l)
  ipo: (l - 1/(2 beta))^2                 rewards: beta (policy - ref)  (simpo: beta policy)
  rpo_alpha > 0: plus rpo_alpha times the chosen reply's mean NLL per token, per pair

usage: dpo_reference.py OUT_DIR   (writes OUT_DIR/base/, OUT_DIR/adapter/, OUT_DIR/dpo_reference.h5)
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
# name: (loss_type, beta, label_smoothing, simpo_gamma, rpo_alpha)
CASES = {"sigmoid": ("sigmoid", 0.5, 0.0, 0.0, 0.0), "sigmoid_smoothed": ("sigmoid", 0.5, 0.2, 0.0, 0.0),
         "hinge": ("hinge", 0.5, 0.0, 0.0, 0.0), "ipo": ("ipo", 0.5, 0.0, 0.0, 0.0),
         "simpo": ("simpo", 2.0, 0.1, 0.3, 0.0), "sigmoid_rpo": ("sigmoid", 0.5, 0.0, 0.0, 0.7),
         "ipo_rpo": ("ipo", 0.5, 0.0, 0.0, 0.7)}


def row_logps(logits, labels, mean):
    lp = -F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none",
                          ignore_index=-100).reshape(labels.shape).sum(-1)
    return lp / (labels != -100).sum(-1) if mean else lp


def dpo(case, cfg, W, lora, ids, labels):
    loss_type, beta, ls, gamma, rpo = CASES[case]
    mean = loss_type in ("ipo", "simpo")
    AB = {m: (a.clone().requires_grad_(), b.clone().requires_grad_()) for m, (a, b) in lora.items()}
    Wl = dict(W)
    for m, (a, b) in AB.items():
        Wl[m + ".weight"] = W[m + ".weight"] + (ALPHA / R) * (b @ a)
    pol = row_logps(forward(cfg, Wl, ids), labels, mean)
    pc, pr = pol[0::2], pol[1::2]
    if loss_type == "simpo":
        logits = pc - pr - gamma / beta
        rc = rr = torch.zeros_like(pc)
    else:
        with torch.no_grad():
            ref = row_logps(forward(cfg, W, ids), labels, mean)
        rc, rr = ref[0::2], ref[1::2]
        logits = (pc - pr) - (rc - rr)
    if loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        losses = -F.logsigmoid(beta * logits) * (1 - ls) - F.logsigmoid(-beta * logits) * ls
    if rpo:  # the chosen reply's NLL per token, per pair
        nll = -row_logps(forward(cfg, Wl, ids), labels, True)[0::2]
        losses = losses + rpo * nll
    loss = losses.mean()
    loss.backward()
    cr, rj = beta * (pc - rc).detach(), beta * (pr - rr).detach()
    metrics = {"rewards/chosen": cr.mean(), "rewards/rejected": rj.mean(), "rewards/accuracies": (cr > rj).float().mean(),
               "rewards/margins": (cr - rj).mean(), "logps/chosen": pc.detach().mean(), "logps/rejected": pr.detach().mean()}
    return AB, loss, metrics


def main():
    out = sys.argv[1]
    gen = torch.Generator().manual_seed(2468)
    cfg = dict(COMMON, **VARIANTS["llama_gqa_llama3rope"])
    W = write_base(os.path.join(out, "base"), cfg, gen)
    lora = random_lora(W, gen)
    write_adapter(os.path.join(out, "adapter"), lora, torch.float32, False)
    P, T = 3, 20
    ids = torch.randint(1, cfg["vocab_size"], (2 * P, T), generator=gen)
    labels = torch.full((2 * P, T), -100, dtype=torch.int64)
    for row in range(2 * P):  # a prompt, a reply of its own length, then padding
        prompt, reply = 4 + row % 3, 6 + (row * 5) % 9
        labels[row, prompt - 1:prompt - 1 + reply] = torch.randint(0, cfg["vocab_size"], (reply,), generator=gen)
    with h5py.File(os.path.join(out, "dpo_reference.h5.tmp"), "w") as h5:
        h5["ids"] = ids.numpy().astype(np.int64)
        h5["labels"] = labels.numpy().astype(np.int64)
        for case in CASES:
            AB, loss, metrics = dpo(case, cfg, W, lora, ids, labels)
            g = h5.create_group(case)
            g["loss"] = np.array([loss.item()])
            for k, v in metrics.items():
                g["metrics/" + k.replace("/", "_")] = np.array([v.item()])
            for m, (a, b) in AB.items():
                g[f"grad/{m}.lora_A.weight"] = a.grad.numpy()
                g[f"grad/{m}.lora_B.weight"] = b.grad.numpy()
    os.replace(os.path.join(out, "dpo_reference.h5.tmp"), os.path.join(out, "dpo_reference.h5"))
    print(f"wrote {len(CASES)} DPO cases to {out}")


if __name__ == "__main__":
    main()
