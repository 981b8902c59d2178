"""A LightningCLI run shared by ``train-prior`` and ``train-separator``.

Config layering: ``configs/base/trainer.yaml`` (seed, accelerator/devices, precision, gradient
clipping, the offline W&B logger) is loaded first, as jsonargparse's ``default_config_files``;
``--config FILE`` (repeatable, later files win) and command-line overrides go on top. A config
therefore only states what differs: run length and cadence, ``default_root_dir``, the logger's
``init_args.name``, its ``ModelCheckpoint`` callbacks (a list replaces the whole list), the model
and the data module.

Values the model and the data module share are given once, on the model, and linked into the
data module (``parser.link_arguments``; see ``LINKS`` in ``train_prior`` / ``train_separator``):
``model.source`` / ``model.sample_rate`` for a prior (the sample rate also reaches a network
that takes one, ``model.model.init_args.sample_rate``); ``model.objective`` / ``model.sources`` /
``model.sample_rate`` / ``model.mix_scale`` for the separator. A link is skipped when the target
class has no such argument (``ToyDataModule`` has no ``sample_rate``, ``MusdbDataModule`` no
``objective``). jsonargparse would silently overwrite an explicit ``data.init_args.<key>`` with
the linked value; a conflicting explicit value (in a ``--config`` file or as ``--data.init_args.<key>``)
is refused instead, an equal one is accepted.

``--config FILE`` injects the network (``model.<arg>.class_path``) and the data module
(``data.class_path``); every Lightning trainer option works as an override
(``--trainer.devices 2 --trainer.strategy ddp``, ``--trainer.precision bf16-mixed``,
``--trainer.logger false``). ``--ckpt_path last`` resumes (from the newest ``last*.ckpt`` in the
``ModelCheckpoint`` callbacks' ``dirpath``); ``--export PATH`` writes a compact weights-only
checkpoint at the end (rank 0 only).

Resuming is exact: besides Lightning's loop, optimizer and scheduler state, every checkpoint
holds the global RNG states (:class:`RNGStateCallback`) and, for the toy data, the position in
the epoch (``priors.data.ResumableLoader``); a run killed and resumed ends with the weights of an
uninterrupted one (CPU, same config; ``tests/test_resume.py``).

Experiment tracking: the base config attaches a ``WandbLogger`` writing offline runs under
``runs/wandb/offline-run-*`` (``wandb sync`` uploads them). ``--wandb online`` (or
``WANDB_MODE=online``) logs online, ``--wandb off`` disables the logger. The full resolved
config is logged as the run's ``config``.
"""
from __future__ import annotations

import os
from pathlib import Path

WANDB_CHOICES = ("offline", "online", "off")

#: loaded before every ``--config`` (in this order), see the module docstring
BASE_CONFIGS = (Path(__file__).resolve().parents[2] / "configs" / "base" / "trainer.yaml",)


def base_config_files() -> list[str]:
    """The base configs, checked to exist (jsonargparse would skip a missing one silently)."""
    from ..errors import PriorsepError

    for path in BASE_CONFIGS:
        if not path.is_file():
            raise PriorsepError(f"base config {path} not found: train-prior / train-separator need the "
                                f"repository's configs/ (install from a checkout: pip install -e .)")
    return [str(p) for p in BASE_CONFIGS]


_MISSING = object()


def explicit_values(argv: list[str], keys) -> dict[str, tuple[str, object]]:
    """The values ``argv`` gives explicitly for ``keys`` (dotted, e.g. ``data.init_args.sources``):
    in ``--config`` files and as ``--key=value`` / ``--key value``; the last one wins. Returns
    ``{key: (where, value)}``."""
    import yaml

    keys, found = set(keys), {}
    for i, token in enumerate(argv):
        if not token.startswith("--"):
            continue
        name, eq, value = token.partition("=")
        if not eq:
            value = argv[i + 1] if i + 1 < len(argv) else None
        if name == "--config" and value and Path(value).is_file():
            try:
                config = yaml.safe_load(Path(value).read_text())
            except yaml.YAMLError:
                continue  # jsonargparse reports it
            for key in keys:
                node = config
                for part in key.split("."):
                    node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
                if node is not _MISSING:
                    found[key] = (value, node)
        elif name[2:] in keys and value is not None:
            found[name[2:]] = (f"{name}={value}", yaml.safe_load(value))
    return found


