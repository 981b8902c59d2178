"""MaskEncoder: q(s₁…s_K | m) as time-frequency masks with seconds of context.

Mixture (batch, time) -> STFT (Hann, ``n_fft``, ``hop``) -> log-magnitude frames -> linear ->
bidirectional LSTM over frames (the whole chunk is context: a 4 s chunk at 22.05 kHz, hop 256,
is 345 frames) -> one mask per source and bin, a softmax across sources, so the masks sum to
one and the estimates add up to the mixture exactly -> masks × complex mixture STFT -> iSTFT.
The Open-Unmix / probe design of ``../shared/SCIENCE.md``; the toy waveform encoder stays in
:mod:`separation.encoder`.

``forward`` returns ``(mu, log_std)`` like every encoder: mu (batch, K, time) in the mixture's
units, log_std a learned constant per source (batch, K, time), used by the Gaussian pair losses.
"""
from __future__ import annotations

import torch
from torch import nn

from priors.config import RecordsInitArgs
from priors.spectral import istft, stft


class MaskEncoder(RecordsInitArgs, nn.Module):
    def __init__(self, n_sources: int = 4, n_fft: int = 1024, hop: int = 256, hidden: int = 256,
                 lstm_hidden: int = 128, lstm_layers: int = 2, dropout: float = 0.0, log_std_init: float = -3.0):
        super().__init__()
        self.n_sources, self.n_fft, self.hop = n_sources, n_fft, hop
        bins = n_fft // 2 + 1
        self.bins = bins
        self.input_norm = nn.LayerNorm(bins)
        self.input = nn.Sequential(nn.Linear(bins, hidden), nn.Tanh())
        self.lstm = nn.LSTM(hidden, lstm_hidden, lstm_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if lstm_layers > 1 else 0.0)
        self.output = nn.Sequential(nn.Linear(hidden + 2 * lstm_hidden, hidden), nn.ReLU(),
                                    nn.Linear(hidden, n_sources * bins))
        self.log_std = nn.Parameter(torch.full((n_sources,), float(log_std_init)))

    @property
    def receptive_field(self) -> int:
        """Samples of context: unbounded within a chunk (bidirectional LSTM); reported as one FFT window."""
        return self.n_fft

    def masks(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex mixture STFT (batch, bins, frames) -> masks (batch, K, bins, frames), summing to 1 over K."""
        feats = torch.log(spec.abs() + 1e-5).transpose(1, 2)  # (B, N, F)
        h = self.input(self.input_norm(feats))
        out, _ = self.lstm(h)
        logits = self.output(torch.cat([h, out], -1))  # (B, N, K*F)
        b, n = logits.shape[:2]
        return logits.reshape(b, n, self.n_sources, self.bins).permute(0, 2, 3, 1).softmax(1)

    def forward(self, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = stft(mix, self.n_fft, self.hop)  # (B, F, N)
        est = istft(self.masks(spec) * spec.unsqueeze(1), self.n_fft, self.hop, mix.shape[-1])
        log_std = self.log_std.to(est.dtype)[None, :, None].expand_as(est)
        return est, log_std
