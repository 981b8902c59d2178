"""A LightningCLI run shared by ``train-prior`` and ``train-separator``.

``--config FILE`` injects the network (``model.<arg>.class_path``) and the data module
(``data.class_path``); every Lightning trainer option works as an override
(``--trainer.devices 2 --trainer.strategy ddp``, ``--trainer.precision bf16-mixed``,
``--trainer.logger false``). ``--ckpt_path last`` resumes; ``--export PATH`` writes a
compact weights-only checkpoint at the end (rank 0 only).
"""
from __future__ import annotations


def run_lightning(module_class, argv: list[str], export) -> int:
    """Parse ``argv`` with LightningCLI, fit, then ``export(module, path)`` if asked."""
    import sys

    import pytorch_lightning as pl
    from pytorch_lightning.cli import LightningCLI

    class JobCLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.add_argument("--ckpt_path", type=str | None, default=None,
                                help="resume from this checkpoint ('last' = the newest of this run)")
            parser.add_argument("--export", type=str | None, default=None,
                                help="write a compact weights-only checkpoint here after training")

    saved_argv, sys.argv = sys.argv, sys.argv[:1] + list(argv)  # LightningCLI reads sys.argv
    try:
        cli = JobCLI(module_class, pl.LightningDataModule, subclass_mode_data=True, run=False,
                     save_config_kwargs={"overwrite": True})
    finally:
        sys.argv = saved_argv
    cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=cli.config.get("ckpt_path"))
    path = cli.config.get("export")
    if path and cli.trainer.is_global_zero:
        export(cli.model, path)
        print(f"exported {path}")
    return 0
