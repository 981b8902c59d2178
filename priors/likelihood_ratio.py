"""LikelihoodRatio: score a source by how much better its own prior explains it than a background prior.

A density model trained on one instrument rates simple, predictable signals (silence, a held
note of another instrument) above its own instrument: its log-likelihood is dominated by how
predictable a signal is, not by whose it is. Subtracting the log-likelihood of a background prior
trained the same way on every instrument cancels that term (Ren et al. 2019, "Likelihood ratios
for out-of-distribution detection"):

    score_k(x) = log p_k(x) − log p_bg(x)

Positive where x looks more like source k than like any source, ≈ 0 for signals both priors find
equally easy (silence), negative for other sources. Down a column (one signal, several priors)
the ranking is that of the raw likelihoods; along a row it compares the evidence for source k.

Sampling is the source prior's alone: the ratio is a score, not a normalised density.

A ratio is unbounded above wherever the background is more wrong than the source prior, so a
separator trained on it can gain by leaving the data. ``bounded=True`` scores each position
against the mixture ½ p_k + ½ p_bg instead:

    log p_k − log(½ p_k + ½ p_bg) = log 2 − softplus(−r),   r = log p_k − log p_bg of the position

which is at most log 2: a clear case of source k, real or not, cannot outscore another clear
case. For priors whose ``log_prob`` is an average over ``n_mels`` bins (frame priors), r is the
whole frame's log-ratio (``n_mels`` × the per-bin one) and the bounded score is divided by
``n_mels`` again, so both scores are in nats per bin.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LikelihoodRatio(nn.Module):
    """``prior`` (any prior with ``log_prob(x, sigma) -> (batch, positions)``) scored against
    ``background`` (same class and feature frames, so the positions line up)."""

    def __init__(self, prior: nn.Module, background: nn.Module, bounded: bool = False):
        super().__init__()
        self.prior, self.background, self.bounded = prior, background, bounded

    def log_prob(self, x: torch.Tensor, sigma=None) -> torch.Tensor:
        """x (batch, time) -> (batch, positions): log p_k − log p_bg in the prior's units (or
        the bounded score, see the module docstring)."""
        ratio = self.prior.log_prob(x, sigma) - self.background.log_prob(x, sigma)
        if not self.bounded:
            return ratio
        n = getattr(self.prior, "n_mels", 1)
        return (math.log(2) - F.softplus(-ratio * n)) / n

    def __getattr__(self, name: str):
        """Everything else (``generate``, ``sample_features``, ``features``, ``receptive_field`` …)
        is the source prior's."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["prior"], name)
