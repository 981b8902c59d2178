"""Losses of the pair-based objectives (supervised bound, sleep, remix, distil) on waveforms."""
from __future__ import annotations

import torch

from priors.spectral import stft


def waveform_spectral_l1(est: torch.Tensor, target: torch.Tensor, n_fft: int = 1024, hop: int = 256,
                         spectral_weight: float = 0.5) -> torch.Tensor:
    """L1 on the waveforms plus ``spectral_weight`` × L1 on the STFT magnitudes, summed over
    sources, mean over batch and time (frames × bins): est, target (batch, K, time) -> scalar."""
    wave = (est - target).abs().mean(dim=(0, 2)).sum()
    if not spectral_weight:
        return wave
    mag = (stft(est, n_fft, hop).abs() - stft(target, n_fft, hop).abs()).abs().mean(dim=(0, 2, 3)).sum()
    return wave + spectral_weight * mag / n_fft ** 0.5
