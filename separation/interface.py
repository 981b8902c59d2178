"""What every separator offers to the audio, evaluation and benchmark code.

``separation.methods`` builds them by name (one registry for ``priorsep benchmark`` and
``priorsep evaluate``).
"""
from __future__ import annotations

from typing import Protocol, Sequence

import torch


class Separator(Protocol):
    """A mono separator at a fixed sample rate.

    ``sources``: names in output order; ``sample_rate``: Hz the model works at, or None for a
    method that works at any rate and on any length (the mixture, masks): callers then apply
    it to a whole recording at its own rate, channels as the batch, instead of resampling and
    chunking; ``__call__(mix)``: mixture (batch, time) -> estimates (batch, n_sources, time),
    in source units (``mix_scale · Σ_k est_k ≈ mix`` when the method enforces the mixture).
    """

    sources: Sequence[str]
    sample_rate: int | None

    def __call__(self, mix: torch.Tensor) -> torch.Tensor: ...


class OracleSeparator(Protocol):
    """A separator that reads the reference sources (an oracle: context, not a method), e.g.
    the ideal ratio mask. ``needs_references`` is True; ``__call__(mix (batch, time),
    references (batch, K, time)) -> (batch, K, time)`` in the references' order."""

    sources: Sequence[str]
    sample_rate: int | None
    needs_references: bool

    def __call__(self, mix: torch.Tensor, references: torch.Tensor) -> torch.Tensor: ...


def needs_references(separator) -> bool:
    """Whether ``separator`` is an :class:`OracleSeparator` (is called with the references)."""
    return bool(getattr(separator, "needs_references", False))
