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


def overlap_add(separator, signals, acc, chunk: int, overlap: float = DEFAULT_OVERLAP,
                batch_size: int = 8, progress: bool = False) -> None:
    """Separate ``signals`` — rows of float32 at the separator's rate: an array (rows, time)
    or a list of 1-D arrays of any lengths (channels of several recordings) — chunk by chunk
    into ``acc``, indexable as ``acc[k][i]`` (a writable 1-D array as long as row i), zero on
    entry, holding the normalised estimates on return. Chunks of different rows share a
    forward pass; a row shorter than ``chunk`` is one chunk of its own length, batched with
    rows of the same length only."""
    from tqdm.auto import tqdm

    n_sources = len(separator.sources)
    batch_size = max(1, int(batch_size))
    groups: dict[int, list[tuple[int, int]]] = {}  # chunk length -> [(row, offset)]
    weights = []
    for i, row in enumerate(signals):
        length = len(row)
        c = min(int(chunk), length)
        offsets = chunk_offsets(length, c, c - int(round(overlap * c)))
        window = triangular_window(c)
        weight = np.zeros(length, np.float32)
        for o in offsets:
            weight[o:o + c] += window
        weights.append(weight)
        groups.setdefault(c, []).extend((i, o) for o in offsets)
    device = _device(separator)
    total = sum(len(items) for items in groups.values())
    with tqdm(total=total, unit="chunk", desc="separating", disable=not progress, leave=False) as bar, \
            torch.no_grad():  # not inference_mode: iterative separators (Langevin) re-enable autograd
        for c, items in groups.items():
            window = triangular_window(c)
            for start in range(0, len(items), batch_size):
                batch = items[start:start + batch_size]
                x = torch.from_numpy(np.stack([signals[i][o:o + c] for i, o in batch])).to(device)
                y = separator(x)
                if tuple(y.shape) != (len(batch), n_sources, c):
                    raise RuntimeError(f"separator returned shape {tuple(y.shape)}, expected "
                                       f"{(len(batch), n_sources, c)}")
                y = y.detach().float().cpu().numpy()
                for j, (i, o) in enumerate(batch):
                    for k in range(n_sources):
                        acc[k][i][o:o + c] += window * y[j, k]
                bar.update(len(batch))
    for k in range(n_sources):
        for i, weight in enumerate(weights):
            acc[k][i] /= weight


def separate_long(separator, mix: torch.Tensor, chunk: int, overlap: float = DEFAULT_OVERLAP,
                  batch_size: int = 8, progress: bool = False) -> torch.Tensor:
    """Torch-level chunked separation at the separator's own rate: mix (time,) ->
    estimates (K, time) on the mixture's device; ``chunk`` in samples."""
    signals = mix.detach().float().cpu().numpy()[None]
    acc = np.zeros((len(separator.sources), 1, signals.shape[-1]), np.float32)
    overlap_add(separator, signals, acc, chunk, overlap, batch_size, progress)
    return torch.from_numpy(acc[:, 0]).to(mix.device)


def _as_channels(audio) -> tuple[np.ndarray, bool]:
    audio = np.asarray(audio, dtype=np.float32)
    mono = audio.ndim == 1
    if mono:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[-1] == 0:
        raise ValueError(f"audio must be (channels, time) with time > 0, got shape {audio.shape}")
    return audio, mono


def separate_arrays(separator, recordings, batch_size: int = 8, progress: bool = True,
                    chunk_seconds: float = DEFAULT_CHUNK_SECONDS, overlap: float = DEFAULT_OVERLAP) -> list[np.ndarray]:
    """Separate several recordings together: ``recordings`` = [(audio (channels, time) or
    (time,), sr Hz), …] -> [estimates (K, channels, time) or (K, time) float32 at that sr].

    Every channel of every recording is separated on its own at ``separator.sample_rate``
    (soxr resampling on the way in and out), in chunks of ``chunk_seconds`` overlapping by
    ``overlap`` (a fraction of a chunk); chunks of all recordings are batched together,
    ``batch_size`` per forward pass, so short files fill the batches of a GPU. Memory: the
    inputs, their outputs and one batch (plus the model-rate accumulators when resampling).
    """
    rate = int(separator.sample_rate)
    n_sources = len(separator.sources)
    chunk = max(1, int(round(chunk_seconds * rate)))
    inputs = [(*_as_channels(a), int(sr)) for a, sr in recordings]
    rows, acc = [], [[] for _ in range(n_sources)]
    outs = []
    for audio, _, sr in inputs:
        out = np.zeros((n_sources, *audio.shape), np.float32)
        outs.append(out)
        for c in range(audio.shape[0]):
            if sr == rate:  # accumulate straight into the output
                rows.append(audio[c])
                for k in range(n_sources):
                    acc[k].append(out[k, c])
            else:
                rows.append(resample(audio[c], sr, rate))
                for k in range(n_sources):
                    acc[k].append(np.zeros(rows[-1].shape, np.float32))
    overlap_add(separator, rows, acc, chunk, overlap, batch_size, progress)
    del rows
    results, r = [], 0
    for (audio, mono, sr), out in zip(inputs, outs):
        for c in range(audio.shape[0]):
            if sr != rate:  # back to the input's rate, freeing each accumulator once done
                for k in range(n_sources):
                    out[k, c] = fix_length(resample(acc[k][r], rate, sr), audio.shape[-1])
                    acc[k][r] = None
            r += 1
        results.append(out[:, 0] if mono else out)
    return results


def separate_array(separator, audio: np.ndarray, sr: int, batch_size: int = 8, progress: bool = True,
                   chunk_seconds: float = DEFAULT_CHUNK_SECONDS, overlap: float = DEFAULT_OVERLAP) -> np.ndarray:
    """Separate one recording: audio (channels, time) [or (time,)] at ``sr`` Hz ->
    estimates (K, channels, time) [or (K, time)] float32 at ``sr`` Hz, same length
    (see :func:`separate_arrays`)."""
    return separate_arrays(separator, [(audio, sr)], batch_size, progress, chunk_seconds, overlap)[0]
