"""``priorsep train-prior --config configs/priors/<file>.yaml [--trainer.* …] [--export PATH]``:
train one source's prior (:class:`priors.module.SourcePrior`), see ``lightning_job``
(``configs/base/trainer.yaml`` is loaded first; ``LINKS`` are said once, on the model)."""
from __future__ import annotations

from .lightning_job import make_cli as _make_cli, run_lightning

#: (source, target): the data module's source and sample rate are the prior's, and so is the
#: network's sample rate where it has one (priors.frame_prior.FramePrior; WaveNet and Flow have none)
LINKS = (("model.source", "data.init_args.source"),
         ("model.sample_rate", "data.init_args.sample_rate"),
         ("model.sample_rate", "model.model.init_args.sample_rate"))


def add_arguments(parser) -> None:  # parsed by LightningCLI, see run_cli
    parser.add_argument("args", nargs="*", help="--config FILE and LightningCLI overrides")


def export(module, path: str) -> None:
    from priors.checkpoint import save_prior

    save_prior(path, module.model, module.describe())


def make_cli(argv: list[str], **kwargs):
    """This command's LightningCLI without fitting (tests, config checks); see ``lightning_job.make_cli``."""
    from priors.module import SourcePrior

    return _make_cli(SourcePrior, argv, LINKS, **kwargs)


def run_cli(argv: list[str]) -> int:
    from priors.module import SourcePrior

    return run_lightning(SourcePrior, argv, export, LINKS)


def run(args) -> int:
    return run_cli(args.args)