def wandb_overrides(argv: list[str]) -> list[str]:
    """Translate ``--wandb {offline,online,off}`` into the environment and trainer overrides;
    returns argv without it. Offline unless the user opts in, never asks for a key."""
    argv = list(argv)
    mode = os.environ.get("WANDB_MODE", "offline")
    for i, arg in enumerate(argv):
        if arg == "--wandb" or arg.startswith("--wandb="):
            mode = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            del argv[i:i + (1 if "=" in arg else 2)]
            break
    if mode not in WANDB_CHOICES + ("disabled", "dryrun"):
        from ..errors import PriorsepError

        raise PriorsepError(f"--wandb {mode!r}: choose from {', '.join(WANDB_CHOICES)}")
    if mode in ("off", "disabled"):
        argv.append("--trainer.logger=false")
    else:
        os.environ["WANDB_MODE"] = mode
        if mode == "online":
            argv.append("--trainer.logger.init_args.offline=false")
    return argv


def _config_logging_callback():
    from pytorch_lightning.cli import SaveConfigCallback

    class LogConfig(SaveConfigCallback):
        """Also hands the full resolved config to every attached logger (rank 0)."""

        def save_config(self, trainer, pl_module, stage) -> None:
            import yaml

            config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
            for logger in trainer.loggers:
                logger.log_hyperparams({"config": config})

    return LogConfig


