"""Separating long, multi-channel recordings with a mono, fixed-rate separator.

The recording is resampled to the separator's rate, every channel is cut into overlapping
chunks (``chunk_seconds`` long, ``overlap`` of a chunk shared by neighbours; the last chunk
is shifted to end at the last sample instead of being zero-padded), chunks of all channels
are stacked into batches, and the estimates are overlap-added with triangular weights
normalised by their running sum, so a separator that returns its input reproduces it
exactly. Only the input, one batch and the output accumulators are held in memory.
Estimates are in the separator's source units: ``mix_scale · Σ_k est_k ≈ mixture`` for a
separator that projects onto the mixture.
"""
from __future__ import annotations

import numpy as np
import torch

from .audio import fix_length, resample

DEFAULT_CHUNK_SECONDS = 4.0
DEFAULT_OVERLAP = 0.25


def chunk_offsets(length: int, chunk: int, hop: int) -> list[int]:
    """Start samples of chunks of ``chunk`` samples every ``hop`` that cover [0, length);
    the last one starts at ``length - chunk``. Needs ``chunk <= length``."""
    if not 0 < chunk <= length:
        raise ValueError(f"need 0 < chunk <= length, got chunk {chunk}, length {length}")
    offsets = list(range(0, length - chunk + 1, max(1, hop)))
    if offsets[-1] != length - chunk:
        offsets.append(length - chunk)
    return offsets


def triangular_window(chunk: int) -> np.ndarray:
    """Overlap-add weights (chunk,) float32: a triangle peaking at 1 in the middle, strictly
    positive at both ends (so every sample has a non-zero weight sum)."""
    half = chunk // 2
    w = np.concatenate([np.arange(1, half + 1), np.arange(chunk - half, 0, -1)]).astype(np.float32)
    return w / w.max()


def _device(separator) -> torch.device:
    if isinstance(separator, torch.nn.Module):
        for p in separator.parameters():
            return p.device
        for b in separator.buffers():
            return b.device
    return torch.device("cpu")


def overlap_add(separator, signals: np.ndarray, acc, chunk: int, overlap: float = DEFAULT_OVERLAP,
                batch_size: int = 8, progress: bool = False) -> None:
    """Separate ``signals`` (channels, time) float32, at the separator's rate, chunk by chunk
    into ``acc``: indexable as ``acc[k][c, t]`` (an array (K, channels, time) or a list of K
    arrays (channels, time)), zero on entry, holding the normalised estimates on return."""
    from tqdm.auto import tqdm

    n_channels, length = signals.shape
    n_sources = len(separator.sources)
    batch_size = max(1, int(batch_size))
    chunk = min(int(chunk), length)
    hop = chunk - int(round(overlap * chunk))
    offsets = chunk_offsets(length, chunk, hop)
    window = triangular_window(chunk)
    weight = np.zeros(length, np.float32)
    for o in offsets:
        weight[o:o + chunk] += window
    items = [(c, o) for o in offsets for c in range(n_channels)]  # channels of a chunk side by side
    device = _device(separator)
    with tqdm(total=len(items), unit="chunk", desc="separating", disable=not progress, leave=False) as bar, \
            torch.no_grad():  # not inference_mode: iterative separators (Langevin) re-enable autograd
        for i in range(0, len(items), batch_size):
            batch = items[i:i + batch_size]
            x = torch.from_numpy(np.stack([signals[c, o:o + chunk] for c, o in batch])).to(device)
            y = separator(x)
            if tuple(y.shape) != (len(batch), n_sources, chunk):
                raise RuntimeError(f"separator returned shape {tuple(y.shape)}, expected "
                                   f"{(len(batch), n_sources, chunk)}")
            y = y.detach().float().cpu().numpy()
            for j, (c, o) in enumerate(batch):
                for k in range(n_sources):
                    acc[k][c, o:o + chunk] += window * y[j, k]
            bar.update(len(batch))
    for k in range(n_sources):
        acc[k] /= weight


def separate_long(separator, mix: torch.Tensor, chunk: int, overlap: float = DEFAULT_OVERLAP,
                  batch_size: int = 8, progress: bool = False) -> torch.Tensor:
    """Torch-level chunked separation at the separator's own rate: mix (time,) ->
    estimates (K, time) on the mixture's device; ``chunk`` in samples."""
    signals = mix.detach().float().cpu().numpy()[None]
    acc = np.zeros((len(separator.sources), 1, signals.shape[-1]), np.float32)
    overlap_add(separator, signals, acc, chunk, overlap, batch_size, progress)
    return torch.from_numpy(acc[:, 0]).to(mix.device)


def separate_array(separator, audio: np.ndarray, sr: int, batch_size: int = 8, progress: bool = True,
                   chunk_seconds: float = DEFAULT_CHUNK_SECONDS, overlap: float = DEFAULT_OVERLAP) -> np.ndarray:
    """Separate a recording: audio (channels, time) [or (time,)] at ``sr`` Hz ->
    estimates (K, channels, time) [or (K, time)] float32 at ``sr`` Hz, same length.

    Each channel is separated on its own at ``separator.sample_rate`` (soxr resampling on
    the way in and out), in chunks of ``chunk_seconds`` at the model's rate overlapping by
    ``overlap`` (a fraction of a chunk), ``batch_size`` chunks per forward pass.
    """
    audio = np.asarray(audio, dtype=np.float32)
    mono = audio.ndim == 1
    if mono:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[-1] == 0:
        raise ValueError(f"audio must be (channels, time) with time > 0, got shape {audio.shape}")
    n_channels, length = audio.shape
    rate = int(separator.sample_rate)
    n_sources = len(separator.sources)
    chunk = max(1, int(round(chunk_seconds * rate)))
    if rate == int(sr):  # accumulate straight into the output
        out = np.zeros((n_sources, n_channels, length), np.float32)
        overlap_add(separator, audio, out, chunk, overlap, batch_size, progress)
        return out[:, 0] if mono else out
    # resample one channel at a time (bounded temporaries), accumulate at the model's rate
    x = None
    for c in range(n_channels):
        xc = resample(audio[c], sr, rate)
        if x is None:
            x = np.empty((n_channels, xc.shape[-1]), np.float32)
        x[c] = xc
    acc = [np.zeros(x.shape, np.float32) for _ in range(n_sources)]
    overlap_add(separator, x, acc, chunk, overlap, batch_size, progress)
    del x, xc
    out = np.empty((n_sources, n_channels, length), np.float32)
    for k in range(n_sources):  # back to the input's rate, freeing each accumulator once done
        for c in range(n_channels):
            out[k, c] = fix_length(resample(acc[k][c], rate, sr), length)
        acc[k] = None
    return out[:, 0] if mono else out
