"""Data: the toy periodic-waveform set (../shared/TOY_DATA.md) and stem-folder datasets.

Every toy example is generated from ``numpy.random.default_rng([seed, index])``, so example
``i`` of a split is identical on every machine and nothing needs to be stored. Crops are
generated directly (a crop of an example equals the same slice of the full example).
Waveforms are float32 in [-1, 1], shape (time,) per source.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import scipy.signal
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

TOY_SOURCES = ("sin", "square", "saw", "triangle")
TOY_SAMPLE_RATE = 14_700
TRAIN_SEED = 20_160_101
TEST_SEED = 20_160_202
VALID_SEED = 20_160_303  # a held-out validation split (not in the thesis' spec): model selection never reads the test set


def toy_waveform(shape: str, period: int, phase: int, n: np.ndarray) -> np.ndarray:
    """One periodic waveform at integer sample positions ``n`` (period ν and phase φ in samples).

    The position within the period is reduced modulo ν in integers first, so the waveform is
    exactly periodic (no floating-point drift at the square wave's edges over long examples).
    """
    t = 2.0 * np.pi * (np.mod(n + phase, period)) / period
    if shape == "sin":
        return np.sin(t)
    if shape == "square":
        return scipy.signal.square(t)
    if shape == "saw":
        return scipy.signal.sawtooth(t, width=1.0)
    if shape == "triangle":
        return scipy.signal.sawtooth(t, width=0.5)
    raise ValueError(f"unknown toy source {shape!r}; choose from {TOY_SOURCES}")


@dataclass(frozen=True)
class ToyConfig:
    """Every parameter of the toy set, defaults as in the thesis."""

    sources: tuple[str, ...] = TOY_SOURCES
    sample_rate: int = TOY_SAMPLE_RATE
    example_length: int = 48_000
    key_min_tenths: int = 1  # piano key k ∈ {0.1, 0.2, …, 64.9}
    key_max_tenths: int = 649
    amplitude_min: float = 0.8
    amplitude_max: float = 1.0
    n_train: int = 5_000
    n_test: int = 1_500
    n_valid: int = 500
    train_seed: int = TRAIN_SEED
    test_seed: int = TEST_SEED
    valid_seed: int = VALID_SEED


@dataclass(frozen=True)
class ToyParams:
    """The random draws of one source in one example."""

    key: float
    frequency: float
    period: int
    phase: int
    amplitude: float


class ToyGenerator:
    """Deterministic generator of toy examples: ``params(split, i)`` and ``crop(split, i, start, length)``."""

    def __init__(self, config: ToyConfig = ToyConfig()):
        self.config = config

    def seed(self, split: str) -> int:
        if split == "train":
            return self.config.train_seed
        if split == "test":
            return self.config.test_seed
        if split == "valid":
            return self.config.valid_seed
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")

    def size(self, split: str) -> int:
        self.seed(split)  # refuses unknown splits
        return {"train": self.config.n_train, "valid": self.config.n_valid, "test": self.config.n_test}[split]

    def params(self, split: str, index: int) -> dict[str, ToyParams]:
        """The draws for every source of example ``index``: key, f = 440·2^((k−49)/12),
        ν = floor(sr / f), φ ~ U{0..ν−1}, A ~ U(0.8, 1.0), independently per source."""
        c = self.config
        rng = np.random.default_rng([self.seed(split), index])
        out = {}
        for name in c.sources:
            key = rng.integers(c.key_min_tenths, c.key_max_tenths + 1) / 10.0
            freq = 440.0 * 2.0 ** ((key - 49.0) / 12.0)
            period = int(math.floor(c.sample_rate / freq))
            phase = int(rng.integers(0, period))
            amp = float(rng.uniform(c.amplitude_min, c.amplitude_max))
            out[name] = ToyParams(float(key), float(freq), period, phase, amp)
        return out

    def crop(self, split: str, index: int, start: int = 0, length: int | None = None) -> np.ndarray:
        """Sources of example ``index``, samples [start, start+length): (n_sources, length) float32."""
        length = self.config.example_length - start if length is None else length
        n = np.arange(start, start + length)
        p = self.params(split, index)
        return np.stack([p[s].amplitude * toy_waveform(s, p[s].period, p[s].phase, n)
                         for s in self.config.sources]).astype(np.float32)

    @staticmethod
    def mix(sources: np.ndarray | torch.Tensor):
        """The toy mixture: the mean over the source axis (-2)."""
        return sources.mean(-2)


class ToyDataset(Dataset):
    """Random (train) or fixed (test) crops of the toy set.

    ``mode``: ``"source"`` yields (length,) crops of ``source`` only; ``"mixture"`` yields the
    (length,) mixture only; ``"both"`` yields ``(mixture (length,), sources (K, length))``.
    ``epoch_size`` crops per epoch; crop ``j`` comes from example ``j % n_examples``. With
    ``random_crops`` the offset is drawn fresh each time (training), else fixed by ``j``.
    An index ``(epoch, j)`` (from :class:`EpochSampler`) draws crop ``j``'s offset from
    ``(seed, epoch, j)`` instead: the same on every run, so training can resume mid-epoch.
    """

    def __init__(self, split: str = "train", mode: str = "source", source: str | None = None,
                 crop_length: int = 4096, epoch_size: int | None = None, random_crops: bool | None = None,
                 config: ToyConfig = ToyConfig(), seed: int = 0):
        if mode not in ("source", "mixture", "both"):
            raise ValueError(f"mode must be source, mixture or both, got {mode!r}")
        if mode == "source" and source not in config.sources:
            raise ValueError(f"source must be one of {config.sources}, got {source!r}")
        self.gen = ToyGenerator(config)
        self.split, self.mode, self.crop_length = split, mode, crop_length
        self.source_index = config.sources.index(source) if mode == "source" else None
        self.n_examples = self.gen.size(split)
        self.epoch_size = epoch_size or self.n_examples
        self.random_crops = split == "train" if random_crops is None else random_crops
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.epoch_size

    def item(self, j) -> np.ndarray:
        """(K, crop_length) sources of crop ``j`` (an int, or ``(epoch, j)``: see the class doc)."""
        if isinstance(j, (tuple, list)):
            epoch, j = (int(v) for v in j)
            rng = np.random.default_rng([self.seed, epoch, j])
        else:
            rng = self._rng if self.random_crops else np.random.default_rng([self.seed, j])
        index = j % self.n_examples
        max_start = self.gen.config.example_length - self.crop_length
        start = int(rng.integers(0, max_start + 1))
        return self.gen.crop(self.split, index, start, self.crop_length)

    def __getitem__(self, j):
        s = torch.from_numpy(self.item(j))
        if self.mode == "source":
            return s[self.source_index]
        if self.mode == "mixture":
            return ToyGenerator.mix(s)
        return ToyGenerator.mix(s), s


def _worker_init(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset._rng = np.random.default_rng([info.dataset.seed, info.seed % 2**32])


class EpochSampler(DistributedSampler):
    """``(epoch, index)`` pairs in an order drawn from ``seed + epoch``: with :class:`ToyDataset`
    every crop of an epoch is a function of (seed, epoch, position), so any epoch can be replayed
    from any batch on (``resume``).

    A :class:`~torch.utils.data.DistributedSampler`, so under DDP each rank takes its share and
    Lightning keeps it (and calls ``set_epoch``); in one process it yields the whole epoch.
    """

    def __init__(self, dataset: Dataset, seed: int = 0):
        import torch.distributed as dist

        ddp = dist.is_available() and dist.is_initialized()
        super().__init__(dataset, num_replicas=None if ddp else 1, rank=None if ddp else 0, shuffle=True, seed=seed)
        self._skip = 0

    def resume(self, epoch: int, skip: int) -> None:
        """The next iteration is epoch ``epoch`` without its first ``skip`` samples."""
        self.set_epoch(epoch)
        self._skip = skip

    def __iter__(self):
        order = list(super().__iter__())[self._skip:]
        self._skip = 0
        return iter([(self.epoch, j) for j in order])


class ResumableLoader(DataLoader):
    """A DataLoader over an :class:`EpochSampler` that Lightning resumes mid-epoch (its
    ``state_dict`` / ``load_state_dict`` loader protocol): the checkpoint records the epoch and how
    many of its batches were trained; the resumed run's first iteration skips exactly those.

    ``trained_batches()`` (set by the data module) counts the trained batches of the current epoch:
    the trainer's count, not the loader's, since Lightning fetches one batch ahead.
    """

    trained_batches = None

    def state_dict(self) -> dict:
        sampler = self.sampler
        done = self.trained_batches() if self.trained_batches else 0
        if done >= len(self):  # the epoch is over: resume at the start of the next one
            return {"epoch": sampler.epoch + 1, "samples": 0}
        return {"epoch": sampler.epoch, "samples": done * self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.resume(int(state["epoch"]), int(state["samples"]))


def trained_batches(trainer) -> int:
    """Batches of the current epoch a trainer has trained so far; once the epoch is over (also
    when ``limit_train_batches`` ends it early) more than it has, so the loader moves on."""
    if trainer is None:
        return 0
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    return sys.maxsize if done >= trainer.num_training_batches else done


def resumable_loader(dataset: Dataset, datamodule: pl.LightningDataModule, batch_size: int, seed: int = 0,
                     num_workers: int = 0) -> ResumableLoader:
    """The training loader of a data set whose items accept ``(epoch, index)``: order and
    content from (seed, epoch, position), resumable mid-epoch from the datamodule's trainer."""
    # its own generator: loading never draws from the global RNG, so a resumed run's random
    # stream matches (see lightning_job)
    loader = ResumableLoader(dataset, batch_size=batch_size, sampler=EpochSampler(dataset, seed),
                             num_workers=num_workers, drop_last=True, persistent_workers=num_workers > 0,
                             generator=torch.Generator().manual_seed(seed))
    loader.trained_batches = lambda: trained_batches(datamodule.trainer)
    return loader


class ToyDataModule(pl.LightningDataModule):
    """Lightning data for the toy set: one source's crops (priors), mixtures only
    (unsupervised separator) or (mixture, sources) pairs (supervised bound, evaluation).

    Training draws ``train_crops`` random crops per epoch from the train split (in an order and
    at offsets fixed by (seed, epoch, position): resumable mid-epoch); validation uses
    ``val_crops`` fixed crops of the held-out ``valid`` split (the test split is for the
    benchmark only).
    """

    def __init__(self, mode: str = "source", source: str | None = None, crop_length: int = 4096,
                 batch_size: int = 16, train_crops: int = 16_000, val_crops: int = 64,
                 num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.sources = list(TOY_SOURCES)
        self.sample_rate = TOY_SAMPLE_RATE

    def train_dataloader(self) -> DataLoader:
        h = self.hparams
        ds = ToyDataset("train", h.mode, h.source, h.crop_length, h.train_crops, True, seed=h.seed)
        return resumable_loader(ds, self, h.batch_size, h.seed, h.num_workers)

    def val_dataloader(self) -> DataLoader:
        h = self.hparams
        # validation always sees fixed crops; the separator validates against references
        mode = "both" if h.mode != "source" else "source"
        ds = ToyDataset("valid", mode, h.source, h.crop_length, h.val_crops, False, seed=h.seed + 1)
        return DataLoader(ds, batch_size=h.batch_size, shuffle=False)


# ---------------------------------------------------------------------------- stem folders
def folder_mix_scale(root: str | Path) -> float:
    """Mixture = mix_scale · Σ stems: from a project folder's ``dataset.json`` (the toy set
    averages), else 1 (MUSDB and the chorales add)."""
    info = Path(root) / "dataset.json"
    if info.is_file():
        return float(json.loads(info.read_text()).get("mix_scale", 1.0))
    return 1.0


def list_tracks(root: str | Path, split: str) -> list[Path]:
    """Track folders of a MUSDB18-HQ-layout tree: ``root/split/<track>/mixture.wav``."""
    folder = Path(root) / split
    return sorted(p for p in folder.iterdir() if (p / "mixture.wav").is_file()) if folder.is_dir() else []


def item_rng(seed: int, j, draws: int) -> np.random.Generator:
    """The generator behind one random item: from ``(seed, epoch, j)`` for an ``(epoch, j)``
    index (:class:`EpochSampler`: replayable, resumable), else from ``(seed, j, draws)`` with
    ``draws`` the number of items this data set object has produced so far. Keyed by the
    index, so ranks of a DDP run (disjoint indices from their DistributedSampler) draw
    different crops; keyed by ``draws``, so an index met again in a later epoch is a new crop."""
    if isinstance(j, (tuple, list)):
        epoch, j = (int(v) for v in j)
        return np.random.default_rng([seed, epoch, j])
    return np.random.default_rng([seed, int(j), draws])


class StemFolderDataset(Dataset):
    """Random crops from WAV stems in the MUSDB18-HQ layout (toy, chorales or MUSDB18-HQ).

    Each track's stems are read once (mono: mean of channels, or left channel with
    ``channel=0``), resampled to ``sample_rate``. ``mode`` as :class:`ToyDataset`, plus ``"any"``:
    (length,) crops of one stem drawn uniformly from ``sources`` per crop (the data of a
    background prior of every source); with ``mixture_share`` > 0 that fraction of the crops is
    the mixture of all the stems instead (a background of everything the domain sounds like,
    mixtures included). Crops whose target is near-silent (rms < ``min_rms``) are
    re-drawn (up to 10 times) in ``source`` and ``any`` mode.
    ``gain_min``/``gain_max``: random crops get one gain ~ U(gain_min, gain_max) per stem (the
    mixture is the sum of the scaled stems); the default 1 draws nothing and changes nothing.
    """

    gain_min = gain_max = 1.0  # class defaults for subclasses with their own __init__ (MusdbDataset)
    mixture_share = 0.0

    def __init__(self, root: str | Path, split: str, sources: list[str], mode: str = "source",
                 source: str | None = None, crop_length: int = 16384, epoch_size: int = 1000,
                 sample_rate: int | None = None, channel: int | None = None, random_crops: bool = True,
                 min_rms: float = 1e-3, mix_scale: float = 1.0, seed: int = 0,
                 gain_min: float = 1.0, gain_max: float = 1.0, mixture_share: float = 0.0):
        import librosa
        import soundfile as sf

        self.sources, self.mode, self.crop_length = list(sources), mode, crop_length
        if mode not in ("source", "any", "mixture", "both"):
            raise ValueError(f"mode must be source, any, mixture or both, got {mode!r}")
        if mixture_share and mode != "any":
            raise ValueError(f"mixture_share applies to mode 'any' only (mode {mode!r})")
        self.source_index = self.sources.index(source) if mode == "source" else None
        self.epoch_size, self.random_crops, self.min_rms, self.seed = epoch_size, random_crops, min_rms, seed
        self.mix_scale = mix_scale
        self.gain_min, self.gain_max, self.mixture_share = gain_min, gain_max, mixture_share
        self._draws = 0
        names = [source] if mode == "source" else self.sources
        self.tracks: list[np.ndarray] = []
        for track in list_tracks(root, split):
            stems = []
            for name in names:
                audio, sr = sf.read(track / f"{name}.wav", dtype="float32", always_2d=True)
                mono = audio[:, channel] if channel is not None else audio.mean(1)
                if sample_rate and sr != sample_rate:
                    mono = librosa.resample(mono, orig_sr=sr, target_sr=sample_rate)
                stems.append(mono)
            n = min(len(s) for s in stems)
            if n >= crop_length:
                self.tracks.append(np.stack([s[:n] for s in stems]))
        if not self.tracks:
            raise FileNotFoundError(f"no track of at least {crop_length} samples under {Path(root) / split}")

    def __len__(self) -> int:
        return self.epoch_size

    def __getitem__(self, j):
        """Crop ``j``: an int, or ``(epoch, j)`` (see :func:`item_rng`); fixed crops
        (``random_crops=False``) depend on (seed, j) only."""
        if self.random_crops:
            rng = item_rng(self.seed, j, self._draws)
            self._draws += 1
        else:
            rng = np.random.default_rng([self.seed, int(j[-1] if isinstance(j, (tuple, list)) else j)])
        single = self.mode in ("source", "any")
        whole = self.mode == "any" and self.mixture_share > 0 and rng.random() < self.mixture_share
        for _ in range(10):
            track = self.tracks[int(rng.integers(len(self.tracks)))]
            start = int(rng.integers(0, track.shape[1] - self.crop_length + 1))
            rows = slice(None) if self.mode != "any" or whole else slice(k := int(rng.integers(track.shape[0])), k + 1)
            crop = torch.from_numpy(track[rows, start:start + self.crop_length].copy())
            if not single or crop.pow(2).mean().sqrt() >= self.min_rms:
                break
        if self.random_crops and (self.gain_min, self.gain_max) != (1.0, 1.0):  # one gain per stem
            crop = crop * torch.from_numpy(rng.uniform(self.gain_min, self.gain_max, (crop.shape[0], 1))).float()
        if single:
            return self.mix_scale * crop.sum(0) if whole else crop[0]
        mix = self.mix_scale * crop.sum(0)
        return mix if self.mode == "mixture" else (mix, crop)


class StemDataModule(pl.LightningDataModule):
    """Lightning data for any MUSDB18-HQ-layout folder (``root/{train,test}/<track>/*.wav``).

    Validation uses fixed crops of ``val_split``. Mixtures are ``mix_scale`` × the sum of the
    stems (1 for music, 1/K for the toy set, whose mixture is the mean).
    """

    def __init__(self, root: str, sources: list[str], mode: str = "source", source: str | None = None,
                 sample_rate: int = 22_050, crop_length: int = 16384, batch_size: int = 8,
                 train_crops: int = 4000, val_crops: int = 32, val_split: str = "test",
                 channel: int | None = None, mix_scale: float = 1.0, num_workers: int = 0, seed: int = 0,
                 gain_min: float = 1.0, gain_max: float = 1.0, mixture_share: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.sources = list(sources)
        self.sample_rate = sample_rate

    def _dataset(self, split, mode, n, random_crops, seed):
        h = self.hparams
        return StemFolderDataset(h.root, split, h.sources, mode, h.source, h.crop_length, n,
                                 h.sample_rate, h.channel, random_crops, mix_scale=h.mix_scale, seed=seed,
                                 gain_min=h.gain_min, gain_max=h.gain_max, mixture_share=h.mixture_share)

    def train_dataloader(self) -> DataLoader:
        h = self.hparams
        return DataLoader(self._dataset("train", h.mode, h.train_crops, True, h.seed), batch_size=h.batch_size,
                          num_workers=h.num_workers, worker_init_fn=_worker_init if h.num_workers else None,
                          drop_last=True)

    def val_dataloader(self) -> DataLoader:
        h = self.hparams
        mode = h.mode if h.mode in ("source", "any") else "both"
        return DataLoader(self._dataset(h.val_split, mode, h.val_crops, False, h.seed + 1), batch_size=h.batch_size)
