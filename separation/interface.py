"""What every separator offers to the audio, evaluation and benchmark code."""
from __future__ import annotations

from typing import Protocol, Sequence

import torch


class Separator(Protocol):
    """A mono separator at a fixed sample rate.

    ``sources``: names in output order; ``sample_rate``: Hz the model works at;
    ``__call__(mix)``: mixture (batch, time) -> estimates (batch, n_sources, time), same
    units as the input (the estimates add up to the mixture when the method enforces it).
    """

    sources: Sequence[str]
    sample_rate: int

    def __call__(self, mix: torch.Tensor) -> torch.Tensor: ...
