"""Data for separator training: real mixtures only, dreamed (prior-sampled) pairs, or real pairs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from priors.data import TOY_SOURCES, ToyDataset, item_rng, resumable_loader


class BankMixtures(Dataset):
    """Sleep-phase pairs from a sample bank (``priorsep sample --priors … --out BANK``).

    Item j: for each source an independent bank example, a random crop of ``crop_length``,
    a random gain in [gain_min, gain_max]; returns (mixture (time,), sources (K, time)) with
    mixture = mix_scale · Σ_k sources, the data set's own mixing. Only generated audio is read.

    ``coherent`` p: with probability p an item takes every source from the SAME bank example
    and crop (gains still drawn per source). For a teacher bank (``priorsep teacher-bank``) that
    re-mixes the teacher's estimates of one real mixture, whose voices share key, harmony and
    overlapping partials — the distillation of the teacher on real mixtures — where independent
    draws (p = 0) give incoherent mixtures of unrelated pieces.

    ``bank``: one folder, or a list of folders with the same sources whose examples are pooled
    (e.g. a teacher bank grown later with other crops: ``teacher-bank --seed``); examples are
    drawn uniformly from the pool.
    """

    def __init__(self, bank: str | Path | list, sources: list[str], crop_length: int = 2048, epoch_size: int = 16000,
                 gain_min: float = 0.8, gain_max: float = 1.2, mix_scale: float = 0.25, seed: int = 0,
                 coherent: float = 0.0):
        banks = [Path(b) for b in ([bank] if isinstance(bank, (str, Path)) else bank)]
        if not banks:
            raise ValueError("no bank folder given")
        settings = [json.loads((b / "settings.json").read_text()) for b in banks]
        for b, s in zip(banks, settings):
            if list(s["sources"]) != list(sources):
                raise ValueError(f"{b}: bank holds {s['sources']}, expected {list(sources)}")
        self.data = [BankRows([np.load(b / f"{s}.npy", mmap_mode="r") for b in banks]) for s in sources]
        self.length = min(d.length for d in self.data)
        if self.length < crop_length:
            raise ValueError(f"{', '.join(map(str, banks))}: bank examples ({self.length}) shorter than "
                             f"crop_length ({crop_length})")
        self.crop_length, self.epoch_size = crop_length, epoch_size
        self.gain_min, self.gain_max, self.mix_scale = gain_min, gain_max, mix_scale
        self.seed, self.coherent = seed, coherent
        self._draws = 0
        self.settings = settings  # one per bank folder

    def __len__(self) -> int:
        return self.epoch_size

    def __getitem__(self, j):
        rng = item_rng(self.seed, j, self._draws)  # keyed by the index: DDP ranks differ
        self._draws += 1
        parts = []
        shared = None
        if self.coherent > 0 and rng.uniform() < self.coherent:
            shared = (int(rng.integers(min(len(d) for d in self.data))),
                      int(rng.integers(0, self.length - self.crop_length + 1)))
        for d in self.data:
            i, start = shared or (int(rng.integers(len(d))),
                                  int(rng.integers(0, self.length - self.crop_length + 1)))
            gain = rng.uniform(self.gain_min, self.gain_max)
            parts.append(gain * np.asarray(d.row(i)[start:start + self.crop_length], dtype=np.float32))
        sources = torch.from_numpy(np.stack(parts).astype(np.float32))
        return self.mix_scale * sources.sum(0), sources


class BankRows:
    """The examples (rows) of one source in several bank folders, (n_b, time_b) memory-mapped
    arrays, as one sequence: row i of the first bank, then of the next (never concatenated in
    memory). ``length``: the shortest example (samples)."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays
        self.ends = np.cumsum([a.shape[0] for a in arrays])
        self.length = min(a.shape[1] for a in arrays)

    def __len__(self) -> int:
        return int(self.ends[-1])

    def row(self, i: int) -> np.ndarray:
        b = int(np.searchsorted(self.ends, i, side="right"))
        return self.arrays[b][i - (int(self.ends[b - 1]) if b else 0)]


