"""``priorsep evaluate --root DIR [--is-wav] [--subset test]
(--model NAME|CKPT | --langevin PRIORS_DIR | --baseline {mix,irm,nmf}) --out RESULTS [--fast]
[--workers N] [--max-tracks N] [--max-seconds S] [--targets …] [--seed S] [--force] [--quiet]``.

Separates every track of a MUSDB18 subset at full length and scores it with museval
(BSSEval v4, 1 s windows): one museval JSON per track under ``RESULTS/<subset>/``, then
``RESULTS/summary.json`` = ``{"targets": {target: median SDR in dB or null}, "n_tracks": N,
"seconds": wall time, ...}`` (median over frames, then over tracks) and a table on stdout.
Tracks already scored in RESULTS are read back, not recomputed.
"""
from __future__ import annotations

from . import add_precision_argument


def add_arguments(parser) -> None:
    parser.add_argument("--root", required=True, help="MUSDB18 folder (stems .mp4) or MUSDB18-HQ folder (with --is-wav)")
    parser.add_argument("--is-wav", action="store_true", help="MUSDB18-HQ layout: <subset>/<track>/{mixture,vocals,…}.wav")
    parser.add_argument("--subset", default="test", choices=["train", "test"], help="subset to score (default test)")
    method = parser.add_mutually_exclusive_group(required=True)
    method.add_argument("--model", help="a named model (`priorsep models`, e.g. chorales) or a separator checkpoint "
                                        "(.pt or Lightning .ckpt); its sources must be the data set's targets")
    method.add_argument("--langevin", metavar="PRIORS_DIR",
                        help="annealed Langevin with the frozen priors in this folder (slow: see --max-tracks/--max-seconds)")
    method.add_argument("--baseline", choices=["mix", "irm", "nmf"],
                        help="mix: mixture / n_targets for every target; irm: oracle ideal ratio mask (needs references); "
                             "nmf: KL-NMF templates per stem learned from the train subset's isolated stems")
    parser.add_argument("--out", required=True, help="results folder (per-track JSON and summary.json)")
    parser.add_argument("--targets", nargs="+", default=None, metavar="TARGET",
                        help="targets to score (default: the model's sources, or vocals drums bass other)")
    parser.add_argument("--fast", action="store_true",
                        help="fast framewise SDR instead of museval (reports its agreement with museval on track 1)")
    parser.add_argument("--workers", type=int, default=1, help="tracks scored in parallel processes")
    parser.add_argument("--device", default="cpu", help="device for the separator")
    add_precision_argument(parser, "a --model's inference precision (bf16: bfloat16 autocast)")
    parser.add_argument("--max-tracks", type=int, default=None, help="score only the first N tracks of the subset")
    parser.add_argument("--max-seconds", type=float, default=None, help="score only the first S seconds of each track")
    parser.add_argument("--langevin-levels", type=int, default=10, help="Langevin σ levels")
    parser.add_argument("--langevin-steps", type=int, default=20, help="Langevin steps per σ level")
    parser.add_argument("--nmf-rank", type=int, default=32, help="NMF templates per stem")
    parser.add_argument("--nmf-fft", type=int, default=1024, help="NMF STFT size (hop: a quarter of it)")
    parser.add_argument("--nmf-power", type=float, default=1.0,
                        help="NMF mask exponent: 1 ratio of the model magnitudes, 2 Wiener filter of their powers")
    parser.add_argument("--chunk-seconds", type=float, default=None, help="separation chunk length (default 4 s)")
    parser.add_argument("--batch-size", type=int, default=8, help="chunks per forward pass")
    parser.add_argument("--seed", type=int, default=0, help="torch seed (track i uses seed + i)")
    parser.add_argument("--force", action="store_true", help="recompute tracks already scored in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..errors import PriorsepError
    from ..evaluate import EvalConfig, evaluate
    from ..result_store import format_table

    if args.workers < 1:
        raise PriorsepError(f"--workers must be at least 1, got {args.workers}")
    for flag in ("max_tracks", "max_seconds", "langevin_levels", "langevin_steps", "nmf_rank", "nmf_fft", "nmf_power"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise PriorsepError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    from ..models import resolve_model

    if args.model:
        resolve_model(args.model)  # a one-line error now; the name itself is kept in the results
    model = args.model
    cfg = EvalConfig(root=str(args.root), out=str(args.out), targets=list(args.targets or []), model=model,
                     baseline=args.baseline, langevin=args.langevin, langevin_levels=args.langevin_levels,
                     langevin_steps=args.langevin_steps, nmf_rank=args.nmf_rank, nmf_fft=args.nmf_fft,
                     nmf_power=args.nmf_power, max_tracks=args.max_tracks,
                     max_seconds=args.max_seconds, is_wav=bool(args.is_wav), subset=args.subset, device=args.device,
                     precision=args.precision,
                     chunk_seconds=args.chunk_seconds, batch_size=args.batch_size, fast=bool(args.fast), seed=args.seed)
    summary = evaluate(cfg, workers=args.workers, progress=not args.quiet, force=bool(args.force))
    print(format_table(summary))
    return 0
