"""Probe: a separator's CPU throughput against batch size and crop length (random input;
seconds of compute per second of 14.7 kHz audio; a batch runs one mixture at a time on the CPU).

    OMP_NUM_THREADS=2 python experiments/enc_speed.py [SEPARATOR.pt [fp32|bf16]]   # ≈ 30 s
"""
import sys
import time

import torch

from separation.checkpoints import load_separator


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    path = sys.argv[1] if len(sys.argv) > 1 else "checkpoints/toy_gpu/separator_elbo.pt"
    precision = sys.argv[2] if len(sys.argv) > 2 else "fp32"
    sep = load_separator(path, sources=["sin", "square", "saw", "triangle"], precision=precision)
    print(f"{path} ({precision})")
    for b, L in [(16, 16384), (1, 16384), (1, 4096), (1, 58800)]:
        x = torch.randn(b, L) * 0.3
        sep(x)
        t0 = time.perf_counter(); reps = 0
        while time.perf_counter() - t0 < 4: sep(x); reps += 1
        dt = (time.perf_counter() - t0) / reps
        print(f"batch {b:2d} x {L:6d}: {dt / (b * L / 14700):.3f} s per audio s ({(b * L / 14700) / dt:.1f}x real time)", flush=True)
