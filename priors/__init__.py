"""Deep generative priors of single sources (WaveNet and flow models), trained with Lightning.

The Python API (importing this package is cheap; torch loads on first use)::

    import priors
    model, meta = priors.load_prior("checkpoints/toy_gpu/sin.pt")   # eval mode; meta["source"], …
    models, metas = priors.load_priors("checkpoints/toy_gpu")        # a folder, in source order

A prior scores waveforms with ``model.log_prob(x, sigma)`` and draws them with
``model.generate(n, length)`` (``priors.wavenet.WaveNet``, ``priors.flow``); ``priorsep
diagnose`` and ``priorsep sample`` use them.
"""
from __future__ import annotations

__all__ = ["load_prior", "load_priors", "CheckpointError"]


def __getattr__(name: str):
    if name in __all__:
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
