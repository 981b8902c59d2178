"""``priorsep teacher-bank --root DIR --out BANK [--teacher nmf|NAME|CKPT] [--n N] [--length L]``.

A teacher separates random crops of the REAL TRAINING MIXTURES (``DIR/train/*/mixture.wav``; no
stem is read, except by ``--teacher nmf``, whose templates are learned from isolated training
stems: the shallowest prior) and its estimates are stored as a bank in the format of
``priorsep sample --priors … --out BANK``: ``BANK/<source>.npy`` (N, L) float32 and
``BANK/settings.json``. Training a separator with ``objective: sleep`` on that bank is remixing
(RemixIT-style): each batch mixes one teacher estimate per source from *different* crops, with
random gains, and the student recovers them. Unsupervised whenever the teacher is.
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
    parser.add_argument("--teacher", default="nmf",
                        help="nmf (templates from isolated training stems, stored as BANK/nmf.pt), a named model or a "
                             "separator checkpoint")
    parser.add_argument("--sources", nargs="+", default=None, help="source names (default: the folder's dataset.json)")
    parser.add_argument("--n", type=int, default=512, help="crops")
    parser.add_argument("--length", type=int, default=88_200, help="samples per crop")
    parser.add_argument("--nmf-rank", type=int, default=32)
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


def build_teacher(args, sources: list[str], sample_rate: int, out: Path):
    if args.teacher != "nmf":
        from ..models import load_separator

        return load_separator(args.teacher, sources=sources, sample_rate=sample_rate)
    from ..evaluate import EvalConfig, fit_nmf
    from ..methods import MethodContext, build_separator

    store = out / "nmf.pt"
    if store.is_file():
        return build_separator("nmf", MethodContext(sources=sources, sample_rate=sample_rate, nmf_store=store))
    cfg = EvalConfig(root=str(args.root), out=str(out), targets=sources, baseline="nmf", nmf_rank=args.nmf_rank,
                     is_wav=True, seed=args.seed)
    return fit_nmf(cfg, sources)  # learned from isolated TRAIN stems, stored as out/nmf.pt


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
    teacher = build_teacher(args, sources, sample_rate, out)
    crops = mixture_crops(root, args.n, args.length, sample_rate, args.seed)
    est = np.empty((len(sources), args.n, args.length), np.float32)
    with torch.no_grad():
        for start in range(0, args.n, args.batch_size):
            batch = torch.from_numpy(crops[start:start + args.batch_size])
            est[:, start:start + len(batch)] = teacher(batch).float().numpy().transpose(1, 0, 2)
            if not args.quiet:
                print(f"\r{start + len(batch)}/{args.n} crops", end="", flush=True)
    for k, s in enumerate(sources):
        np.save(out / f"{s}.npy", est[k])
    seconds = time.perf_counter() - t0
    settings = {"sources": sources, "sample_rate": sample_rate, "n": args.n, "length": args.length,
                "generator": f"teacher {args.teacher} on real training mixtures ({root})", "seed": args.seed,
                "seconds": round(seconds, 1)}
    (out / "settings.json").write_text(json.dumps(settings, indent=1) + "\n")
    print(f"\nteacher bank: {args.n} x {args.length} estimates per source in {out} ({seconds:.0f} s)")
    return 0
