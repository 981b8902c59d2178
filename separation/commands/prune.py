"""``priorsep prune SEPARATOR.pt OUT.pt --gate-channels G [--n N] [--length L] [--data DIR]``:
a cheaper copy of a trained WaveNet separator with G gated units per block, the units chosen
on N training *mixtures* (no source is read); the starting point of a ``distil`` run."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("separator", help="trained separator checkpoint (.pt or Lightning .ckpt)")
    parser.add_argument("out", help="pruned separator checkpoint to write (.pt)")
    parser.add_argument("--gate-channels", type=int, required=True, help="gated units to keep per block")
    parser.add_argument("--n", type=int, default=32, help="training mixtures that rank the units")
    parser.add_argument("--length", type=int, default=4096, help="samples per mixture")
    parser.add_argument("--data", default=None, help="stem folder (MUSDB18-HQ layout); default: the toy set")
    parser.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    import torch

    from ..checkpoints import load_separator, save_separator
    from ..data import SeparationDataModule
    from ..encoder import WaveNetEncoder
    from ..errors import PriorsepError
    from ..pruning import prune_gate_units

    sep = load_separator(args.separator)
    if not isinstance(sep.encoder, WaveNetEncoder):
        raise PriorsepError(f"{args.separator}: only WaveNetEncoder separators can be pruned, not {sep.meta['class_path']}")
    meta = sep.meta
    dm = SeparationDataModule("distil", data_root=args.data, sources=meta["sources"], sample_rate=meta["sample_rate"],
                              mix_scale=meta["mix_scale"], crop_length=args.length, train_crops=args.n, seed=args.seed)
    mixtures = dm.train_dataset()
    mix = torch.stack([mixtures[j] for j in range(args.n)])
    try:
        pruned = prune_gate_units(sep.encoder, mix, args.gate_channels)
    except ValueError as err:
        raise PriorsepError(str(err)) from None
    save_separator(args.out, pruned, {**meta, "init_args": dict(pruned.init_args), "pruned_from": str(args.separator)})
    before = sum(p.numel() for p in sep.encoder.parameters())
    after = sum(p.numel() for p in pruned.parameters())
    print(f"pruned {args.separator} to {args.gate_channels} gated units per block: "
          f"{before:,} -> {after:,} parameters, written to {args.out}")
    return 0
