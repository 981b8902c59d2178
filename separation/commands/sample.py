"""``priorsep sample``: draw waveforms from trained priors.

* ``--prior CKPT -n N -o DIR``: N WAVs ``<source>_<i>.wav`` from one prior.
* ``--priors DIR --n N --length L --out BANK``: a sample bank for sleep-phase training,
  ``BANK/<source>.npy`` (N, L) float32 per source plus ``BANK/settings.json``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import PriorsepError


def add_arguments(parser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--prior", help="one prior checkpoint (.pt or .ckpt)")
    which.add_argument("--priors", help="a directory of priors (one per source)")
    parser.add_argument("-n", "--n", type=int, default=4, help="examples per source")
    parser.add_argument("--length", type=int, default=14_700, help="samples per example")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--sigma", type=float, default=0.0, help="noise level the prior is conditioned on")
    parser.add_argument("--batch-size", type=int, default=1024, help="examples generated together (throughput grows with it)")
    parser.add_argument("--wav", action="store_true", help="bank mode: also write the first 8 as WAVs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--quiet", action="store_true")


def draw(prior, n: int, length: int, temperature: float, sigma: float, batch_size: int, device, progress: bool):
    """n samples (n, length) from one prior, in batches."""
    out = []
    for start in range(0, n, batch_size):
        out.append(prior.generate(min(batch_size, n - start), length, sigma=sigma, temperature=temperature,
                                  device=device, progress=progress).cpu())
    return torch.cat(out)


def _write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    import soundfile as sf

    tmp = path.with_name(f".{path.stem}.tmp.wav")
    sf.write(tmp, audio, sr, subtype="FLOAT")
    tmp.replace(path)


def run(args) -> int:
    from priors.checkpoint import load_prior, load_priors

    torch.manual_seed(args.seed)
    out = Path(args.out)
    if args.prior:
        models, metas = (lambda m: ([m[0]], [m[1]]))(load_prior(args.prior, args.device))
    else:
        models, metas = load_priors(args.priors, args.device)
    sources = [m["source"] for m in metas]
    sr = metas[0]["sample_rate"]
    targets = [out / f"{s}.npy" for s in sources] if args.priors else [out / f"{sources[0]}_{i:03d}.wav" for i in range(args.n)]
    if any(t.exists() for t in targets) and not args.force:
        raise PriorsepError(f"{out}: already holds samples (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    settings = {"sources": sources, "sample_rate": sr, "n": args.n, "length": args.length,
                "temperature": args.temperature, "sigma": args.sigma, "seed": args.seed,
                "priors": [{"source": m["source"], "class_path": m["class_path"], "hash": m.get("hash")} for m in metas],
                "seconds": {}}
    for model, source in zip(models, sources):
        t0 = time.perf_counter()
        x = draw(model, args.n, args.length, args.temperature, args.sigma, args.batch_size, args.device, not args.quiet)
        seconds = time.perf_counter() - t0
        settings["seconds"][source] = seconds
        if not args.quiet:
            rate = args.n * args.length / seconds
            print(f"{source}: {args.n} x {args.length} samples in {seconds:.1f} s "
                  f"({rate:.0f} samples/s, {rate / sr:.1f}x real time)")
        if args.priors:
            tmp = out / f".{source}.tmp.npy"
            np.save(tmp, x.numpy().astype(np.float32))
            tmp.replace(out / f"{source}.npy")
            for i in range(min(8, args.n) if args.wav else 0):
                _write_wav(out / f"{source}_{i:03d}.wav", x[i].numpy(), sr)
        else:
            for i in range(args.n):
                _write_wav(out / f"{source}_{i:03d}.wav", x[i].numpy(), sr)
    if args.priors:
        (out / "settings.json").write_text(json.dumps(settings, indent=1) + "\n")
    return 0
