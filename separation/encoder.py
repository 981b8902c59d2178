"""The amortized posterior q(s₁…s_K | m): a non-causal WaveNet-style network."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from priors.config import RecordsInitArgs
from priors.layers import GatedResidualBlock, dilations


class WaveNetEncoder(RecordsInitArgs, nn.Module):
    """Mixture (batch, time) -> posterior mean and log-std of every source, each
    (batch, n_sources, time), in the mixture's units.

    A stack of non-causal gated residual blocks (kernel 3, dilations 1 … 2^(L/S−1) per
    stack) with skip connections; the output head predicts μ as ``gain · m + correction``
    with a learned per-source gain, so the network starts from "each source = mixture".
    ``gate_channels`` (default ``channels``): gated units per block — fewer make a cheaper
    network, e.g. one pruned from a trained encoder (``separation.pruning``).
    """

    def __init__(self, n_sources: int = 4, n_layers: int = 10, n_stacks: int = 1, channels: int = 32,
                 kernel_size: int = 3, log_std_min: float = -7.0, log_std_max: float = 1.0,
                 gate_channels: int | None = None):
        super().__init__()
        self.n_sources = n_sources
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.input = nn.Conv1d(1, channels, 1)
        self.blocks = nn.ModuleList(GatedResidualBlock(channels, channels, kernel_size, d, causal=False,
                                                       gate_channels=gate_channels)
                                    for d in dilations(n_layers, n_stacks))
        self.out1 = nn.Conv1d(channels, channels, 1)
        self.out2 = nn.Conv1d(channels, 2 * n_sources, 1)
        nn.init.zeros_(self.out2.weight)
        nn.init.zeros_(self.out2.bias)
        with torch.no_grad():
            self.out2.bias[n_sources:] = -2.0
        self.skip_scale = math.sqrt(1.0 / len(self.blocks))

    @property
    def receptive_field(self) -> int:
        return 1 + sum((b.kernel_size - 1) * b.dilation for b in self.blocks)

    def forward(self, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.input(mix.unsqueeze(1))
        skips = 0.0
        for block in self.blocks:
            h, s = block(h)
            skips = skips + s
        out = self.out2(F.relu(self.out1(F.relu(skips * self.skip_scale))))
        mu, log_std = out.split(self.n_sources, dim=1)
        mu = mu + mix.unsqueeze(1)
        return mu, log_std.clamp(self.log_std_min, self.log_std_max)


def project_to_mixture(s: torch.Tensor, mix: torch.Tensor, mix_scale: float) -> torch.Tensor:
    """Mixture-consistency projection: s_k + (m/mix_scale − Σ_j s_j)/K, so that
    mix_scale · Σ_k s_k = m exactly. s (batch, K, time), mix (batch, time)."""
    residual = mix / mix_scale - s.sum(1)
    return s + residual.unsqueeze(1) / s.shape[1]
