"""Noise levels σ for training σ-conditioned priors."""
from __future__ import annotations

import math

import torch


class NoiseSchedule:
    """σ per training example: 0 with probability ``p_clean``, else log-uniform in
    [sigma_min, sigma_max]. Noise is added unclipped (clipping noisy audio biases the prior).

    ``levels(n)`` gives the geometric grid sigma_max … sigma_min used by annealed samplers.
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 0.5, p_clean: float = 0.25):
        if not 0 < sigma_min <= sigma_max:
            raise ValueError("need 0 < sigma_min <= sigma_max")
        self.sigma_min, self.sigma_max, self.p_clean = sigma_min, sigma_max, p_clean

    def sample(self, n: int, device=None) -> torch.Tensor:
        u = torch.rand(n, device=device)
        log_sigma = math.log(self.sigma_min) + u * (math.log(self.sigma_max) - math.log(self.sigma_min))
        sigma = log_sigma.exp()
        clean = torch.rand(n, device=device) < self.p_clean
        return torch.where(clean, torch.zeros_like(sigma), sigma)

    def levels(self, n: int) -> list[float]:
        if n == 1:
            return [self.sigma_min]
        r = (self.sigma_min / self.sigma_max) ** (1 / (n - 1))
        return [self.sigma_max * r**i for i in range(n)]

    def as_dict(self) -> dict:
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "p_clean": self.p_clean}
