"""Reference separators that give the learned ones context: NMF with per-source templates
and oracle masks. (The supervised bound is the variational separator's encoder trained on
real pairs: ``configs/separation/toy_supervised.yaml``.)"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    return torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, device=x.device), return_complex=True)


def _istft(spec: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    return torch.istft(spec, n_fft, hop, window=torch.hann_window(n_fft, device=spec.device), length=length)


def nmf_kl(v: torch.Tensor, rank: int, n_iter: int = 200, templates: torch.Tensor | None = None,
           seed: int = 0, eps: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """KL-divergence NMF by multiplicative updates: v (F, N) ≈ W (F, R) @ H (R, N).

    With ``templates`` given, W is fixed to them and only H is learned. Returns (W, H).
    """
    g = torch.Generator().manual_seed(seed)
    f, n = v.shape
    w = templates if templates is not None else torch.rand(f, rank, generator=g, dtype=v.dtype) + 0.1
    h = torch.rand(w.shape[1], n, generator=g, dtype=v.dtype) + 0.1
    for _ in range(n_iter):
        h = h * (w.T @ (v / (w @ h + eps))) / (w.sum(0)[:, None] + eps)
        if templates is None:
            w = w * ((v / (w @ h + eps)) @ h.T) / (h.sum(1)[None, :] + eps)
            scale = w.sum(0, keepdim=True) + eps
            w, h = w / scale, h * scale.T
    return w, h


class NMFSeparator(nn.Module):
    """Per-source spectral templates learned by KL-NMF from isolated training audio, then
    activations fitted to each mixture with the templates fixed; soft (Wiener-like) masks
    on the mixture STFT, mixture phase. ``fit`` first; then mix (batch, time) -> (batch, K, time)."""

    def __init__(self, sources: Sequence[str], sample_rate: int, mix_scale: float = 1.0, rank: int = 32,
                 n_fft: int = 1024, hop: int = 256, n_iter: int = 200, seed: int = 0):
        super().__init__()
        self.sources, self.sample_rate, self.mix_scale = list(sources), sample_rate, mix_scale
        self.rank, self.n_fft, self.hop, self.n_iter, self.seed = rank, n_fft, hop, n_iter, seed
        self.register_buffer("templates", torch.empty(0))

    def fit(self, isolated: Sequence[torch.Tensor]) -> "NMFSeparator":
        """isolated[k]: (n, time) training audio of source k only."""
        ws = []
        for k, x in enumerate(isolated):
            v = _stft(x.double(), self.n_fft, self.hop).abs()  # (n, F, N)
            v = v.permute(1, 0, 2).reshape(v.shape[1], -1)
            w, _ = nmf_kl(v, self.rank, self.n_iter, seed=self.seed + k)
            ws.append(w)
        self.templates = torch.cat(ws, dim=1)
        return self

    @torch.no_grad()
    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        if self.templates.numel() == 0:
            raise RuntimeError("NMFSeparator.fit must be called first")
        spec = _stft(mix.double(), self.n_fft, self.hop)  # (B, F, N)
        out = []
        for b in range(mix.shape[0]):
            _, h = nmf_kl(spec[b].abs(), self.templates.shape[1], self.n_iter, templates=self.templates, seed=self.seed)
            parts = torch.stack([self.templates[:, k * self.rank:(k + 1) * self.rank] @ h[k * self.rank:(k + 1) * self.rank]
                                 for k in range(len(self.sources))])
            masks = parts / parts.sum(0, keepdim=True).clamp(min=1e-10)
            out.append(_istft(masks * spec[b], self.n_fft, self.hop, mix.shape[-1]))
        return (torch.stack(out) / self.mix_scale).to(mix.dtype)


def oracle_ratio_mask(mix: torch.Tensor, sources: torch.Tensor, mix_scale: float = 1.0, power: float = 2.0,
                      n_fft: int = 2048, hop: int = 512) -> torch.Tensor:
    """Ideal ratio mask |S_k|^p / Σ_j |S_j|^p applied to the mixture (IRM2 for p = 2).
    mix (batch, time), sources (batch, K, time) -> (batch, K, time). Needs the references:
    an oracle, for context only."""
    s = _stft(sources.reshape(-1, sources.shape[-1]), n_fft, hop).reshape(*sources.shape[:2], -1, _stft(mix[:1], n_fft, hop).shape[-1])
    m = _stft(mix, n_fft, hop)
    p = s.abs() ** power
    masks = p / p.sum(1, keepdim=True).clamp(min=1e-12)
    est = _istft((masks * m.unsqueeze(1)).reshape(-1, *m.shape[1:]), n_fft, hop, mix.shape[-1])
    return est.reshape(sources.shape) / mix_scale
