"""``priorsep models [--json]``: the named separator models shipped with the package.

For each model: its name (the one ``--model`` and ``separation.separate(model=…)`` take), a
description, the sources it separates, its sample rate, its size (MB and parameters), the
objective it was trained with (unsupervised unless the objective is ``supervised``, which
learnt from (mixture, sources) pairs), and its file. All but the name and description come
from the checkpoint's own metadata. ``--json`` prints the same as a JSON list.
"""
from __future__ import annotations

import json


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of the table")


def format_model(info: dict, default: bool = False) -> str:
    kind = ("supervised: trained on (mixture, sources) pairs" if info["supervised"]
            else "unsupervised: trained on mixtures and source priors only")
    return "\n".join([
        f"{info['name'] or info['file']}{' (default)' if default else ''}",
        *([f"    {info['description']}"] if info["description"] else []),
        f"    sources      {', '.join(info['sources'])}",
        f"    sample rate  {info['sample_rate']} Hz",
        f"    size         {info['size_bytes'] / 2**20:.1f} MB, {info['parameters'] / 1e6:.2f} M parameters",
        f"    objective    {info['objective']} ({kind})",
        f"    file         {info['file']}",
    ])


def run(args) -> int:
    from ..models import DEFAULT_MODEL, MODELS, describe_model

    infos = [describe_model(name) for name in MODELS]
    if args.json:
        print(json.dumps([{**i, "default": i["name"] == DEFAULT_MODEL} for i in infos], indent=1))
        return 0
    print("\n\n".join(format_model(i, i["name"] == DEFAULT_MODEL) for i in infos))
    print(f"\npick one with `priorsep separate MIX.wav -o OUT/ --model NAME` or "
          f"`separation.separate(audio, sample_rate, model=\"NAME\")`; a checkpoint path works too")
    return 0
