"""The ``priorsep`` console script: one entry point, one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
User errors (:class:`separation.errors.PriorsepError`) print one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from priors.checkpoint import CheckpointError

from .errors import PriorsepError

#: subcommand -> (module implementing it, one-line help)
COMMANDS = {
    "make-toy": ("separation.commands.make_toy", "write the toy data set as WAV stems (MUSDB18-HQ layout)"),
    "make-chorales": ("separation.commands.make_chorales", "render Bach chorales as violin/clarinet/saxophone/bassoon stems (MUSDB18-HQ layout)"),
    "train-prior": ("separation.commands.train_prior", "train one source prior (LightningCLI config)"),
    "train-separator": ("separation.commands.train_separator", "train the separator with the priors frozen (LightningCLI config)"),
    "benchmark": ("separation.commands.benchmark", "score every separation method on a fixed test set"),
    "separate": ("separation.commands.separate", "separate mixture files into one WAV per source"),
    "models": ("separation.commands.models", "list the named separator models shipped with the package"),
    "demo": ("separation.commands.demo", "separate a toy mixture with the shipped checkpoints"),
    "prune": ("separation.commands.prune", "cut a cheaper separator (fewer gated units) from a trained one"),
    "export": ("separation.commands.export", "write a compact weights-only checkpoint from a Lightning .ckpt"),
    "sample": ("separation.commands.sample", "draw waveforms from trained priors"),
    "teacher-bank": ("separation.commands.teacher_bank", "store a teacher's estimates of real training mixtures as a bank (remixing)"),
    "diagnose": ("separation.commands.diagnose", "cross-likelihood matrix of priors vs sources"),
    "evaluate": ("separation.commands.evaluate", "separate and score a MUSDB18(-HQ)-layout test set with museval"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="priorsep", description="Unsupervised source separation with deep generative priors.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # LightningCLI-driven commands parse their own arguments (configs, --trainer.* overrides)
    if argv and argv[0] in ("train-prior", "train-separator") and not {"-h", "--help"} & set(argv[:1]):
        module = importlib.import_module(COMMANDS[argv[0]][0])
        return _guard(lambda: module.run_cli(argv[1:]))
    args = build_parser().parse_args(argv)
    module = importlib.import_module(args._module)
    return _guard(lambda: module.run(args))


def _guard(fn) -> int:
    try:
        return int(fn() or 0)
    except (PriorsepError, CheckpointError) as err:
        print(f"priorsep: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("priorsep: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (`priorsep models | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that flushing stdout at exit raises nothing either
        return 141


if __name__ == "__main__":
    sys.exit(main())
