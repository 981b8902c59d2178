"""``priorsep train-separator --config configs/separation/<file>.yaml [--trainer.* …] [--export PATH]``:
train the variational separator (:class:`separation.module.VariationalSeparator`) with the
priors frozen; the config's ``objective`` picks elbo / sleep / wake_sleep / remix / distil / supervised."""
from __future__ import annotations

from .lightning_job import run_lightning


def add_arguments(parser) -> None:
    parser.add_argument("args", nargs="*", help="--config FILE and LightningCLI overrides")


def export(module, path: str) -> None:
    from ..checkpoints import save_separator

    save_separator(path, module.encoder, module.describe())


def run_cli(argv: list[str]) -> int:
    from ..module import VariationalSeparator

    return run_lightning(VariationalSeparator, argv, export)


def run(args) -> int:
    return run_cli(args.args)
