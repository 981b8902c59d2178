"""FramePrior: an autoregressive WaveNet over log-mel frames, a cheap prior of one instrument.

A waveform (batch, time) becomes log-mel frames (batch, n_mels, frames) (:class:`priors.spectral.LogMel`);
frame n is predicted from frames < n by causal dilated gated convolutions across frames (mel bins
are the channels) with a per-bin Gaussian head. With kernel 3 and dilations 1 … 2^(L−1) per stack
the receptive field is 1 + 2·(2^L − 1)·stacks frames (7 layers: 255 frames = 3.0 s at 22.05 kHz,
hop 256). σ (the waveform noise level of :class:`priors.module.SourcePrior`) can be embedded
into every gate, so the prior scores noisy estimates at their noise level.

``n_components`` > 1 makes the head a mixture over whole frames: J components, each a per-bin
Gaussian around the previous frame plus its own correction, with one weight per component and
frame (shared by all bins), so that a component can stand for a change that moves every bin at
once ("hold", "release", "new note"), which one per-bin Gaussian can only average. Trained on
the chorales (docs/results/chorales_frame_ratio.md), 4 components raised the likelihood a lot
(background prior, 500 steps: −1.31 → −2.27 nats per bin) but came out mostly as a mixture of
scales whose weights hardly depend on the context: heavier tails, not yet note events.

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
from .layers import GatedResidualBlock, GlobalConditioning, dilations, stack_step
from .spectral import LogMel


class FramePrior(RecordsInitArgs, nn.Module):
    def __init__(self, sample_rate: int = 22_050, n_fft: int = 1024, hop: int = 256, n_mels: int = 128,
                 channels: int = 128, n_layers: int = 7, n_stacks: int = 1, kernel_size: int = 3,
                 sigma_conditioning: bool = False, log_std_min: float = -5.0, n_components: int = 1):
        super().__init__()
        self.features = LogMel(sample_rate, n_fft, hop, n_mels)
        self.n_mels, self.log_std_min, self.n_components = n_mels, log_std_min, n_components
        self.conditioning = GlobalConditioning(channels, True, 0) if sigma_conditioning else None
        cond = channels if sigma_conditioning else 0
        self.input = nn.Conv1d(n_mels, channels, 1)
        self.blocks = nn.ModuleList(GatedResidualBlock(channels, channels, kernel_size, d, cond_channels=cond, causal=True)
                                    for d in dilations(n_layers, n_stacks))
        self.out1 = nn.Conv1d(channels, channels, 1)
        self.out2 = nn.Conv1d(channels, n_components * 2 * n_mels + (n_components if n_components > 1 else 0), 1)
        self.start = nn.Parameter(torch.full((n_mels, 1), math.log(self.features.floor)))
        self.skip_scale = math.sqrt(1.0 / len(self.blocks))

    @property
    def receptive_field(self) -> int:
        """Frames of history each prediction sees."""
        return 1 + sum((b.kernel_size - 1) * b.dilation for b in self.blocks)

    def predict(self, feats: torch.Tensor, sigma=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """feats (batch, n_mels, frames) -> each frame's distribution given the frames before it:
        mean, log_std (batch, J, n_mels, frames) and log_weights (batch, J, frames) (normalised
        over the J = ``n_components`` components; zeros for J = 1)."""
        b = feats.shape[0]
        shifted = torch.cat([self.start.expand(b, -1, -1).to(feats.dtype), feats[..., :-1]], -1)
        cond = self.conditioning(b, feats.device, sigma) if self.conditioning is not None else None
        h = self.input(shifted)
        skips = 0.0
        for block in self.blocks:
            h, s = block(h, cond)
            skips = skips + s
        return self._head(skips, shifted)

    def _head(self, skips: torch.Tensor, previous: torch.Tensor):
        """Summed skips (batch, channels, frames) and the frames they follow (batch, n_mels,
        frames) -> mean, log_std, log_weights as :meth:`predict`."""
        out = self.out2(F.relu(self.out1(F.relu(skips * self.skip_scale))))
        b, j, m, frames = out.shape[0], self.n_components, self.n_mels, out.shape[-1]
        params, logits = out[:, : 2 * j * m], out[:, 2 * j * m:]
        mean, log_std = params.reshape(b, j, 2 * m, frames).split(m, 2)
        log_weights = logits.log_softmax(1) if j > 1 else out.new_zeros(b, 1, frames)
        return mean + previous.unsqueeze(1), log_std.clamp_min(self.log_std_min), log_weights

    def log_prob_features(self, feats: torch.Tensor, sigma=None) -> torch.Tensor:
        """feats (batch, n_mels, frames) -> (batch, frames): log-density of each whole frame under
        the mixture, divided by n_mels (nats per mel bin)."""
        mean, log_std, log_weights = self.predict(feats, sigma)
        z = (feats.unsqueeze(1) - mean) * torch.exp(-log_std)
        per_component = (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(2)
        return torch.logsumexp(log_weights + per_component, 1) / self.n_mels

    @staticmethod
    def choose(mean: torch.Tensor, log_std: torch.Tensor, log_weights: torch.Tensor, temperature: float) -> torch.Tensor:
        """One draw per frame from :meth:`predict`'s output: (batch, n_mels, frames). Each frame
        draws its component from the weights (temperature 0: the most likely one), then every
        bin from that component's Gaussian with its scale times ``temperature``."""
        b, j, m, n = mean.shape
        flat = log_weights.permute(0, 2, 1).reshape(b * n, j)
        pick = torch.multinomial(flat.exp(), 1) if temperature > 0 else flat.argmax(1, keepdim=True)
        index = pick.view(b, 1, 1, n).expand(-1, 1, m, -1)
        mean, std = mean.gather(1, index)[:, 0], log_std.gather(1, index)[:, 0].exp()
        return mean + temperature * std * torch.randn_like(mean)

    def log_prob(self, x: torch.Tensor, sigma=None) -> torch.Tensor:
        """x waveform (batch, time) -> (batch, frames), nats per mel bin (see module docstring)."""
        return self.log_prob_features(self.features(x), sigma)

    @torch.no_grad()
    def sample_features(self, n: int, frames: int, sigma=None, temperature: float = 1.0,
                        device=None) -> torch.Tensor:
        """Ancestral sampling: (n, n_mels, frames) log-mel frames drawn one frame at a time by
        :meth:`choose`, with cached convolutions: each block keeps its last (k−1)·d+1 inputs in
        a ring buffer, so a frame costs one step per layer (O(frames·layers), not
        O(frames·receptive field)); the same distributions as the teacher-forced :meth:`predict`."""
        device = device or self.start.device
        cond = self.conditioning(n, device, sigma) if self.conditioning is not None else None
        plans = [block.step_plan(cond) for block in self.blocks]
        skip_bias = sum(block.skip.bias for block in self.blocks)
        channels = self.input.out_channels
        bufs = [torch.zeros((b.kernel_size - 1) * b.dilation + 1, n, channels, device=device) for b in self.blocks]
        previous = self.start.expand(n, -1, -1).to(device)  # (n, n_mels, 1)
        out = []
        for t in range(frames):
            bufs[0][t % bufs[0].shape[0]].copy_(self.input(previous)[..., 0])
            skips = stack_step(self.blocks, plans, bufs, t, skip_bias)
            previous = self.choose(*self._head(skips.unsqueeze(-1), previous), temperature=temperature)
            out.append(previous)
        return torch.cat(out, -1) if out else torch.zeros(n, self.n_mels, 0, device=device)

    @torch.no_grad()
    def generate(self, n: int, length: int, sigma=None, temperature: float = 1.0, device=None,
                 progress: bool = False, griffin_lim_iters: int = 32) -> torch.Tensor:
        """Waveforms (n, length): log-mel frames drawn by :meth:`sample_features`, mapped back
        to STFT magnitudes (filterbank pseudo-inverse) and given phases by Griffin-Lim. The
        phases are a reconstruction, not part of the model: statistics of magnitude (rms,
        spectral centroid) are the prior's; fine temporal structure is not."""
        feats = self.sample_features(n, length // self.features.hop + 1, sigma, temperature, device)
        return self.features.to_waveform(feats, length, griffin_lim_iters)
