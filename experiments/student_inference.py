"""Inference-time variants of a mask separator, scored on the VALIDATION chorales of
``teacher_variants.py`` (every 16th TRAINING chorale, first 20 s; never the test set).

- ``power p``: masks m_k^p / Σ_j m_j^p (p = 2: a Wiener filter whose source powers are the
  masked mixture powers; p > 1 sharpens, the estimates still add up to the mixture);
- ``shifts n``: the mixture is also separated delayed by hop·i/n samples (i = 1 … n-1) and the
  aligned estimates are averaged (STFT-grid averaging; the mean of mixture-summing estimates
  still sums to the mixture).

    python experiments/student_inference.py --model chorales --powers 1 1.5 2 --shifts 1 2 4
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main() -> None:
    import numpy as np
    import torch

    from separation import separate
    from separation.models import load_separator

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from teacher_variants import load_validation, score

    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="data/chorales")
    ap.add_argument("--model", default="chorales")
    ap.add_argument("--powers", nargs="*", type=float, default=[1.0, 1.5, 2.0])
    ap.add_argument("--shifts", nargs="*", type=int, default=[1])
    a = ap.parse_args()
    sources = ["violin", "clarinet", "saxophone", "bassoon"]
    val = load_validation(Path(a.root), sources)
    sep = load_separator(a.model)
    enc = sep.encoder
    plain_masks = enc.masks
    print(f"{len(val)} validation chorales (train split, first 20 s); median SDR dB; model {a.model}")
    print(f"{'variant':20s} " + " ".join(f"{s[:8]:>8s}" for s in sources) + "     mean   seconds")
    for p in a.powers:
        def masks(spec, p=p):
            m = plain_masks(spec)
            if p == 1.0:
                return m
            m = m.clamp_min(1e-8) ** p
            return m / m.sum(1, keepdim=True)
        enc.masks = masks
        for n in a.shifts:
            t0 = time.time()
            ests = []
            for _, m, _, rate in val:
                x = m.astype(np.float32)
                acc = np.zeros((len(sources), len(x)))
                for i in range(n):
                    d = enc.hop * i // n
                    xs = np.concatenate([np.zeros(d, np.float32), x])
                    out = separate(xs, rate, model=sep)
                    acc += np.stack([out[s][d:] for s in sources])
                ests.append(acc / n)
            s = score(ests, val)
            print(f"{f'power {p:g} shifts {n}':20s} " + " ".join(f"{v:8.2f}" for v in s)
                  + f" {np.mean(s):8.2f} {time.time() - t0:8.1f}", flush=True)


if __name__ == "__main__":
    main()
