"""FramePrior: an autoregressive WaveNet over log-mel frames, a cheap prior of one instrument.

A waveform (batch, time) becomes log-mel frames (batch, n_mels, frames) (:class:`priors.spectral.LogMel`);
frame n is predicted from frames < n by causal dilated gated convolutions across frames (mel bins
are the channels) with a per-bin Gaussian head. With kernel 3 and dilations 1 … 2^(L−1) per stack
the receptive field is 1 + 2·(2^L − 1)·stacks frames (7 layers: 255 frames = 3.0 s at 22.05 kHz,
hop 256). σ (the waveform noise level of :class:`priors.module.SourcePrior`) can be embedded
into every gate, so the prior scores noisy estimates at their noise level.

``log_prob(x, sigma)`` -> (batch, frames): nats per mel bin of each frame — a continuous density
of the log-mel features, not of the waveform (it ranks estimates of one representation; it is
not comparable with the waveform priors' nats per sample).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import RecordsInitArgs
from .layers import GatedResidualBlock, GlobalConditioning, dilations
from .spectral import LogMel, griffin_lim


class FramePrior(RecordsInitArgs, nn.Module):
    def __init__(self, sample_rate: int = 22_050, n_fft: int = 1024, hop: int = 256, n_mels: int = 128,
                 channels: int = 128, n_layers: int = 7, n_stacks: int = 1, kernel_size: int = 3,
                 sigma_conditioning: bool = False, log_std_min: float = -5.0):
        super().__init__()
        self.features = LogMel(sample_rate, n_fft, hop, n_mels)
        self.n_mels, self.log_std_min = n_mels, log_std_min
        self.conditioning = GlobalConditioning(channels, True, 0) if sigma_conditioning else None
        cond = channels if sigma_conditioning else 0
        self.input = nn.Conv1d(n_mels, channels, 1)
        self.blocks = nn.ModuleList(GatedResidualBlock(channels, channels, kernel_size, d, cond_channels=cond, causal=True)
                                    for d in dilations(n_layers, n_stacks))
        self.out1 = nn.Conv1d(channels, channels, 1)
        self.out2 = nn.Conv1d(channels, 2 * n_mels, 1)
        self.start = nn.Parameter(torch.full((n_mels, 1), math.log(self.features.floor)))
        self.skip_scale = math.sqrt(1.0 / len(self.blocks))

    @property
    def receptive_field(self) -> int:
        """Frames of history each prediction sees."""
        return 1 + sum((b.kernel_size - 1) * b.dilation for b in self.blocks)

    def predict(self, feats: torch.Tensor, sigma=None) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (batch, n_mels, frames) -> mean, log_std of each frame given the frames before it."""
        b = feats.shape[0]
        shifted = torch.cat([self.start.expand(b, -1, -1).to(feats.dtype), feats[..., :-1]], -1)
        cond = self.conditioning(b, feats.device, sigma) if self.conditioning is not None else None
        h = self.input(shifted)
        skips = 0.0
        for block in self.blocks:
            h, s = block(h, cond)
            skips = skips + s
        out = self.out2(F.relu(self.out1(F.relu(skips * self.skip_scale))))
        mean, log_std = out.split(self.n_mels, 1)
        return mean + shifted, log_std.clamp_min(self.log_std_min)

    def log_prob_features(self, feats: torch.Tensor, sigma=None) -> torch.Tensor:
        """feats (batch, n_mels, frames) -> (batch, frames): Gaussian log-density, nats per mel bin."""
        mean, log_std = self.predict(feats, sigma)
        z = (feats - mean) * torch.exp(-log_std)
        return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).mean(1)

    def log_prob(self, x: torch.Tensor, sigma=None) -> torch.Tensor:
        """x waveform (batch, time) -> (batch, frames), nats per mel bin (see module docstring)."""
        return self.log_prob_features(self.features(x), sigma)

    @torch.no_grad()
    def sample_features(self, n: int, frames: int, sigma=None, temperature: float = 1.0,
                        device=None) -> torch.Tensor:
        """Ancestral sampling: (n, n_mels, frames) log-mel frames drawn one frame at a time
        (each step re-runs the causal stack over the last ``receptive_field`` frames, which is
        exactly the history the teacher-forced :meth:`predict` uses)."""
        device = device or self.start.device
        feats = torch.zeros(n, self.n_mels, 0, device=device)
        rf = self.receptive_field
        for _ in range(frames):
            ctx = torch.cat([feats[..., -rf:], torch.zeros(n, self.n_mels, 1, device=device)], -1)
            mean, log_std = self.predict(ctx, sigma)
            nxt = mean[..., -1:] + temperature * log_std[..., -1:].exp() * torch.randn_like(mean[..., -1:])
            feats = torch.cat([feats, nxt], -1)
        return feats

    @torch.no_grad()
    def generate(self, n: int, length: int, sigma=None, temperature: float = 1.0, device=None,
                 progress: bool = False, griffin_lim_iters: int = 32) -> torch.Tensor:
        """Waveforms (n, length): log-mel frames drawn by :meth:`sample_features`, mapped back
        to STFT magnitudes (filterbank pseudo-inverse) and given phases by Griffin-Lim. The
        phases are a reconstruction, not part of the model: statistics of magnitude (rms,
        spectral centroid) are the prior's; fine temporal structure is not."""
        f = self.features
        feats = self.sample_features(n, length // f.hop + 1, sigma, temperature, device)
        return griffin_lim(f.to_magnitude(feats), f.n_fft, f.hop, length, griffin_lim_iters)
