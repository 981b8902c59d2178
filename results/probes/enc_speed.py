"""Probe: the shipped variational encoder's CPU throughput against batch size and crop length
(random input; seconds of compute per second of 14.7 kHz audio).

    OMP_NUM_THREADS=2 python results/probes/enc_speed.py     # ≈ 30 s
"""
import time, torch
from separation.checkpoints import load_separator
torch.set_grad_enabled(False)
sep = load_separator("checkpoints/toy_gpu/separator_elbo.pt", sources=["sin", "square", "saw", "triangle"])
for b, L in [(16, 16384), (4, 16384), (2, 16384), (1, 16384), (1, 4096), (4, 4096), (1, 58800)]:
    x = torch.randn(b, L) * 0.3
    sep(x)
    t0 = time.perf_counter(); reps = 0
    while time.perf_counter() - t0 < 4: sep(x); reps += 1
    dt = (time.perf_counter() - t0) / reps
    print(f"batch {b:2d} x {L:6d}: {dt / (b * L / 14700):.3f} s per audio s ({(b * L / 14700) / dt:.1f}x real time)", flush=True)
