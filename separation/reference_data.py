"""Fixed evaluation crops: the toy test set, or any MUSDB18-HQ-layout stem folder."""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import PriorsepError


def reference_crops(sources: list[str], n: int, length: int, data_root: str | None = None,
                    split: str = "test", sample_rate: int | None = None, seed: int = 0):
    """(crops (n, K, length), mix_scale) with the sources in ``sources`` order.

    Without ``data_root`` the sources must be the toy ones and crops come from the fixed
    toy test set (crop j: example j, offset drawn from ``seed``).
    """
    from priors.data import TOY_SOURCES, StemFolderDataset, ToyDataset, folder_mix_scale

    if data_root is None:
        if sorted(sources) != sorted(TOY_SOURCES):
            raise PriorsepError(f"sources {sources} are not the toy set; pass --data DIR (a stem folder)")
        ds = ToyDataset(split, "both", crop_length=length, epoch_size=n, random_crops=False, seed=seed)
        order = [list(TOY_SOURCES).index(s) for s in sources]
        return torch.stack([ds[j][1][order] for j in range(n)]), 1.0 / len(TOY_SOURCES)
    root = Path(data_root)
    mix_scale = folder_mix_scale(root)
    try:
        ds = StemFolderDataset(root, split, sources, "both", crop_length=length, epoch_size=n,
                               sample_rate=sample_rate, random_crops=False, mix_scale=mix_scale, seed=seed)
    except (FileNotFoundError, OSError) as err:
        raise PriorsepError(f"{root}: {err}") from None
    return torch.stack([ds[j][1] for j in range(n)]), mix_scale
