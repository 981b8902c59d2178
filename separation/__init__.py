"""Unsupervised source separation with deep generative priors: the separators.

The Python API (importing this package is cheap; torch loads on first use)::

    import separation
    stems = separation.separate(audio, sample_rate)            # {"sin": array, …} like audio
    stems = separation.separate(audio, 44_100, model="toy-fast")
    sep = separation.load_separator("toy")                      # a torch module, or a path
    separation.MODELS                                           # the named, packaged models

``priorsep models`` lists the named models; ``priors.load_prior`` loads a prior.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["separate", "load_separator", "resolve_model", "MODELS", "DEFAULT_MODEL", "PriorsepError",
           "ToyModelWarning"]

_LAZY = {"load_separator": "models", "resolve_model": "models", "MODELS": "models", "DEFAULT_MODEL": "models",
         "ToyModelWarning": "models", "PriorsepError": "errors"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])


def separate(audio, sample_rate: int, model="toy", *, device="cpu", precision: str = "fp32",
             chunk_seconds: float | None = None, batch_size: int = 8, progress: bool = False) -> dict[str, "np.ndarray"]:
    """Separate one recording into its sources: ``{source name: estimate}``.

    ``audio``: an array (or anything ``numpy.asarray`` takes, e.g. a CPU tensor) of shape
    (time,) for mono, or 2-D for several channels: (channels, time), or (time, channels) as
    ``soundfile.read`` returns it — a 2-D array with more rows than columns is taken as
    (time, channels). ``sample_rate`` in Hz: any rate; the audio is resampled to the model's
    rate and back. Each estimate is float32 with the input's shape, layout and rate, in the
    model's source units, as ``priorsep separate`` writes them: ``mix_scale · Σ estimates``
    reproduces the audio (up to the resampling's band limit) for a separator that projects onto
    the mixture (the toy models: ``mix_scale`` 0.25, a toy mixture being the mean of its sources).

    ``model``: a name of :data:`separation.MODELS` (``priorsep models`` lists them), a
    checkpoint path, or a separator already loaded with :func:`load_separator`. Loaded
    models are cached (per file, device and precision). ``chunk_seconds`` (default 4),
    ``batch_size``, ``device`` and ``precision`` (``fp32``/``bf16``) are those of
    ``priorsep separate``. A toy-set model applied to audio that is not from the toy set
    (another rate than 14 700 Hz, or several channels) warns once
    (:class:`separation.ToyModelWarning`).
    """
    import numpy as np

    from .apply import DEFAULT_CHUNK_SECONDS, separate_array
    from .models import cached_separator, warn_toy_mismatch

    x = np.asarray(audio, dtype=np.float32)
    if x.ndim not in (1, 2) or x.size == 0:
        raise ValueError(f"audio must be (time,), (channels, time) or (time, channels) and not empty, "
                         f"got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("audio holds NaN or infinite samples")
    time_major = x.ndim == 2 and x.shape[0] > x.shape[1]
    channels_first = np.ascontiguousarray(x.T) if time_major else x
    sep = model if callable(model) and hasattr(model, "sources") else cached_separator(model, device, precision)
    warn_toy_mismatch(sep, channels_first.shape, sample_rate)
    est = separate_array(sep, channels_first, int(sample_rate), batch_size=batch_size, progress=progress,
                         chunk_seconds=chunk_seconds or DEFAULT_CHUNK_SECONDS)
    return {name: np.ascontiguousarray(e.T) if time_major else e for name, e in zip(sep.sources, est)}
