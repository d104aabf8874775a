"""PyTorch oracle for QLoRA's NF4 weights (Dettmers et al. 2023), written from the paper and
torchao's NF4Tensor description, sharing nothing with Forge: blocks of 64 weights scaled by their
absmax, each weight the nearest of the 16 NormalFloat4 levels (first on ties); double quantisation
of the absmax values: minus their mean, then int8 in blocks of 256 with factor 256 / (2 * absmax).
Shapes whose size is not a multiple of 64 (or of 64 x 256) end in a shorter last block.
Writes, per case: W, the level indices, the dequantised absmax and W, and for x, gout: y = x W'^T
and grad_x = gout W' with W' the dequantised weight.

usage: nf4_reference.py OUT.h5
"""
import os
import sys

import h5py
import numpy as np
import torch

NF4 = torch.tensor([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0])
BLOCK, SCALER_BLOCK = 64, 256


def block_absmax(v, size):
    n = v.numel()
    out = torch.empty((n + size - 1) // size)
    for b in range(out.numel()):
        out[b] = v[b * size:(b + 1) * size].abs().max()
    return out


def quantize(w):
    flat = w.flatten().float()
    absmax = block_absmax(flat, BLOCK)
    per = absmax.repeat_interleave(BLOCK)[: flat.numel()]
    scaled = torch.where(per > 0, flat / per, torch.zeros_like(flat))
    idx = (scaled.unsqueeze(1) - NF4.unsqueeze(0)).abs().argmin(dim=1)  # first minimum
    # Double quantisation of the absmax values.
    mean = absmax.mean()
    centred = absmax - mean
    cabs = block_absmax(centred, SCALER_BLOCK)
    factor = torch.where(cabs > 0, 256.0 / (2.0 * cabs), torch.ones_like(cabs))
    fper = factor.repeat_interleave(SCALER_BLOCK)[: absmax.numel()]
    q = (centred * fper).round().clamp(-128, 127)
    absmax_dq = q / fper + mean
    w_dq = NF4[idx] * absmax_dq.repeat_interleave(BLOCK)[: flat.numel()]
    return idx, absmax_dq, w_dq.view(w.shape)


def main():
    os.makedirs(os.path.dirname(os.path.abspath(sys.argv[1])), exist_ok=True)
    gen = torch.Generator().manual_seed(2023)
    cases = {"small": (48, 72), "tail": (37, 50), "double": (256, 130)}  # 130*256/64 = 520 blocks
    with h5py.File(sys.argv[1] + ".tmp", "w") as h5:
        for name, (o, i) in cases.items():
            w = torch.randn(o, i, generator=gen) * 0.05
            w[0, :5] = torch.tensor([0.0, 1e-9, -0.2, 0.2, 0.01])  # zeros, tiny and large values
            idx, absmax_dq, w_dq = quantize(w)
            x = torch.randn(3, 5, i, generator=gen)
            gout = torch.randn(3, 5, o, generator=gen)
            g = h5.create_group(name)
            g["w"] = w.numpy()
            g["codes"] = idx.numpy().astype(np.uint8)
            g["absmax"] = absmax_dq.numpy()
            g["w_dq"] = w_dq.numpy()
            g["x"] = x.numpy()
            g["y"] = (x @ w_dq.T).numpy()
            g["gout"] = gout.numpy()
            g["grad_x"] = (gout @ w_dq).numpy()
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])


if __name__ == "__main__":
    main()
