"""``priorsep train-separator --config configs/separation/<file>.yaml [--trainer.* …] [--export PATH]``:
train the variational separator (:class:`separation.module.VariationalSeparator`) with the
priors frozen; the config's ``model.objective`` picks elbo / sleep / wake_sleep / remix / distil / supervised.
``configs/base/trainer.yaml`` is loaded first; ``LINKS`` are said once, on the model (see ``lightning_job``)."""
from __future__ import annotations

from .lightning_job import make_cli as _make_cli, run_lightning

#: (source, target): what the data module shares with the separator is given once, on the model
LINKS = (("model.objective", "data.init_args.objective"),
         ("model.sources", "data.init_args.sources"),
         ("model.sample_rate", "data.init_args.sample_rate"),
         ("model.mix_scale", "data.init_args.mix_scale"))


def add_arguments(parser) -> None:
    parser.add_argument("args", nargs="*", help="--config FILE and LightningCLI overrides")


def export(module, path: str) -> None:
    from ..checkpoints import save_separator

    save_separator(path, module.encoder, module.describe())


def make_cli(argv: list[str], **kwargs):
    """This command's LightningCLI without fitting (tests, config checks); see ``lightning_job.make_cli``."""
    from ..module import VariationalSeparator

    return _make_cli(VariationalSeparator, argv, LINKS, **kwargs)


def run_cli(argv: list[str]) -> int:
    from ..module import VariationalSeparator

    return run_lightning(VariationalSeparator, argv, export, LINKS)


def run(args) -> int:
    return run_cli(args.args)
