"""``priorsep benchmark toy [--methods …] [--n N] [--length L] [--device D] [--json PATH] [--plot PNG]``.

Every method on the same fixed crops of the toy test set; prints a Markdown table of
SI-SDRi (dB) per source and mean, and seconds of compute per second of audio. JSON:
``{"methods": {name: {"si_sdri": {"mean": x, <source>: x}, "seconds_per_audio_second": y}},
"n": N, "length": L, "device": D, ...}``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from . import add_precision_argument
from ..methods import benchmark_methods, default_methods


def add_arguments(parser) -> None:
    parser.add_argument("dataset", choices=["toy"], help="benchmark set (toy: the fixed toy test set)")
    methods = benchmark_methods()
    parser.add_argument("--methods", nargs="+", default=default_methods(), choices=methods, metavar="METHOD",
                        help=f"any of {', '.join(methods)} (default: {', '.join(default_methods())})")
    parser.add_argument("--n", type=int, default=64, help="test crops")
    parser.add_argument("--length", type=int, default=16384, help="samples per crop")
    parser.add_argument("--checkpoints", default="checkpoints/toy",
                        help="folder of the priors and the trained separators (default checkpoints/toy: relative "
                             "to the working directory, else to the repository checkout)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    add_precision_argument(parser, "trained separators' inference precision (bf16: bfloat16 autocast)")
    parser.add_argument("--langevin-steps", type=int, default=20, help="Langevin steps per σ level")
    parser.add_argument("--langevin-levels", type=int, default=10, help="Langevin σ levels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--plot", default=None, help="write a bar chart PNG here")
    parser.add_argument("--quiet", action="store_true")


def run(args) -> int:
    from priors.data import TOY_SAMPLE_RATE, TOY_SOURCES, ToyDataset

    from ..benchmark import format_table, run_benchmark
    from ..reference_data import reference_crops

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    sources = list(TOY_SOURCES)
    crops, mix_scale = reference_crops(sources, args.n, args.length, seed=args.seed)

    def nmf_train():
        ds = ToyDataset("train", "both", crop_length=args.length, epoch_size=32, random_crops=False, seed=args.seed)
        train = torch.stack([ds[j][1] for j in range(len(ds))])
        return [train[:, k] for k in range(len(sources))]

    from ..errors import PriorsepError
    from ..models import repository_path

    try:  # the default resolves in the repository checkout when run from elsewhere
        checkpoints = repository_path(args.checkpoints, "--checkpoints")
    except PriorsepError:  # missing: only an error for the methods that read it (run_benchmark says which)
        checkpoints = args.checkpoints
    result = run_benchmark(args.methods, crops, mix_scale, sources, TOY_SAMPLE_RATE, checkpoints, args.device,
                           args.batch_size, args.seed,
                           {"steps_per_level": args.langevin_steps, "n_levels": args.langevin_levels}, nmf_train,
                           progress=not args.quiet, precision=args.precision)
    print(f"SI-SDRi (dB) on {args.n} toy test crops of {args.length} samples, device {args.device}, "
          f"separators in {args.precision}")
    print(format_table(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.json).with_name(f".{Path(args.json).name}.tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(args.json)
    if args.plot:
        from ..plots import plot_benchmark

        plot_benchmark(args.plot, {m: r["si_sdri"] for m, r in result["methods"].items()}, sources)
    return 0
