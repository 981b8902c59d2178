"""Shared fixtures: tiny models and prior directories that train/load in seconds."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

TOY = ["sin", "square", "saw", "triangle"]


def tiny_wavenet(**kw):
    from priors.wavenet import WaveNet

    args = dict(n_layers=4, residual_channels=8, skip_channels=8, n_components=2)
    args.update(kw)
    return WaveNet(**args)


@pytest.fixture
def tiny_priors_dir(tmp_path):
    """A directory of four tiny (untrained) WaveNet priors for the toy sources."""
    from priors.checkpoint import describe_prior, save_prior, write_manifest
    from priors.noise import NoiseSchedule

    torch.manual_seed(0)
    d = tmp_path / "priors"
    for s in TOY:
        m = tiny_wavenet()
        save_prior(d / f"{s}.pt", m, describe_prior(m, s, 14_700, NoiseSchedule()))
    write_manifest(d, TOY, 14_700)
    return d
