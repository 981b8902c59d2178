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


def perturb_couplings(module: torch.nn.Module, std: float = 0.3) -> None:
    """Give every zero-initialised coupling output layer of a flow random weights, so that no
    coupling is the identity any more."""
    from priors.flow import AffineCoupling, MixtureCDFCoupling

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (AffineCoupling, MixtureCDFCoupling)):
                m.net.end.weight.normal_(0.0, std)
                m.net.end.bias.normal_(0.0, std)


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
