"""One module per ``priorsep`` subcommand: ``add_arguments(parser)`` and ``run(args)``."""
from __future__ import annotations


def add_precision_argument(parser, help_text: str) -> None:
    """``--precision fp32|bf16``: a trained separator's inference precision (the choices of
    ``separation.checkpoints.PRECISIONS``, spelled out here so that ``--help`` needs no torch)."""
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help=help_text)
