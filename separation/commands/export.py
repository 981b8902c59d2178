"""``priorsep export CKPT OUT.pt [--half]``: compact weights-only copy of a prior's Lightning checkpoint."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("ckpt", help="Lightning checkpoint (.ckpt) of a prior")
    parser.add_argument("out", help="compact checkpoint to write (.pt)")
    parser.add_argument("--half", action="store_true", help="store weights in float16 (half the size)")


def run(args) -> int:
    from priors.checkpoint import load_prior, save_prior

    model, meta = load_prior(args.ckpt)
    save_prior(args.out, model, meta, half=args.half)
    print(f"exported {meta['source']} prior ({meta['class_path']}) to {args.out}")
    return 0