def _rng_callback():
    import random

    import numpy as np
    import pytorch_lightning as pl
    import torch

    def collect() -> dict:
        np_state = np.random.get_state()
        return {"torch": torch.get_rng_state(), "python": random.getstate(),
                # numpy's state as plain types and a tensor: checkpoints stay loadable with weights_only
                "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
                # this process's GPU only (each DDP rank owns one; states are saved from rank 0)
                "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None}

    def restore(state: dict) -> None:
        torch.set_rng_state(state["torch"])
        version, inner, gauss = state["python"]
        random.setstate((version, tuple(inner), gauss))
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
        if isinstance(state.get("cuda"), torch.Tensor) and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"])

    def decorrelate(rank: int) -> None:
        """Give DDP rank ``rank`` > 0 its own streams, derived from the current (shared) state:
        every rank is seeded alike by ``seed_everything``, and a resumed run restores rank 0's
        saved states on every rank. Rank 0 (and a one-process run) is left untouched."""
        if rank > 0:
            base = int(torch.randint(0, 2**31 - 1, (1,)).item())
            torch.manual_seed(base * 1009 + rank)
            np.random.seed((base * 1009 + rank) % 2**32)
            random.seed(base * 1009 + rank)

    class RNGStateCallback(pl.Callback):
        """Makes a resumed run draw the random numbers an uninterrupted one draws (the σ levels
        and noise of ``training_step``): the global RNG states (torch, CUDA, numpy, Python) are
        saved in every checkpoint and restored when training resumes, and validation runs on a
        side copy of them (restored afterwards), since a resumed run does not repeat the
        validation that followed its checkpoint. Under DDP each rank draws its own numbers
        (ranks > 0 are decorrelated at the start and after a restore; a resumed multi-process
        run is therefore not bit-identical to an uninterrupted one on ranks > 0)."""

        def __init__(self):
            self._resume_from = None
            self._train_states = None

        @property
        def state_key(self) -> str:
            return "priorsep.RNGStateCallback"

        def state_dict(self) -> dict:
            return collect()

        def load_state_dict(self, state_dict: dict) -> None:
            self._resume_from = state_dict

        def setup(self, trainer, pl_module, stage) -> None:
            if stage == "fit":
                decorrelate(trainer.global_rank)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            # as late as possible: on restart Lightning still sets up the data loaders and
            # skips the validation that followed the checkpoint (an iterator: one RNG draw)
            if self._resume_from:
                restore(self._resume_from)
                decorrelate(trainer.global_rank)
                self._resume_from = None

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._train_states = collect()

        def on_validation_end(self, trainer, pl_module) -> None:
            if trainer.state.fn == "fit" and not trainer.sanity_checking and self._train_states is not None:
                restore(self._train_states)

    return RNGStateCallback


def allow_unused_parameters(strategy) -> None:
    """Let a DDP strategy train networks with parameters that feed nothing (in place).

    The WaveNet prior's and the WaveNet encoder's last residual block compute a residual 1x1
    conv whose output is never used (only its skip output is), so those weights never get a
    gradient. torch's DistributedDataParallel refuses that unless ``find_unused_parameters``
    is on ("parameters that were not used in producing the loss"). The weights stay in the
    networks so that shipped checkpoints keep their keys and content hashes; instead every DDP
    strategy the user did not configure explicitly — ``--trainer.strategy ddp`` (flag or
    YAML), ``ddp_spawn``/``ddp_fork``/``ddp_notebook``, or the ``ddp`` that ``auto`` picks for
    ``--trainer.devices N`` / ``--trainer.num_nodes N`` — gets ``find_unused_parameters=True``,
    as ``ddp_find_unused_parameters_true`` would. An explicit choice
    (``ddp_find_unused_parameters_false``, ``DDPStrategy(find_unused_parameters=...)``) is
    kept. The parameters are unused on every rank, so DDP leaves their gradients ``None``
    exactly as in one process: the optimiser skips them and training matches. The cost is a
    walk over the autograd graph per step (small next to these convolutions).
    """
    from pytorch_lightning.strategies import DDPStrategy

    # DDPStrategy(**kwargs) hands kwargs to DistributedDataParallel when fit wraps the model;
    # a private attribute, so tests/test_ddp.py checks the mapping on every Lightning upgrade
    kwargs = getattr(strategy, "_ddp_kwargs", None)
    if isinstance(strategy, DDPStrategy) and isinstance(kwargs, dict):
        kwargs.setdefault("find_unused_parameters", True)


def make_cli(module_class, argv: list[str], links=(), *, instantiate: bool = True, log_config: bool = True):
    """The LightningCLI of a job (``run=False``): the base configs, then ``argv`` (after
    ``--wandb``), the ``(source, target)`` parse links; ``instantiate=False`` stops after parsing
    (``cli.config`` holds the resolved namespace, links applied; no model, data or trainer)."""
    import sys

    import pytorch_lightning as pl
    from pytorch_lightning.cli import LightningCLI

    from ..errors import PriorsepError

    argv = wandb_overrides(argv)
    links = tuple(links)
    given = explicit_values(argv, [target for _, target in links])

    class JobCLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.add_argument("--ckpt_path", type=str | None, default=None,
                                help="resume from this checkpoint ('last' = the newest of this run)")
            parser.add_argument("--export", type=str | None, default=None,
                                help="write a compact weights-only checkpoint here after training")
            for source, target in links:
                parser.link_arguments(source, target, apply_on="parse")

        def before_instantiate_classes(self) -> None:
            for source, target in links:
                if target in given and target in self.config and given[target][1] != self.config[target]:
                    where, value = given[target]
                    raise PriorsepError(f"{target} is linked to {source} ({self.config[source]!r}) but "
                                        f"{where} sets it to {value!r}: set {source} instead")

        def instantiate_classes(self) -> None:
            if instantiate:
                super().instantiate_classes()

    saved_argv, sys.argv = sys.argv, sys.argv[:1] + list(argv)  # LightningCLI reads sys.argv
    try:
        return JobCLI(module_class, pl.LightningDataModule, subclass_mode_data=True, run=False,
                      parser_kwargs={"default_config_files": base_config_files()},
                      save_config_callback=_config_logging_callback() if log_config else None,
                      save_config_kwargs={"overwrite": True}, trainer_defaults={"callbacks": [_rng_callback()()]})
    finally:
        sys.argv = saved_argv


def run_lightning(module_class, argv: list[str], export, links=()) -> int:
    """Parse ``argv`` with LightningCLI (see :func:`make_cli`), fit, then ``export(module, path)`` if asked."""
    cli = make_cli(module_class, argv, links)
    allow_unused_parameters(cli.trainer.strategy)
    try:
        cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=cli.config.get("ckpt_path"))
    finally:
        _finish_wandb()
    path = cli.config.get("export")
    if path and cli.trainer.is_global_zero:
        export(cli.model, path)
        print(f"exported {path}")
    return 0


def _finish_wandb() -> None:
    """Close this process's W&B run so the offline run is complete on disk (and a second job
    in the same process starts a new run)."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.run.finish()
