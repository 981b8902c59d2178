"""μ-law companding and quantisation of waveforms in [-1, 1]."""
from __future__ import annotations

import math

import torch


def mulaw_encode(x: torch.Tensor, mu: int = 255) -> torch.Tensor:
    """Compress ``x`` in [-1, 1] to y in [-1, 1] (same shape): sign(x)·ln(1+μ|x|)/ln(1+μ)."""
    x = x.clamp(-1.0, 1.0)
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mulaw_decode(y: torch.Tensor, mu: int = 255) -> torch.Tensor:
    """Inverse of :func:`mulaw_encode`: y in [-1, 1] -> x in [-1, 1]."""
    return torch.sign(y) * ((1.0 + mu) ** y.abs() - 1.0) / mu


def quantize(x: torch.Tensor, n_classes: int = 256) -> torch.Tensor:
    """Waveform in [-1, 1] -> integer μ-law class in [0, n_classes) (long tensor, same shape)."""
    y = mulaw_encode(x, n_classes - 1)
    return ((y + 1.0) / 2.0 * (n_classes - 1)).round().long().clamp(0, n_classes - 1)


def dequantize(q: torch.Tensor, n_classes: int = 256) -> torch.Tensor:
    """Integer μ-law class -> waveform value at the bin centre, in [-1, 1]."""
    y = q.float() / (n_classes - 1) * 2.0 - 1.0
    return mulaw_decode(y, n_classes - 1)


def bin_widths(n_classes: int = 256) -> torch.Tensor:
    """Width of each μ-law bin in the waveform domain, shape (n_classes,); they sum to 2.

    Bin c covers the waveform values whose μ-law code rounds to c; edges are decoded
    half-way points between class centres, clipped to [-1, 1].
    """
    centres = torch.arange(n_classes, dtype=torch.float64)
    lo = ((centres - 0.5) / (n_classes - 1) * 2.0 - 1.0).clamp(-1.0, 1.0)
    hi = ((centres + 0.5) / (n_classes - 1) * 2.0 - 1.0).clamp(-1.0, 1.0)
    return (mulaw_decode(hi, n_classes - 1) - mulaw_decode(lo, n_classes - 1)).float()
