"""Separation metrics (torch, last axis = time)."""
from __future__ import annotations

import torch


def si_sdr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SDR in dB over the last axis: 10·log10(||αs||² / ||αs − ŝ||²), α = ⟨ŝ,s⟩/||s||²."""
    alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / ((target - est).pow(2).sum(-1) + eps))
