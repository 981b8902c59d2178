"""``priorsep export CKPT OUT.pt [--half]``: compact weights-only copy of a Lightning checkpoint of a
prior or of a separator (e.g. ``runs/separation/<run>/checkpoints/last.ckpt`` of a stopped run),
or of a compact one (e.g. to float16 with ``--half``)."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("ckpt", help="Lightning checkpoint (.ckpt) of a prior or a separator")
    parser.add_argument("out", help="compact checkpoint to write (.pt)")
    parser.add_argument("--half", action="store_true", help="store the weights in float16 (half the size)")


def run(args) -> int:
    import torch

    from priors.checkpoint import load_prior, save_prior

    from ..checkpoints import split_separator_checkpoint

    try:
        ckpt = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    except Exception:
        ckpt = None  # load_prior reports the unreadable file in one line
    if split_separator_checkpoint(ckpt) is not None:
        from ..checkpoints import load_separator, save_separator

        sep = load_separator(args.ckpt)
        save_separator(args.out, sep.encoder, sep.meta, half=args.half)
        print(f"exported {sep.meta['objective']} separator ({sep.meta['class_path']}) to {args.out}")
        return 0
    model, meta = load_prior(args.ckpt)
    save_prior(args.out, model, meta, half=args.half)
    print(f"exported {meta['source']} prior ({meta['class_path']}) to {args.out}")
    return 0
