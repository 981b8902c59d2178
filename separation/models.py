"""Named, packaged separator models: ``--model toy`` instead of a path.

The registry :data:`MODELS` maps a name to a file shipped inside the package
(``separation/pretrained/``, installed with the wheel) and a one-line description; every
other fact shown by ``priorsep models`` (sources, sample rate, size, training objective) is
read from the checkpoint's own metadata. Adding a model is one entry::

    MODELS["chorales"] = Model("chorales.pt", "variational separator of the Bach chorale stems …")

plus the file ``separation/pretrained/chorales.pt`` (``pyproject.toml`` packages every
``separation/pretrained/*.pt``). Names resolve independently of the working directory.

:func:`resolve_model` turns a name or a filesystem path into a file; :func:`load_separator`
loads it. :func:`repository_path` resolves the repository's cwd-relative default folders
(``checkpoints/toy``) for commands run outside the checkout.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import PriorsepError

#: the folder of the packaged model files
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
#: the repository checkout this package was imported from, when it was (an editable install
#: or a run from the checkout); None for an installed wheel
_ROOT = Path(__file__).resolve().parents[1]
REPOSITORY_ROOT = _ROOT if (_ROOT / "pyproject.toml").is_file() and (_ROOT / "separation").is_dir() else None


@dataclass(frozen=True)
class Model:
    """A packaged separator: ``file`` relative to :data:`PRETRAINED_DIR`, ``description`` one line."""

    file: str
    description: str

    @property
    def path(self) -> Path:
        return PRETRAINED_DIR / self.file


#: name -> packaged model (the first one is the default)
MODELS: dict[str, Model] = {
    "toy": Model("toy.pt", "variational (ELBO) separator of the synthetic toy set: sin, square, saw and "
                           "triangle waves, mono at 14 700 Hz (the repository's checkpoints/toy_gpu/separator_elbo.pt)"),
    "toy-fast": Model("toy-fast.pt", "toy pruned to half its gated units and distilled from it on toy mixtures: "
                                     "about 2x faster (the repository's checkpoints/toy_gpu/separator_elbo_fast.pt)"),
    "chorales": Model("chorales.pt", "mask separator (4096-point STFT) of rendered Bach chorales: violin, clarinet, "
                                     "tenor saxophone and bassoon, mono at 22 050 Hz; unsupervised: taught on real "
                                     "mixtures by template NMF (templates from isolated stems, Wiener masks), remixed "
                                     "then distilled (the repository's "
                                     "checkpoints/chorales_frame/separator_mask4096_distil_nmf4096.pt)"),
}
DEFAULT_MODEL = "toy"

#: the toy set's sources and sample rate (as in ``priors.data``, which imports Lightning)
TOY_SOURCES = ("sin", "square", "saw", "triangle")
TOY_SAMPLE_RATE = 14_700


def resolve_model(name_or_path: str | Path) -> Path:
    """The file of a registered model name (``toy``) or an existing path (``runs/sep.pt``).

    Raises :class:`PriorsepError` (one line, listing the names) for anything else."""
    key = str(name_or_path)
    if key in MODELS:
        path = MODELS[key].path
        if not path.is_file():
            raise PriorsepError(f"model {key!r}: its file {path} is missing from the installation")
        return path
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    looks_like_path = path.suffix in (".pt", ".ckpt") or "/" in key or "\\" in key
    what = f"{key}: checkpoint not found" if looks_like_path else f"unknown model {key!r}"
    raise PriorsepError(f"{what}; pass a separator checkpoint file or one of the models "
                        f"{', '.join(MODELS)} (see `priorsep models`)")


def load_separator(name_or_path: str | Path = DEFAULT_MODEL, device="cpu", precision: str = "fp32", **checks):
    """A ready-to-use separator from a model name or a checkpoint path: a torch module mapping
    mixtures (batch, time) at ``.sample_rate`` to estimates (batch, K, time), with ``.sources``
    and ``.meta``. ``checks``: ``sources``, ``sample_rate``, ``priors_dir`` of
    :func:`separation.checkpoints.load_separator`."""
    from .checkpoints import load_separator as load

    return load(resolve_model(name_or_path), device, precision=precision, **checks)


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float, device: str, precision: str):
    return load_separator(path, device, precision)


def cached_separator(name_or_path: str | Path, device="cpu", precision: str = "fp32"):
    """:func:`load_separator`, memoised per file (and its modification time), device and precision."""
    path = resolve_model(name_or_path).resolve()
    return _cached(str(path), path.stat().st_mtime, str(device), precision)


def describe_model(name_or_path: str | Path) -> dict:
    """What ``priorsep models`` shows, from the checkpoint's metadata: name, file, description,
    sources, sample_rate, objective, supervised (objective ``supervised``: trained on
    (mixture, sources) pairs; every other objective saw mixtures and the priors only), size in
    bytes and the number of parameters."""
    import torch

    from .checkpoints import split_separator_checkpoint

    path = resolve_model(name_or_path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise PriorsepError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    parts = split_separator_checkpoint(ckpt)
    if parts is None:
        raise PriorsepError(f"{path}: not a separator checkpoint")
    meta, state = parts  # a Lightning checkpoint: the encoder's weights only
    name = str(name_or_path) if str(name_or_path) in MODELS else None
    objective = meta.get("objective", "unknown")
    return {"name": name, "file": str(path), "description": MODELS[name].description if name else "",
            "sources": list(meta["sources"]), "sample_rate": int(meta["sample_rate"]), "objective": objective,
            "supervised": objective == "supervised", "size_bytes": path.stat().st_size,
            "parameters": int(sum(v.numel() for v in state.values() if hasattr(v, "numel")))}


def repository_path(path: str | Path, flag: str = "") -> Path:
    """A folder argument whose default is relative to the repository (``checkpoints/toy``):
    the path itself when it exists (absolute, or relative to the working directory), else the
    same relative path inside the repository checkout this package runs from; else a one-line
    :class:`PriorsepError` (an installed wheel ships the named models only)."""
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute():
        return p
    if REPOSITORY_ROOT is not None and (REPOSITORY_ROOT / p).exists():
        return REPOSITORY_ROOT / p
    where = f"the working directory or the repository checkout {REPOSITORY_ROOT}" if REPOSITORY_ROOT else \
        "the working directory (this installation has no repository checkout; the wheel ships the named models only)"
    raise PriorsepError(f"{path}: not found in {where}" + (f"; pass {flag} DIR" if flag else ""))


class ToyModelWarning(UserWarning):
    """A toy-set model is applied to audio that is not from the toy set."""


def is_toy_separator(separator) -> bool:
    return tuple(getattr(separator, "sources", ())) == TOY_SOURCES


def toy_mismatch(separator, shape: tuple[int, ...], sample_rate: int) -> str | None:
    """Why audio of ``shape`` ((time,) or (channels, time)) at ``sample_rate`` is not from the
    toy set, when ``separator`` is a toy-set model; None otherwise.

    The heuristic: the toy set is mono at 14 700 Hz, so any other rate or more than one
    channel is real-world audio, which a model of sine/square/saw/triangle waves cannot
    separate meaningfully."""
    if not is_toy_separator(separator):
        return None
    channels = 1 if len(shape) == 1 else int(shape[0])
    reasons = []
    if int(sample_rate) != TOY_SAMPLE_RATE:
        reasons.append(f"{int(sample_rate)} Hz")
    if channels > 1:
        reasons.append(f"{channels} channels")
    return ", ".join(reasons) or None


def toy_warning(what: str, reason: str, how: str = "--model NAME") -> str:
    """The one-line warning about toy models on non-toy audio; ``how``: the way to pick another
    model (``--model NAME`` on the command line, ``model="NAME"`` in Python)."""
    return (f"{what} ({reason}) is not from the toy set (mono, {TOY_SAMPLE_RATE} Hz), but the model separates "
            f"the toy sources {'/'.join(TOY_SOURCES)}; pick another model with {how} or a checkpoint path "
            f"(list them: `priorsep models`)")


def warn_toy_mismatch(separator, shape, sample_rate, what: str = "the audio", how: str = 'model="NAME"',
                      stacklevel: int = 3) -> None:
    """Warn (:class:`ToyModelWarning`, one line) when :func:`toy_mismatch` finds a reason."""
    reason = toy_mismatch(separator, shape, sample_rate)
    if reason:
        warnings.warn(toy_warning(what, reason, how), ToyModelWarning, stacklevel=stacklevel)
