"""Audio files in and out: load (any common format), validate, resample, save.

Arrays are float32, shape (channels, time), in the file's own units (full scale = 1.0);
sample rates in Hz. Estimates are written as 32-bit float WAV: no clipping and no
quantisation, so values beyond ±1 (a separator may overshoot) survive the round trip.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import PriorsepError

#: soxr quality, named as librosa names it (band-limited sinc, "high quality")
RES_TYPE = "soxr_hq"
_WRITE_BLOCK = 1 << 20  # samples per channel per write


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV/FLAC/OGG/AIFF file with libsndfile, or MP3/M4A/MP4 (first stream) and
    anything else ffmpeg decodes through librosa/audioread.

    Returns (audio (channels, time) float32, sample rate in Hz). Raises
    :class:`PriorsepError` (one line) for a missing, unreadable, empty or non-finite file.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise PriorsepError(f"{path}: file not found")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (time, channels)
        audio = np.ascontiguousarray(data.T)
    except Exception as sf_err:  # libsndfile cannot decode it: try ffmpeg via audioread
        audio, sr = _load_with_librosa(path, sf_err)
    if audio.shape[-1] == 0:
        raise PriorsepError(f"{path}: the file holds no audio samples")
    if not np.isfinite(audio).all():
        raise PriorsepError(f"{path}: the audio holds NaN or infinite samples")
    return audio, int(sr)


def _load_with_librosa(path: Path, first_error: Exception) -> tuple[np.ndarray, int]:
    import warnings

    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "PySoundFile failed. Trying audioread instead."
            y, sr = librosa.load(str(path), sr=None, mono=False, dtype=np.float32)
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        first = str(first_error).splitlines()[0] if str(first_error) else type(first_error).__name__
        raise PriorsepError(f"{path}: not a readable audio file ({first}; {reason})") from None
    return np.ascontiguousarray(np.atleast_2d(y), dtype=np.float32), int(sr)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling along the last axis with soxr (HQ quality).

    audio (..., time) at ``sr_in`` Hz -> (..., ceil(time · sr_out / sr_in)) float32 at
    ``sr_out`` Hz; equal rates return the input unchanged (no copy). The same samples as
    ``librosa.resample(audio, orig_sr=sr_in, target_sr=sr_out, res_type="soxr_hq")``, called
    through soxr itself: librosa's first call imports numba and llvmlite (~200 MB resident),
    which would dominate the memory of long-file separation.
    """
    import soxr

    audio = np.asarray(audio, dtype=np.float32)
    sr_in, sr_out = int(sr_in), int(sr_out)
    if sr_in == sr_out:
        return audio
    length = int(np.ceil(audio.shape[-1] * sr_out / sr_in))
    flat = audio.reshape(-1, audio.shape[-1])
    out = np.empty((flat.shape[0], length), np.float32)
    for i, row in enumerate(flat):  # soxr works on (time,) or (time, channels); one row at a time
        out[i] = fix_length(soxr.resample(row, sr_in, sr_out, quality=RES_TYPE.split("_")[1].upper()), length)
    return out.reshape(*audio.shape[:-1], length)


def fix_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Crop or zero-pad the last axis to exactly ``length`` samples."""
    n = audio.shape[-1]
    if n >= length:
        return audio[..., :length]
    return np.concatenate([audio, np.zeros((*audio.shape[:-1], length - n), audio.dtype)], axis=-1)


def save_audio(path: str | Path, audio: np.ndarray, sr: int) -> None:
    """Write audio (channels, time) or (time,) as a 32-bit float WAV at ``sr`` Hz.

    Atomic: written to a hidden temporary name in the same folder, then renamed, so an
    interrupted run never leaves a truncated file under the final name.
    """
    import soundfile as sf

    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise ValueError(f"audio must be (channels, time) or (time,), got shape {audio.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with sf.SoundFile(str(tmp), "w", int(sr), audio.shape[0], subtype="FLOAT", format="WAV") as f:
            for start in range(0, audio.shape[1], _WRITE_BLOCK):  # bounded (time, channels) copies
                f.write(np.ascontiguousarray(audio[:, start:start + _WRITE_BLOCK].T))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def prepare_output_dir(target_dir: str | Path, filenames: Iterable[str], force: bool = False) -> Path:
    """Create ``target_dir``; refuse (one-line :class:`PriorsepError`) when any of
    ``filenames`` already exists there, unless ``force``. Returns the folder."""
    target = Path(target_dir)
    if target.exists() and not target.is_dir():
        raise PriorsepError(f"{target}: exists and is not a folder")
    existing = [name for name in filenames if (target / name).exists()]
    if existing and not force:
        shown = ", ".join(existing[:4]) + (f" and {len(existing) - 4} more" if len(existing) > 4 else "")
        raise PriorsepError(f"{target}: {shown} already exist(s); use --force to overwrite")
    target.mkdir(parents=True, exist_ok=True)
    return target
