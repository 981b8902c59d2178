"""MUSDB18 data for priors (isolated stems) and separators (mixtures, or pairs to validate).

Tracks are read through ``musdb.DB`` (stems ``.stem.mp4`` with ``is_wav=False``, MUSDB18-HQ
WAV folders with ``is_wav=True``), which also applies musdb's own train/validation split
(14 named tracks of the train subset validate). Every stem is turned into mono (the mean
of the two channels by default, which keeps centre-panned vocals and bass at full level;
``channel=0`` takes the left channel instead), resampled to ``sample_rate`` (22 050 Hz by
default) and held in memory as float32: about 1.8 GB per stem for the 86 training tracks.
Cropping (random for training, fixed per index for validation, near-silent source crops
re-drawn) is :class:`priors.data.StemFolderDataset`'s, reused as is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from .data import StemFolderDataset, _worker_init

MUSDB_SOURCES = ("vocals", "drums", "bass", "other")


def _read_stem(track, name: str) -> tuple[np.ndarray, int]:
    """One stem of a musdb track ("mixture" or a source): (time, channels), rate in Hz."""
    if track.is_wav:
        import soundfile as sf

        path = track.path if name == "mixture" else track.sources[name].path
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        return audio, int(rate)
    audio = track.audio if name == "mixture" else track.sources[name].audio
    return np.asarray(audio, dtype=np.float32), int(track.rate)


def load_musdb_stems(root: str | Path, names: list[str], subset: str = "train", split: str | None = "train",
                     is_wav: bool = True, sample_rate: int = 22_050, channel: int | None = None,
                     min_length: int = 1) -> list[np.ndarray]:
    """Mono stems of every track of a musdb subset/split: a list of (len(names), time)
    float32 arrays at ``sample_rate`` Hz, one per track at least ``min_length`` samples long.
    ``names`` are musdb source names or ``"mixture"`` (the recorded mixture)."""
    import musdb
    import soxr

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: MUSDB folder not found")
    db = musdb.DB(root=str(root), is_wav=is_wav, subsets=subset, split=split if subset == "train" else None)
    tracks = []
    for track in db.tracks:
        stems = []
        for name in names:
            if name != "mixture" and name not in track.sources:
                raise FileNotFoundError(f"{track.path}: no {name} stem")
            audio, rate = _read_stem(track, name)
            mono = audio[:, channel] if channel is not None else audio.mean(1)
            if rate != sample_rate:  # soxr HQ: what librosa.resample's default calls, without its import cost
                mono = soxr.resample(np.ascontiguousarray(mono), rate, sample_rate, quality="HQ")
            stems.append(np.asarray(mono, dtype=np.float32))
        n = min(len(s) for s in stems)
        if n >= min_length:
            tracks.append(np.stack([s[:n] for s in stems]))
    if not tracks:
        where = f"{root / subset}" + (f" (split {split})" if subset == "train" and split else "")
        raise FileNotFoundError(f"no MUSDB track of at least {min_length} samples under {where}")
    return tracks


class MusdbDataset(StemFolderDataset):
    """Crops of MUSDB tracks; items as :class:`priors.data.StemFolderDataset`:

    * ``mode="source"``: (crop_length,) crops of ``source``, crops with rms < ``min_rms``
      re-drawn (up to 10 times);
    * ``mode="mixture"``: (crop_length,) crops of the recorded mixture (``mixture.wav`` /
      stream 0), as it is (``mix_scale`` does not apply);
    * ``mode="both"``: (mixture (crop_length,), sources (K, crop_length)) with mixture =
      ``mix_scale`` · Σ_k sources (1 for MUSDB, whose mixture is the sum of its stems).
    """

    def __init__(self, root: str | Path, subset: str = "train", split: str | None = "train",
                 sources: list[str] = MUSDB_SOURCES, mode: str = "source", source: str | None = None,
                 crop_length: int = 16384, epoch_size: int = 1000, sample_rate: int = 22_050,
                 channel: int | None = None, random_crops: bool = True, min_rms: float = 1e-3,
                 mix_scale: float = 1.0, is_wav: bool = True, seed: int = 0,
                 gain_min: float = 1.0, gain_max: float = 1.0):
        if mode not in ("source", "mixture", "both"):
            raise ValueError(f"mode must be source, mixture or both, got {mode!r}")
        if mode == "source" and source not in sources:
            raise ValueError(f"source must be one of {list(sources)}, got {source!r}")
        # the attributes StemFolderDataset.__getitem__ reads; only the loading differs
        self.sources, self.mode, self.crop_length = list(sources), mode, crop_length
        self.source_index = self.sources.index(source) if mode == "source" else None
        self.epoch_size, self.random_crops, self.min_rms, self.seed = epoch_size, random_crops, min_rms, seed
        self.mix_scale = 1.0 if mode == "mixture" else mix_scale
        self.gain_min, self.gain_max = gain_min, gain_max  # random crops only (StemFolderDataset.__getitem__)
        self._draws = 0  # see priors.data.item_rng
        names = {"source": [source], "mixture": ["mixture"], "both": self.sources}[mode]
        self.tracks = load_musdb_stems(root, names, subset, split, is_wav, sample_rate, channel, crop_length)


class MusdbDataModule(pl.LightningDataModule):
    """Lightning data for MUSDB18(-HQ): one source's crops (priors), recorded mixtures only
    (unsupervised separator) or (mixture, sources) pairs.

    ``validation="valid"``: train on musdb's train split (86 tracks), validate on its 14
    validation tracks; ``"test"``: train on all 100 train tracks, validate on the test
    subset. Validation crops are fixed; in ``mixture`` mode validation yields pairs (for
    metrics only). Nothing is read before a dataloader is asked for.
    """

    def __init__(self, root: str = "data/musdb18hq", is_wav: bool = True, mode: str = "source",
                 source: str | None = None, sources: list[str] | None = None, sample_rate: int = 22_050,
                 crop_length: int = 16384, batch_size: int = 8, train_crops: int = 4000, val_crops: int = 32,
                 validation: str = "valid", channel: int | None = None, min_rms: float = 1e-3,
                 mix_scale: float = 1.0, num_workers: int = 0, seed: int = 0,
                 gain_min: float = 1.0, gain_max: float = 1.0):
        super().__init__()
        if mode not in ("source", "mixture", "both"):
            raise ValueError(f"mode must be source, mixture or both, got {mode!r}")
        self.sources = list(sources or MUSDB_SOURCES)
        if mode == "source" and source not in self.sources:
            raise ValueError(f"source must be one of {self.sources}, got {source!r}")
        if validation not in ("valid", "test"):
            raise ValueError(f"validation must be 'valid' or 'test', got {validation!r}")
        self.save_hyperparameters()
        self.sample_rate = sample_rate

    def _dataset(self, subset, split, mode, n, random_crops, seed) -> MusdbDataset:
        h = self.hparams
        return MusdbDataset(h.root, subset, split, self.sources, mode, h.source, h.crop_length, n, h.sample_rate,
                            h.channel, random_crops, h.min_rms, h.mix_scale, h.is_wav, seed, h.gain_min, h.gain_max)

    def train_dataset(self) -> MusdbDataset:
        h = self.hparams
        split = "train" if h.validation == "valid" else None
        return self._dataset("train", split, h.mode, h.train_crops, True, h.seed)

    def val_dataset(self) -> MusdbDataset:
        h = self.hparams
        subset, split = ("train", "valid") if h.validation == "valid" else ("test", None)
        mode = "source" if h.mode == "source" else "both"
        return self._dataset(subset, split, mode, h.val_crops, False, h.seed + 1)

    def train_dataloader(self) -> DataLoader:
        h = self.hparams
        return DataLoader(self.train_dataset(), batch_size=h.batch_size, num_workers=h.num_workers,
                          worker_init_fn=_worker_init if h.num_workers else None, drop_last=True,
                          persistent_workers=h.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_dataset(), batch_size=self.hparams.batch_size)
