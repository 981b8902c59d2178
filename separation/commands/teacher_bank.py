"""``priorsep teacher-bank --root DIR --out BANK [--teacher nmf|NAME|CKPT ...] [--n N] [--length L]``.

A teacher separates random crops of the REAL TRAINING MIXTURES (``DIR/train/*/mixture.wav``; no
stem is read, except by ``--teacher nmf``, whose templates are learned from isolated training
stems: the shallowest prior) and its estimates are stored as a bank in the format of
``priorsep sample --priors … --out BANK``: ``BANK/<source>.npy`` (N, L) float32 and
``BANK/settings.json``. Training a separator with ``objective: sleep`` on that bank is remixing
(RemixIT-style): each batch mixes one teacher estimate per source from *different* crops, with
random gains, and the student recovers them. Unsupervised whenever the teacher is.

Several ``--teacher`` values make an ensemble teacher: the bank holds the mean of their
estimates (each set sums to the crop, so the mean does too), e.g. ``--teacher nmf chorales``.
A teacher may also be an earlier bank folder of the same crops (same ``--root``, ``--n``,
``--length``, ``--seed``): its stored estimates are reused instead of separating again (a slow
NMF teacher runs once for several ensembles).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import PriorsepError


def add_arguments(parser) -> None:
    parser.add_argument("--root", required=True, help="stem folder (MUSDB18-HQ layout) with train/*/mixture.wav")
    parser.add_argument("--out", required=True, help="bank folder")
    parser.add_argument("--teacher", nargs="+", default=["nmf"],
                        help="nmf (templates from isolated training stems, stored as BANK/nmf.pt), a named model, a "
                             "separator checkpoint or a bank folder of the same crops; several: the mean of their "
                             "estimates (an ensemble)")
    parser.add_argument("--sources", nargs="+", default=None, help="source names (default: the folder's dataset.json)")
    parser.add_argument("--n", type=int, default=512, help="crops")
    parser.add_argument("--length", type=int, default=88_200, help="samples per crop")
    parser.add_argument("--nmf-rank", type=int, default=32, help="NMF templates per stem")
    parser.add_argument("--nmf-fft", type=int, default=1024, help="NMF STFT size (hop: a quarter of it)")
    parser.add_argument("--nmf-power", type=float, default=1.0, help="NMF mask exponent (2: Wiener filter)")
    parser.add_argument("--nmf-crops", type=int, default=64,
                        help="isolated 4 s training crops per stem that the NMF templates are learned from")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="overwrite an existing bank")
    parser.add_argument("--quiet", action="store_true")


def mixture_crops(root: str | Path, n: int, length: int, sample_rate: int, seed: int = 0,
                  min_rms: float = 1e-3) -> np.ndarray:
    """(n, length) float32 random crops of ``root/train/*/mixture.wav`` (channel mean, resampled to
    ``sample_rate``; near-silent crops re-drawn up to 10 times). Reads mixtures only."""
    import soundfile as sf

    from priors.data import list_tracks

    from ..audio import resample

    mixes = []
    for track in list_tracks(root, "train"):
        audio, sr = sf.read(track / "mixture.wav", dtype="float32", always_2d=True)
        mono = audio.mean(1)
        mixes.append(resample(mono, sr, sample_rate) if sr != sample_rate else mono)
    mixes = [m for m in mixes if len(m) >= length]
    if not mixes:
        raise PriorsepError(f"{root}/train: no mixture of at least {length} samples")
    rng = np.random.default_rng(seed)
    out = np.empty((n, length), np.float32)
    for j in range(n):
        for _ in range(10):
            m = mixes[int(rng.integers(len(mixes)))]
            start = int(rng.integers(0, len(m) - length + 1))
            out[j] = m[start:start + length]
            if np.sqrt(np.mean(out[j] ** 2)) >= min_rms:
                break
    return out


class StoredBank:
    """A bank folder as a teacher of the same crops: ``(start, batch)`` -> its stored estimates
    (batch, K, length). Refuses a bank of other sources, crops, length, seed or data folder."""

    def __init__(self, folder: Path, args, sources: list[str]):
        settings = json.loads((folder / "settings.json").read_text())
        want = {"sources": sources, "n": args.n, "length": args.length, "seed": args.seed}
        got = {k: settings.get(k) for k in want}
        if got != want or f"({Path(args.root)})" not in settings.get("generator", ""):
            raise PriorsepError(f"{folder}: a bank of other crops ({got}, {settings.get('generator')}); "
                                f"a stored teacher needs {want} of {args.root}")
        self.data = [np.load(folder / f"{s}.npy", mmap_mode="r") for s in sources]

    def __call__(self, start: int, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.stack([d[start:start + len(batch)] for d in self.data], 1))


def build_teacher(args, name: str, sources: list[str], sample_rate: int, out: Path):
    """One teacher as ``(start, batch) -> estimates (batch, K, length)`` of crops ``start …``:
    a stored bank folder of the same crops (:class:`StoredBank`), ``nmf`` (fitted once, stored as
    ``out/nmf.pt``) or a separator name/path."""
    if (Path(name) / "settings.json").is_file():
        return StoredBank(Path(name), args, sources)
    separator = teacher_separator(args, name, sources, sample_rate, out)
    return lambda start, batch: separator(batch)


def teacher_separator(args, name: str, sources: list[str], sample_rate: int, out: Path):
    """``nmf`` or a separator name/path as a separator: mixtures (batch, length) -> (batch, K, length)."""
    if name != "nmf":
        from ..models import load_separator

        return load_separator(name, sources=sources, sample_rate=sample_rate)
    from ..evaluate import EvalConfig, fit_nmf
    from ..methods import MethodContext, build_separator

    store = out / "nmf.pt"
    if store.is_file():
        return build_separator("nmf", MethodContext(sources=sources, sample_rate=sample_rate, nmf_store=store))
    cfg = EvalConfig(root=str(args.root), out=str(out), targets=sources, baseline="nmf", nmf_rank=args.nmf_rank,
                     nmf_fft=args.nmf_fft, nmf_power=args.nmf_power, is_wav=True, seed=args.seed)
    return fit_nmf(cfg, sources, crops_per_source=args.nmf_crops)  # isolated TRAIN stems -> out/nmf.pt


def run(args) -> int:
    root, out = Path(args.root), Path(args.out)
    info_file = root / "dataset.json"
    if not info_file.is_file():
        raise PriorsepError(f"{root}: no dataset.json (sources, sample_rate)")
    info = json.loads(info_file.read_text())
    sources = list(args.sources or info["sources"])
    sample_rate = int(info["sample_rate"])
    if (out / "settings.json").is_file() and not args.force:
        raise PriorsepError(f"{out}: a bank is already there (use --force)")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    teachers = [build_teacher(args, name, sources, sample_rate, out) for name in args.teacher]
    crops = mixture_crops(root, args.n, args.length, sample_rate, args.seed)
    est = np.empty((len(sources), args.n, args.length), np.float32)
    with torch.no_grad():
        for start in range(0, args.n, args.batch_size):
            batch = torch.from_numpy(crops[start:start + args.batch_size])
            mean = sum(teacher(start, batch).double() for teacher in teachers) / len(teachers)
            est[:, start:start + len(batch)] = mean.float().numpy().transpose(1, 0, 2)
            if not args.quiet:
                print(f"\r{start + len(batch)}/{args.n} crops", end="", flush=True)
    for k, s in enumerate(sources):
        np.save(out / f"{s}.npy", est[k])
    seconds = time.perf_counter() - t0
    settings = {"sources": sources, "sample_rate": sample_rate, "n": args.n, "length": args.length,
                "generator": f"teacher {' + '.join(args.teacher)} on real training mixtures ({root})", "seed": args.seed,
                "seconds": round(seconds, 1)}
    (out / "settings.json").write_text(json.dumps(settings, indent=1) + "\n")
    print(f"\nteacher bank: {args.n} x {args.length} estimates per source in {out} ({seconds:.0f} s)")
    return 0
