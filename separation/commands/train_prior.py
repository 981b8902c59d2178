"""``priorsep train-prior --config configs/priors/<file>.yaml [--trainer.* …] [--export PATH]``:
train one source's prior (:class:`priors.module.SourcePrior`), see ``lightning_job``."""
from __future__ import annotations

from .lightning_job import run_lightning


def add_arguments(parser) -> None:  # parsed by LightningCLI, see run_cli
    parser.add_argument("args", nargs="*", help="--config FILE and LightningCLI overrides")


def export(module, path: str) -> None:
    from priors.checkpoint import save_prior

    save_prior(path, module.model, module.describe())


def run_cli(argv: list[str]) -> int:
    from priors.module import SourcePrior

    return run_lightning(SourcePrior, argv, export)


def run(args) -> int:
    return run_cli(args.args)
