"""Annealed Langevin separation (BASIS / PnF style) with the frozen priors."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from priors.noise import NoiseSchedule

from .encoder import project_to_mixture


class LangevinSeparator(nn.Module):
    """Iterative posterior sampling, one σ level at a time (σ_max → σ_min, the geometric grid
    of :meth:`priors.noise.NoiseSchedule.levels`):

        s ← s + η ∇_s [ Σ_k log p_k(s_k | σ) − ||m − c·Σ_k s_k||² / (2γ²) ] + √(2η)·ε,
        η = step_size · σ²,  γ = σ·mixture_weight^(−1/2)  (the constraint tightens with σ)

    (c = mix_scale). Initialised with every source equal to m/(K·c) (consistent with the
    mixture), optionally projected onto Σ s = m/c after each level and at the end.
    ``__call__(mix (batch, time)) -> (batch, K, time)``; a :class:`separation.interface.Separator`.

    The levels come from ``schedule`` when given, else from ``NoiseSchedule(sigma_min,
    sigma_max)``; whoever loads the priors checks the range against their metadata
    (:func:`priors.noise.check_prior_sigma`, done by ``separation.methods``).
    """

    def __init__(self, priors: Sequence[nn.Module], sources: Sequence[str], sample_rate: int,
                 mix_scale: float = 1.0, sigma_max: float = 0.3, sigma_min: float = 0.01, n_levels: int = 10,
                 steps_per_level: int = 20, step_size: float = 0.05, mixture_weight: float = 1.0,
                 project: bool = True, progress: bool = False, seed: int = 0,
                 schedule: NoiseSchedule | None = None):
        super().__init__()
        self.priors = nn.ModuleList(priors).eval().requires_grad_(False)  # registered: .to(device) moves them
        self.sources, self.sample_rate, self.mix_scale = list(sources), sample_rate, mix_scale
        self.schedule = schedule or NoiseSchedule(sigma_min, sigma_max, p_clean=0.0)
        self.sigmas = self.schedule.levels(n_levels)
        self.steps_per_level, self.step_size = steps_per_level, step_size
        self.mixture_weight, self.project, self.progress, self.seed = mixture_weight, project, progress, seed

    def log_posterior(self, s: torch.Tensor, mix: torch.Tensor, sigma: float) -> torch.Tensor:
        """Unnormalised log p(s | m) at noise level σ, summed over everything (nats)."""
        sig = torch.full((s.shape[0],), sigma, device=s.device)
        prior = sum(p.log_prob(s[:, k], sig).sum() for k, p in enumerate(self.priors))
        gamma2 = sigma**2 / self.mixture_weight
        resid = mix - self.mix_scale * s.sum(1)
        return prior - (resid**2).sum() / (2 * gamma2)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        g = torch.Generator(device=mix.device).manual_seed(self.seed)
        k = len(self.priors)
        s = (mix / (k * self.mix_scale)).unsqueeze(1).repeat(1, k, 1)
        total = len(self.sigmas) * self.steps_per_level
        bar = tqdm(total=total, desc="langevin", disable=not self.progress, leave=False)
        for sigma in self.sigmas:
            eta = self.step_size * sigma**2
            for _ in range(self.steps_per_level):
                s = s.detach().requires_grad_(True)
                with torch.enable_grad():
                    grad, = torch.autograd.grad(self.log_posterior(s, mix, sigma), s)
                noise = torch.randn(s.shape, generator=g, device=s.device)
                s = s.detach() + eta * grad + math.sqrt(2 * eta) * noise
                bar.update(1)
            if self.project:
                s = project_to_mixture(s, mix, self.mix_scale)
        bar.close()
        return s.detach()
