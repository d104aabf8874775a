"""PyTorch oracle for the trainer's optimiser step: torch.nn.utils.clip_grad_norm_ then
torch.optim.AdamW (decoupled weight decay, bias corrections), in float64, over parameters of odd
sizes. Three steps with fresh random gradients each; the gradients of the bf16 group are bf16
values (as a bf16 parameter's gradient is), and that group keeps f32 masters (as Forge does),
so its expected parameters are the f64 result and its bf16 rounding.

Writes per step s and parameter i: grad_<s>_<i>, want_<s>_<i>, and norm_<s> (the total norm
before clipping); init_<i>; hyper = [lr, beta1, beta2, eps, weight_decay, max_norm, steps, params].

usage: optim_reference.py OUT.h5
"""
import sys

import h5py
import torch

SHAPES = [(37, 5), (300,), (3, 7, 11), (1,)]
LR, BETAS, EPS, WD, MAX_NORM, STEPS = 3e-3, (0.9, 0.95), 1e-6, 0.1, 1.0, 3


def main(out):
    g = torch.Generator().manual_seed(5)
    init = [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]
    params = [p.clone().requires_grad_(True) for p in init]
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    with h5py.File(out, "w") as f:
        f["hyper"] = [LR, BETAS[0], BETAS[1], EPS, WD, MAX_NORM, STEPS, len(SHAPES)]
        for i, p in enumerate(init):
            f[f"init_{i}"] = p.float().numpy()
        for s in range(STEPS):
            for i, p in enumerate(params):
                # Gradients large enough that clipping acts (norm > MAX_NORM), as bf16 values.
                grad = (torch.randn(p.shape, generator=g) * 0.7).bfloat16().double()
                p.grad = grad
                f[f"grad_{s}_{i}"] = grad.float().numpy()
            norm = torch.nn.utils.clip_grad_norm_(params, MAX_NORM)
            f[f"norm_{s}"] = norm.float().reshape(1).numpy()
            opt.step()
            for i, p in enumerate(params):
                f[f"want_{s}_{i}"] = p.detach().float().numpy()


if __name__ == "__main__":
    main(sys.argv[1])
