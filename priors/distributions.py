"""Output distributions of autoregressive priors.

Both take network outputs ``params`` of shape (batch, channels, time) and a waveform
``x`` of shape (batch, time) in [-1, 1]. ``log_prob`` returns a **log-density in nats per
sample** with respect to the continuous waveform (discrete probability divided by the bin
width), so that every prior in the package, discrete or continuous, is scored on one scale.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .mulaw import bin_widths, dequantize, quantize


class MuLawCategorical(nn.Module):
    """256-way softmax over μ-law classes (WaveNet, van den Oord et al. 2016).

    Its density is piecewise constant, so it is not differentiable in ``x``: use
    :class:`DiscretizedLogisticMixture` for priors that drive separation.
    """

    def __init__(self, n_classes: int = 256):
        super().__init__()
        self.n_classes = n_classes
        self.register_buffer("log_widths", bin_widths(n_classes).log(), persistent=False)

    @property
    def n_params(self) -> int:
        return self.n_classes

    def log_prob_bins(self, params: torch.Tensor) -> torch.Tensor:
        """Log-probability of every class, (batch, n_classes, time); sums to 1 over classes."""
        return F.log_softmax(params, dim=1)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(batch, time) log-density of ``x`` in nats per sample."""
        q = quantize(x, self.n_classes)
        logp = self.log_prob_bins(params).gather(1, q.unsqueeze(1)).squeeze(1)
        return logp - self.log_widths[q]

    def sample(self, params: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Draw one waveform value per position: params (batch, n_classes, time) -> (batch, time)."""
        logits = params.transpose(1, 2)
        if temperature <= 0:
            q = logits.argmax(-1)
        else:
            q = torch.distributions.Categorical(logits=logits / temperature).sample()
        return dequantize(q, self.n_classes)


class DiscretizedLogisticMixture(nn.Module):
    """Discretized mixture of logistics (PixelCNN++, Salimans et al. 2017) on [-1, 1].

    ``n_bins`` equally spaced bins with centres -1 … 1; the two edge bins extend to ±∞,
    so the bin probabilities sum to exactly one. ``log_prob`` is smooth in ``x`` (it uses
    CDF differences at x ± half a bin), which lets separators differentiate through it.
    """

    def __init__(self, n_components: int = 4, n_bins: int = 65536, log_scale_min: float = -9.0):
        super().__init__()
        self.n_components = n_components
        self.n_bins = n_bins
        self.log_scale_min = log_scale_min

    @property
    def n_params(self) -> int:
        return 3 * self.n_components

    @property
    def half_bin(self) -> float:
        return 1.0 / (self.n_bins - 1)

    def _split(self, params: torch.Tensor):
        logit_pi, mu, log_s = params.chunk(3, dim=1)
        return logit_pi, mu, log_s.clamp(min=self.log_scale_min)

    def log_mass(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(batch, time) log-probability of the bin holding ``x`` (nats)."""
        logit_pi, mu, log_s = self._split(params)
        x = x.clamp(-1.0, 1.0).unsqueeze(1)
        d = self.half_bin
        centred = x - mu
        inv_s = torch.exp(-log_s)
        plus = inv_s * (centred + d)
        minus = inv_s * (centred - d)
        log_cdf_plus = F.logsigmoid(plus)  # log CDF(x + d)
        log_one_minus_cdf_minus = -F.softplus(minus)  # log (1 - CDF(x - d))
        # log(CDF(x+d) - CDF(x-d)) computed stably as log σ(plus) + log(1 - exp(log σ(minus) - log σ(plus)))
        log_cdf_minus = F.logsigmoid(minus)
        diff = (log_cdf_minus - log_cdf_plus).clamp(max=-1e-6)
        log_mid = log_cdf_plus + torch.log(-torch.expm1(diff))
        # where the bin is so narrow that the difference underflows, use the density times the width
        mid_in = inv_s * centred
        log_pdf_mid = mid_in - log_s - 2.0 * F.softplus(mid_in) + math.log(2 * d)
        log_mid = torch.where(diff > -1e-5, log_pdf_mid, log_mid)
        edge_lo = x < -1.0 + d
        edge_hi = x > 1.0 - d
        log_bin = torch.where(edge_lo, log_cdf_plus, torch.where(edge_hi, log_one_minus_cdf_minus, log_mid))
        return torch.logsumexp(log_bin + F.log_softmax(logit_pi, dim=1), dim=1)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(batch, time) log-density of ``x`` in nats per sample (bin mass / bin width)."""
        return self.log_mass(params, x) - math.log(2 * self.half_bin)

    def sample(self, params: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """params (batch, 3M, time) -> waveform (batch, time) in [-1, 1]."""
        logit_pi, mu, log_s = self._split(params)
        if temperature <= 0:
            k = logit_pi.argmax(1, keepdim=True)
            return mu.gather(1, k).squeeze(1).clamp(-1.0, 1.0)
        k = torch.distributions.Categorical(logits=logit_pi.transpose(1, 2)).sample().unsqueeze(1)
        mu_k = mu.gather(1, k).squeeze(1)
        s_k = log_s.gather(1, k).squeeze(1).exp()
        u = torch.rand_like(mu_k).clamp(1e-5, 1 - 1e-5)
        return (mu_k + temperature * s_k * (torch.log(u) - torch.log1p(-u))).clamp(-1.0, 1.0)


def make_head(kind: str, **kwargs) -> nn.Module:
    """Build an output distribution by name: ``"mulaw"`` or ``"logistic"``."""
    if kind == "mulaw":
        return MuLawCategorical(**kwargs)
    if kind == "logistic":
        return DiscretizedLogisticMixture(**kwargs)
    raise ValueError(f"unknown output head {kind!r}; choose 'mulaw' or 'logistic'")