class MixturesOnly(Dataset):
    """Wraps a dataset of (mixture, sources) or mixtures and yields the mixture ONLY."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, j: int) -> torch.Tensor:
        item = self.dataset[j]
        return item[0] if isinstance(item, tuple) else item


class SeparationDataModule(pl.LightningDataModule):
    """Training data per objective, validation on real (mixture, sources) pairs.

    ``objective``:
      * ``elbo`` (wake, unsupervised), ``remix`` (self-training) and ``distil`` (a frozen
        separator's estimates as targets): real mixtures only;
      * ``sleep``: dreamed pairs from ``bank`` (no real audio at all);
      * ``wake_sleep``: batches ``{"wake": mixtures, "sleep": (mixtures, dreamed sources)}``;
      * ``supervised``: real (mixture, sources) pairs — the reference upper bound only.
    Real data: the toy set (``data_root`` None) — other stem folders via ``data_root``.
    ``stem_gain_min``/``stem_gain_max``: random per-stem gains of real training crops (stem
    folders; validation crops are never rescaled). ``bank_coherent``: the share of bank items
    drawn from one bank example (:class:`BankMixtures` ``coherent``); ``bank`` may list several
    folders (pooled).
    Validation pairs are only used to log metrics, never to train; on the toy set they come
    from its held-out ``valid`` split, never from the benchmark's test split.
    """

    def __init__(self, objective: str = "elbo", bank: str | list[str] | None = None, data_root: str | None = None,
                 sources: list[str] | None = None, sample_rate: int = 14_700, mix_scale: float = 0.25,
                 crop_length: int = 4096, batch_size: int = 16, train_crops: int = 16000, val_crops: int = 32,
                 gain_min: float = 0.8, gain_max: float = 1.2, num_workers: int = 0, seed: int = 0,
                 stem_gain_min: float = 1.0, stem_gain_max: float = 1.0, bank_coherent: float = 0.0):
        super().__init__()
        if objective not in ("elbo", "remix", "distil", "sleep", "wake_sleep", "supervised"):
            raise ValueError(f"unknown objective {objective!r}")
        if objective in ("sleep", "wake_sleep") and not bank:
            raise ValueError(f"objective {objective!r} needs a sample bank (bank=...)")
        self.save_hyperparameters()
        self.sources = list(sources or TOY_SOURCES)
        self.sample_rate = sample_rate

    def _real(self, split: str, n: int, random_crops: bool, seed: int):
        h = self.hparams
        if h.data_root is None:
            return ToyDataset(split, "both", crop_length=h.crop_length, epoch_size=n, random_crops=random_crops, seed=seed)
        from priors.data import StemFolderDataset

        return StemFolderDataset(h.data_root, split, self.sources, "both", crop_length=h.crop_length, epoch_size=n,
                                 sample_rate=h.sample_rate, random_crops=random_crops, mix_scale=h.mix_scale, seed=seed,
                                 gain_min=h.stem_gain_min, gain_max=h.stem_gain_max)

    def _bank(self):
        h = self.hparams
        return BankMixtures(h.bank, self.sources, h.crop_length, h.train_crops, h.gain_min, h.gain_max, h.mix_scale, h.seed,
                            coherent=h.bank_coherent)

    def train_dataset(self) -> Dataset:
        h = self.hparams
        if h.objective in ("elbo", "remix", "distil"):
            return MixturesOnly(self._real("train", h.train_crops, True, h.seed))
        if h.objective == "sleep":
            return self._bank()
        if h.objective == "supervised":
            return self._real("train", h.train_crops, True, h.seed)
        return _Zip(MixturesOnly(self._real("train", h.train_crops, True, h.seed)), self._bank())

    def train_dataloader(self) -> DataLoader:
        h = self.hparams
        return resumable_loader(self.train_dataset(), self, h.batch_size, h.seed, h.num_workers)

    def val_dataloader(self) -> DataLoader:
        h = self.hparams
        return DataLoader(self._real(self.val_split, h.val_crops, False, h.seed + 1), batch_size=h.batch_size)

    @property
    def val_split(self) -> str:
        """The toy set's held-out ``valid`` split; a stem folder's ``test`` folder (it has no other)."""
        return "valid" if self.hparams.data_root is None else "test"


class _Zip(Dataset):
    """{"wake": wake[j], "sleep": sleep[j]} for alternating wake and sleep terms."""

    def __init__(self, wake: Dataset, sleep: Dataset):
        self.wake, self.sleep = wake, sleep

    def __len__(self) -> int:
        return len(self.wake)

    def __getitem__(self, j: int):
        return {"wake": self.wake[j], "sleep": self.sleep[j]}
