"""Noise levels σ: the training distribution of σ-conditioned priors, the geometric grids of
annealed samplers, and the check that a σ used at inference lies in the range a prior was
trained on (recorded in its checkpoint's ``noise`` metadata)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch


class NoiseSchedule:
    """σ per training example: 0 with probability ``p_clean``, else log-uniform in
    [sigma_min, sigma_max]. Noise is added unclipped (clipping noisy audio biases the prior).

    ``levels(n)`` gives the geometric grid sigma_max … sigma_min used by annealed samplers
    (Langevin). ``as_dict()`` is what a prior checkpoint records (``meta["noise"]``);
    ``from_dict`` reads it back and ``trained_range()`` is the σ interval the prior has seen.
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 0.5, p_clean: float = 0.25):
        if not 0 < sigma_min <= sigma_max:
            raise ValueError(f"need 0 < sigma_min <= sigma_max, got sigma_min {sigma_min}, sigma_max {sigma_max}")
        self.sigma_min, self.sigma_max, self.p_clean = sigma_min, sigma_max, p_clean

    def sample(self, n: int, device=None) -> torch.Tensor:
        u = torch.rand(n, device=device)
        log_sigma = math.log(self.sigma_min) + u * (math.log(self.sigma_max) - math.log(self.sigma_min))
        sigma = log_sigma.exp()
        clean = torch.rand(n, device=device) < self.p_clean
        return torch.where(clean, torch.zeros_like(sigma), sigma)

    def levels(self, n: int) -> list[float]:
        """n geometric levels from sigma_max down to sigma_min (one level: [sigma_max])."""
        if n < 1:
            raise ValueError(f"need at least one noise level, got {n}")
        r = (self.sigma_min / self.sigma_max) ** (1 / max(1, n - 1))
        return [self.sigma_max * r**i for i in range(n)]

    def trained_range(self) -> tuple[float, float]:
        """The σ a prior trained with this schedule has seen: [0, sigma_max] when clean
        examples were drawn (``p_clean`` > 0), else [sigma_min, sigma_max]."""
        return (0.0 if self.p_clean > 0 else self.sigma_min), self.sigma_max

    def as_dict(self) -> dict:
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "p_clean": self.p_clean}

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseSchedule":
        return cls(float(d["sigma_min"]), float(d["sigma_max"]), float(d.get("p_clean", 0.0)))


def check_prior_sigma(sigma: float, metas: Sequence[dict], what: str = "prior_sigma",
                      where: str | Path | None = None) -> None:
    """Refuse a σ at which a prior would be scored outside the range it was trained on.

    ``metas``: prior checkpoint metadata (``priors.checkpoint.load_priors``); a prior whose
    checkpoint records no ``noise`` is not checked. Raises
    :class:`priors.checkpoint.CheckpointError` (one line: the CLI prints it as an error), e.g.
    ``prior_sigma 0.3 is outside the range the priors were trained on [0, 0.1] (checkpoints/x: sin)``.
    """
    from .checkpoint import CheckpointError

    for meta in metas:
        noise = meta.get("noise")
        if not noise:
            continue
        low, high = NoiseSchedule.from_dict(noise).trained_range()
        if not low <= float(sigma) <= high:
            label = meta.get("source", "?") if where is None else f"{where}: {meta.get('source', '?')}"
            raise CheckpointError(f"{what} {float(sigma):g} is outside the range the priors were trained on "
                                  f"[{low:g}, {high:g}] ({label})")
