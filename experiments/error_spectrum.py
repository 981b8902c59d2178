"""Probe: where in frequency each separator's errors lie, on the 16 validation crops (2 048 samples,
the toy set's held-out valid split): per source, SI-SDRi, the share of the error energy
(estimate − reference) above a cut-off frequency, and the share of it that lies along each
source's reference (the error's projection on that reference, per crop): broadband hallucination
shows as a large share above the cut-off, confusion with another source as a large share along
that source.

    OMP_NUM_THREADS=2 python experiments/error_spectrum.py [--cutoff HZ] SEP.pt [more.pt …]   # seconds
"""
import argparse

import torch

from separation.checkpoints import load_separator
from separation.data import SeparationDataModule
from separation.metrics import si_sdr


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("separators", nargs="+")
    parser.add_argument("--cutoff", type=float, default=2000.0, help="Hz")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    dm = SeparationDataModule("distil", crop_length=2048, batch_size=8, val_crops=16)
    for path in args.separators:
        sep = load_separator(path)
        freqs = torch.fft.rfftfreq(dm.hparams.crop_length, 1.0 / sep.sample_rate)
        gains, high, total, along, energy = [], 0.0, 0.0, 0.0, 0.0
        for mix, src in dm.val_dataloader():
            est = sep(mix)
            gains.append(si_sdr(est, src) - si_sdr(mix.unsqueeze(1).expand_as(src), src))
            e, r = est - src, src / src.norm(dim=-1, keepdim=True)
            err = torch.fft.rfft(e).abs().pow(2)  # (batch, K, bins)
            high = high + err[..., freqs > args.cutoff].sum((0, 2))
            total = total + err.sum((0, 2))
            along = along + torch.einsum("bkt,bjt->bkj", e, r).pow(2).sum(0)  # (K, K)
            energy = energy + e.pow(2).sum((0, 2))
        g = torch.cat(gains).mean(0)
        share = (high / total).tolist()
        print(f"{path}: SI-SDRi mean {g.mean():.2f}")
        for k, (name, v, s) in enumerate(zip(sep.sources, g.tolist(), share)):
            leak = " ".join(f"{other} {100 * (along[k, j] / energy[k]).item():4.1f} %" for j, other in enumerate(sep.sources))
            print(f"  {name:>9}: SI-SDRi {v:6.2f} dB, error energy above {args.cutoff:g} Hz {100 * s:5.1f} %; "
                  f"along the reference of: {leak}")
