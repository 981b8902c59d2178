"""The one registry of separation methods, used by ``priorsep benchmark`` (toy crops, SI-SDRi)
and ``priorsep evaluate`` (MUSDB-layout folders, museval).

A method is a name and a builder ``build(ctx) -> Separator`` (:mod:`separation.interface`);
:class:`MethodContext` carries everything a builder may need, and a builder reads only its
own fields. Registered (in the benchmark's order):

* ``mixture`` — every source = mixture / (K · mix_scale) (any rate and length);
* ``nmf`` — KL-NMF templates per source: loaded from ``ctx.nmf_store`` when that file exists,
  else fitted to ``ctx.nmf_train()`` (isolated audio per source; stored there when given);
* ``langevin`` — annealed Langevin with the frozen priors of ``ctx.priors`` (default
  ``ctx.checkpoints``); its σ range is checked against the priors' trained range;
* the trained separators of a checkpoints folder, by name (``variational`` →
  ``separator_elbo.pt``, …: :data:`CHECKPOINT_FILES`);
* ``irm`` — the oracle ideal ratio mask (reads the references: context, not a method);
* ``model`` — one separator checkpoint file, ``ctx.checkpoint`` (``evaluate --model``).

Adding a method::

    @register("wiener", help="…")                  # a builder of your own
    def _wiener(ctx: MethodContext):
        return MyWiener(ctx.sources, ctx.sample_rate, ctx.mix_scale)

    register_checkpoint("distilled", "separator_distilled.pt")   # a trained separator file

It is then accepted by ``priorsep benchmark --methods`` (``benchmark=False`` keeps it out,
``default=False`` out of the default list) and by :func:`build_separator`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import PriorsepError


@dataclass
class MethodContext:
    """What a builder may use; the fields a method does not need are ignored.

    sources: source names in output order (None: the method's own, e.g. the priors');
    sample_rate: Hz of the data (None: the method's own); mix_scale: mixture = mix_scale · Σ
    sources; device, seed, precision (trained separators' inference precision);
    checkpoints: folder of priors and named separator checkpoints; checkpoint: one separator
    file (``model``); priors: folder of priors for ``langevin`` (default ``checkpoints``);
    langevin: keyword arguments of :class:`separation.langevin.LangevinSeparator`;
    nmf_rank, nmf_fft, nmf_power (see :class:`separation.baselines.NMFSeparator`; a stored file
    keeps its own), nmf_store (templates file), nmf_train (() -> isolated audio per source, each
    (n, time)).
    """

    sources: list[str] | None = None
    sample_rate: int | None = None
    mix_scale: float = 1.0
    device: str = "cpu"
    seed: int = 0
    precision: str = "fp32"
    checkpoints: str | Path | None = None
    checkpoint: str | Path | None = None
    priors: str | Path | None = None
    langevin: dict = field(default_factory=dict)
    nmf_rank: int = 32
    nmf_fft: int = 1024
    nmf_power: float = 1.0
    nmf_store: str | Path | None = None
    nmf_train: Callable[[], list] | None = None


@dataclass(frozen=True)
class Method:
    name: str
    build: Callable[[MethodContext], object]
    help: str = ""
    oracle: bool = False  # reads the references
    benchmark: bool = True  # offered by ``priorsep benchmark``
    default: bool = True  # in the benchmark's default list
    checkpoint_file: str | None = None  # a named trained separator: its file in the checkpoints folder
    uses_checkpoints: bool = False  # reads ctx.checkpoints (checked up front by check_methods)


#: name -> method, in registration order (the benchmark's order)
METHODS: dict[str, Method] = {}


def register(name: str, *, help: str = "", oracle: bool = False, benchmark: bool = True, default: bool = True,
             uses_checkpoints: bool = False):
    """Decorator: register ``build(ctx) -> Separator`` under ``name`` (replacing any).
    ``uses_checkpoints``: the builder reads the checkpoints folder (``ctx.checkpoints``)."""
    def decorator(build: Callable[[MethodContext], object]):
        METHODS[name] = Method(name, build, help, oracle, benchmark, default, uses_checkpoints=uses_checkpoints)
        return build
    return decorator


def register_checkpoint(name: str, filename: str, *, help: str = "", default: bool = True) -> None:
    """Register a trained separator stored as ``filename`` in the checkpoints folder
    (``ctx.checkpoints``; checked against the priors there, see
    :func:`separation.checkpoints.load_separator`)."""
    METHODS[name] = Method(name, functools.partial(_named_checkpoint, name, filename),
                           help or f"trained separator {filename}", default=default, checkpoint_file=filename,
                           uses_checkpoints=True)


def get_method(name: str) -> Method:
    method = METHODS.get(name)
    if method is None:
        raise PriorsepError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return method


def build_separator(name: str, ctx: MethodContext):
    """The separator of method ``name`` (a :class:`separation.interface.Separator`, or an
    :class:`~separation.interface.OracleSeparator` for an oracle)."""
    return get_method(name).build(ctx)


def check_methods(names: list[str], ctx: MethodContext) -> None:
    """Before any work: every name is registered, and the checkpoints folder is there when one
    of them reads it (one-line PriorsepError otherwise)."""
    for name in names:
        if get_method(name).uses_checkpoints and not (name == "langevin" and ctx.priors is not None):
            checkpoints_folder(ctx.checkpoints, name)


def benchmark_methods() -> list[str]:
    return [n for n, m in METHODS.items() if m.benchmark]


def default_methods() -> list[str]:
    return [n for n, m in METHODS.items() if m.benchmark and m.default and not m.oracle]


def checkpoint_files() -> dict[str, str]:
    """Named trained separators: method -> file name in the checkpoints folder."""
    return {n: m.checkpoint_file for n, m in METHODS.items() if m.checkpoint_file}


def checkpoints_folder(folder: str | Path | None, name: str) -> Path:
    """``folder`` as a Path; a clear one-line error when it is not given or not there."""
    if folder is None:
        raise PriorsepError(f"method {name!r} needs a checkpoints folder")
    folder = Path(folder)
    if not folder.is_dir():
        where = "" if folder.is_absolute() else f" (relative to the current directory {Path.cwd()})"
        raise PriorsepError(f"{folder}: folder not found{where}; method {name!r} reads its priors or "
                            "separator there")
    return folder


# ---------------------------------------------------------------------------- builders
@register("mixture", help="every source = mixture / K (the SI-SDRi origin)")
def _mixture(ctx: MethodContext):
    from .baselines import MixtureSeparator

    return MixtureSeparator(ctx.sources, ctx.mix_scale)


@register("nmf", help="KL-NMF templates per source learned from isolated training audio")
def _nmf(ctx: MethodContext):
    from .baselines import NMFSeparator

    if ctx.nmf_store is not None and Path(ctx.nmf_store).is_file():
        return NMFSeparator.load(ctx.nmf_store, mix_scale=ctx.mix_scale, seed=ctx.seed)
    if ctx.nmf_train is None:
        where = f" at {ctx.nmf_store}" if ctx.nmf_store is not None else ""
        raise PriorsepError(f"nmf: no stored templates{where} and no training audio to learn them from")
    sep = NMFSeparator(ctx.sources, ctx.sample_rate, ctx.mix_scale, rank=ctx.nmf_rank, seed=ctx.seed,
                       n_fft=ctx.nmf_fft, hop=ctx.nmf_fft // 4, power=ctx.nmf_power)
    sep.fit(ctx.nmf_train())
    if ctx.nmf_store is not None:
        sep.save(ctx.nmf_store)
    return sep


@register("langevin", help="annealed Langevin with the frozen priors", uses_checkpoints=True)
def _langevin(ctx: MethodContext):
    from priors.checkpoint import load_priors
    from priors.noise import check_prior_sigma

    from .langevin import LangevinSeparator

    folder = checkpoints_folder(ctx.priors if ctx.priors is not None else ctx.checkpoints, "langevin")
    priors, metas = load_priors(folder, ctx.device, sources=ctx.sources)
    rate = int(metas[0]["sample_rate"])
    if ctx.sample_rate is not None and rate != int(ctx.sample_rate):
        raise PriorsepError(f"{folder}: priors work at {metas[0]['sample_rate']} Hz, the data is at {ctx.sample_rate} Hz")
    sep = LangevinSeparator(priors, [m["source"] for m in metas], rate, ctx.mix_scale, seed=ctx.seed, **ctx.langevin)
    check_prior_sigma(sep.schedule.sigma_max, metas, "Langevin sigma_max", folder)
    check_prior_sigma(sep.schedule.sigma_min, metas, "Langevin sigma_min", folder)
    return sep


def _named_checkpoint(name: str, filename: str, ctx: MethodContext):
    from .checkpoints import load_separator

    path = checkpoints_folder(ctx.checkpoints, name) / filename
    if not path.is_file():
        raise PriorsepError(f"{path}: no checkpoint for method {name!r} (train it, or leave it out of --methods)")
    return load_separator(path, ctx.device, sources=ctx.sources, priors_dir=ctx.checkpoints,
                          sample_rate=ctx.sample_rate, precision=ctx.precision)


register_checkpoint("variational", "separator_elbo.pt", help="ELBO-trained separator (wake phase)")
register_checkpoint("variational-fast", "separator_elbo_fast.pt", help="the cheaper distilled ELBO separator",
                    default=False)
register_checkpoint("sleep", "separator_sleep.pt", help="separator trained on dreamed pairs")
register_checkpoint("wake-sleep", "separator_wake_sleep.pt", help="ELBO and dreamed pairs")
register_checkpoint("remix", "separator_remix.pt", help="bootstrapped remixing (RemixIT)")
register_checkpoint("supervised", "separator_supervised.pt", help="trained on real pairs: the reference bound")


@register("irm", help="oracle ideal ratio mask from the references (context, not a method)", oracle=True,
          default=False)
def _irm(ctx: MethodContext):
    from .baselines import OracleRatioMask

    return OracleRatioMask(ctx.sources, ctx.mix_scale)


@register("model", help="one separator: a checkpoint file or a named model (ctx.checkpoint)", benchmark=False)
def _model(ctx: MethodContext):
    from .checkpoints import load_separator
    from .models import resolve_model

    if ctx.checkpoint is None:
        raise PriorsepError("method 'model' needs a separator checkpoint file")
    return load_separator(resolve_model(ctx.checkpoint), ctx.device, sources=ctx.sources, priors_dir=ctx.priors,
                          sample_rate=ctx.sample_rate, precision=ctx.precision)


#: method -> separator checkpoint file name in the checkpoints folder
CHECKPOINT_FILES = checkpoint_files()
