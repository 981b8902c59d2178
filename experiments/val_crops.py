"""Probe: SI-SDRi of separators on the 16 validation crops (2 048 samples, the toy set's held-out valid split, the
crops every separator config logs as val/si_sdri), per source.

    OMP_NUM_THREADS=2 python experiments/val_crops.py checkpoints/toy_gpu/separator_elbo.pt [more.pt …]   # seconds
"""
import sys

import torch

from separation.checkpoints import load_separator
from separation.data import SeparationDataModule
from separation.metrics import si_sdr


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    dm = SeparationDataModule("distil", crop_length=2048, batch_size=8, val_crops=16)
    for path in sys.argv[1:]:
        sep = load_separator(path)
        gains = []
        for mix, src in dm.val_dataloader():
            gains.append(si_sdr(sep(mix), src) - si_sdr(mix.unsqueeze(1).expand_as(src), src))
        g = torch.cat(gains).mean(0)
        print(f"{path}: mean {g.mean():.3f} |", " ".join(f"{n} {v:.2f}" for n, v in zip(sep.sources, g.tolist())))
