"""The variational objective of the separator, in one readable function."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .encoder import project_to_mixture


def elbo(mu: torch.Tensor, log_std: torch.Tensor, mix: torch.Tensor, priors: Sequence, *,
         beta: float = 1.0, prior_sigma: float = 0.0, mixture_std: float = 0.01, mix_scale: float = 1.0,
         project: bool = False, n_samples: int = 1,
         score_rms: float | Sequence[float] | None = None, posterior_std: float | None = None) -> dict[str, torch.Tensor]:
    """Monte-Carlo ELBO of q(s | m) = Π_k N(μ_k, σ_k²), every term in nats per sample.

        ELBO = E_q[ Σ_k log p_k(s_k) + log N(m; mix_scale·Σ_k s_k, mixture_std²) ] + β·H[q]

    with reparameterised s = μ + σ ⊙ ε. mu, log_std (batch, K, time); mix (batch, time);
    ``priors[k].log_prob(x, sigma) -> (batch, time)``, scored at noise level ``prior_sigma``.
    With ``project`` the samples are projected onto Σ s = m/mix_scale and the mixture term
    is dropped (an exact constraint). β = 1 is the true ELBO; β ≠ 1 the β-VAE trade-off.
    ``score_rms`` (one value, or one per source): score each estimate rescaled to this rms
    (``gain_normalised``), so the priors judge its shape and not its level (a continuous
    density rewards shrinking a signal by log(1/a) nats per sample; the mixture projection
    alone then sets the levels). The prior term is then a surrogate, no longer log p_k(s_k),
    and the returned "elbo" no longer bounds log p(m).
    ``posterior_std``: a fixed-variance posterior N(μ_k, posterior_std²) instead of the
    encoder's ``log_std`` (its entropy is then a constant; small values approach MAP).
    Returns the terms (batch means) and ``loss = −(prior + mixture + β·entropy)``.
    """
    if posterior_std is not None:
        log_std = torch.full_like(mu, math.log(posterior_std))
    std = log_std.exp()
    prior_term = mu.new_zeros(())
    mixture_term = mu.new_zeros(())
    for _ in range(n_samples):
        s = mu + std * torch.randn_like(mu)
        if project:
            s = project_to_mixture(s, mix, mix_scale)
        sig = torch.full((mu.shape[0],), float(prior_sigma), device=mu.device)
        scored = s if score_rms is None else gain_normalised(s, score_rms)
        prior_term = prior_term + sum(p.log_prob(scored[:, k], sig).mean() for k, p in enumerate(priors))
        if not project:
            resid = mix - mix_scale * s.sum(1)
            mixture_term = mixture_term + (-0.5 * (resid / mixture_std) ** 2
                                           - math.log(mixture_std) - 0.5 * math.log(2 * math.pi)).mean()
    prior_term, mixture_term = prior_term / n_samples, mixture_term / n_samples
    entropy = (log_std + 0.5 * math.log(2 * math.pi * math.e)).mean(dim=(0, 2)).sum()
    total = prior_term + mixture_term + beta * entropy
    return {"loss": -total, "elbo": prior_term + mixture_term + entropy, "prior": prior_term,
            "mixture": mixture_term, "entropy": entropy}


def gain_normalised(s: torch.Tensor, rms: float | Sequence[float], eps: float = 1e-8) -> torch.Tensor:
    """s (batch, K, time) rescaled so every signal has root-mean-square ``rms`` (one value, or
    one per source; differentiable, and the result does not depend on the input's level)."""
    target = torch.as_tensor(rms, dtype=s.dtype, device=s.device).reshape(-1, 1)
    return s * (target / s.pow(2).mean(-1, keepdim=True).clamp_min(eps).sqrt())


def gaussian_nll(mu: torch.Tensor, log_std: torch.Tensor, target: torch.Tensor, beta_nll: float = 0.0) -> torch.Tensor:
    """−log q(target | m) per sample (nats), summed over sources, mean over batch and time:
    the sleep-phase (and supervised) loss.

    ``beta_nll`` > 0 weights each term by the detached variance^beta_nll (β-NLL, Seitzer et
    al. 2022): with 1 the mean receives exactly the MSE gradient, so regions the network
    finds hard are not down-weighted by their own predicted variance; 0 is the plain NLL."""
    z = (target - mu) * torch.exp(-log_std)
    nll = 0.5 * z**2 + log_std + 0.5 * math.log(2 * math.pi)
    if beta_nll:
        nll = nll * torch.exp(2 * beta_nll * log_std.detach())
    return nll.mean(dim=(0, 2)).sum()
