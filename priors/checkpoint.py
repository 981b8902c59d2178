"""Self-describing prior checkpoints: compact weights-only files and Lightning ``.ckpt``.

A compact file (``.pt``) is a dict::

    {"format": "priorsep-prior/1", "source": str, "sample_rate": int,
     "class_path": "priors.wavenet.WaveNet", "init_args": {...}, "noise": {...},
     "version": str, "state_dict": {...}}

A Lightning checkpoint of :class:`priors.module.SourcePrior` carries the same description
under ``checkpoint["priorsep"]`` and the weights under ``model.*`` in its state dict.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

FORMAT = "priorsep-prior/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, of the wrong kind, or does not match the request."""


def package_version() -> str:
    try:
        return metadata.version("priorsep")
    except metadata.PackageNotFoundError:
        return "unknown"


def describe_prior(model: nn.Module, source: str, sample_rate: int, noise=None) -> dict:
    """The metadata stored beside a prior's weights."""
    if not hasattr(model, "init_args"):
        raise TypeError(f"{type(model).__name__} does not record its init args (use RecordsInitArgs)")
    return {"format": FORMAT, "source": source, "sample_rate": int(sample_rate),
            "class_path": model.class_path, "init_args": dict(model.init_args),
            "noise": noise.as_dict() if noise is not None else None, "version": package_version()}


def build_model(class_path: str, init_args: dict) -> nn.Module:
    module_name, _, class_name = class_path.rpartition(".")
    if not module_name.startswith("priors."):
        raise CheckpointError(f"refusing to build {class_path!r}: not a priorsep prior")
    return getattr(importlib.import_module(module_name), class_name)(**init_args)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for corrupt files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None


def load_prior(path: str | Path, device="cpu") -> tuple[nn.Module, dict]:
    """Rebuild a prior from a compact ``.pt`` or a Lightning ``.ckpt``: (model in eval mode on the
    ``device``, meta)."""
    path = Path(path)
    ckpt = _read(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a priorsep checkpoint")
    if ckpt.get("format") == FORMAT:
        meta, state = {k: v for k, v in ckpt.items() if k != "state_dict"}, ckpt["state_dict"]
    elif isinstance(ckpt.get("priorsep"), dict) and ckpt["priorsep"].get("format") == FORMAT:
        meta = ckpt["priorsep"]
        state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    else:
        kind = ckpt.get("priorsep", {}).get("format") or ckpt.get("format") or "unknown"
        raise CheckpointError(f"{path}: not a prior checkpoint (format {kind})")
    model = build_model(meta["class_path"], meta["init_args"])
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit {meta['class_path']} ({str(err).splitlines()[0]})") from None
    return model.to(device).eval(), meta


def copy_prior_weights(path: str | Path, model: nn.Module) -> dict:
    """Load a prior checkpoint's weights into ``model`` (fine-tuning); returns its meta.

    Refuses a checkpoint of another class or other constructor arguments. Arguments added to the
    class after the checkpoint was written count at their defaults (as when it is loaded)."""
    source, meta = load_prior(path)
    mine = describe_prior(model, meta["source"], meta["sample_rate"])
    theirs = describe_prior(source, meta["source"], meta["sample_rate"])
    if (mine["class_path"], mine["init_args"]) != (theirs["class_path"], theirs["init_args"]):
        raise CheckpointError(f"{path}: {theirs['class_path']}({theirs['init_args']}) does not match the model "
                              f"{mine['class_path']}({mine['init_args']})")
    model.load_state_dict(source.state_dict())
    return meta


def save_prior(path: str | Path, model: nn.Module, meta: dict, half: bool = False) -> None:
    """Write a compact weights-only checkpoint (atomically: temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v.float() if v.is_floating_point() else v)
             for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save({**meta, "state_dict": state}, tmp)
    tmp.replace(path)


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (first 16 hex digits): identifies the exact prior weights."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def read_manifest(directory: str | Path) -> dict:
    """A priors directory's ``manifest.json`` (``sources``, ``sample_rate``, optional
    ``background`` and ``ratio``), or {} where it has none."""
    manifest = Path(directory) / "manifest.json"
    return json.loads(manifest.read_text()) if manifest.is_file() else {}


def prior_files(directory: str | Path, sources: list[str] | None = None) -> list[Path]:
    """The prior checkpoints of a directory in source order: ``manifest.json``'s ``sources``
    when present, else the given ``sources``, as files ``<source>.pt`` (or ``.ckpt``); with
    neither, every ``*.pt`` except ``separator*.pt``, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory of priors")
    names = read_manifest(directory).get("sources", sources)
    if names is not None:
        files = []
        for name in names:
            hits = [directory / f"{name}{ext}" for ext in (".pt", ".ckpt") if (directory / f"{name}{ext}").is_file()]
            if not hits:
                raise CheckpointError(f"{directory}: no prior checkpoint {name}.pt for source {name!r}")
            files.append(hits[0])
        return files
    files = sorted(f for f in directory.glob("*.pt") if not f.name.startswith("separator"))
    if not files:
        raise CheckpointError(f"{directory}: no prior checkpoints (*.pt)")
    return files


def background_file(directory: str | Path, manifest: dict | None = None) -> Path | None:
    """The background prior named by ``manifest.json`` (key ``background``), or None;
    ``manifest``: the directory's, if already read."""
    name = (read_manifest(directory) if manifest is None else manifest).get("background")
    if name is None:
        return None
    path = Path(directory) / name
    if not path.is_file():
        raise CheckpointError(f"{directory}: manifest names background {name!r}, which is missing")
    return path


def load_priors(directory: str | Path, device="cpu", sources: list[str] | None = None, ratio: bool = True):
    """Load every prior of a directory: (list of models, list of metas), in source order.

    With ``sources`` given, refuses a directory whose source set differs. Where the manifest
    names a ``background`` prior and ``ratio`` is true, every prior comes wrapped in
    :class:`priors.likelihood_ratio.LikelihoodRatio` (it scores log p_k − log p_bg; bounded
    where the manifest says ``"ratio": "bounded"``) and its meta gains ``background_hash``;
    ``ratio=False`` loads the source priors alone.
    """
    models, metas = [], []
    for f in prior_files(directory, sources):
        m, meta = load_prior(f, device)
        meta["hash"] = file_hash(f)
        models.append(m)
        metas.append(meta)
    found = [m["source"] for m in metas]
    if sources is not None and list(sources) != found:
        raise CheckpointError(f"{directory}: priors are for {found}, expected {list(sources)}")
    rates = {m["sample_rate"] for m in metas}
    manifest = read_manifest(directory)
    background = background_file(directory, manifest) if ratio else None
    if background is not None:
        from .likelihood_ratio import LikelihoodRatio

        bg, bg_meta = load_prior(background, device)
        rates.add(bg_meta["sample_rate"])
        models = [LikelihoodRatio(m, bg, manifest.get("ratio") == "bounded") for m in models]
        bg_hash = file_hash(background)
        for meta in metas:
            meta["background_hash"] = bg_hash
    if len(rates) > 1:
        raise CheckpointError(f"{directory}: priors disagree on the sample rate ({sorted(rates)})")
    return models, metas


def write_manifest(directory: str | Path, sources: list[str], sample_rate: int, background: str | None = None,
                   bounded: bool = False) -> None:
    """``manifest.json``: the sources in order, their rate and (optional) the background prior's
    file name and whether its ratio is bounded."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    content = {"sources": list(sources), "sample_rate": sample_rate, **({"background": background} if background else {}),
               **({"ratio": "bounded"} if background and bounded else {})}
    (Path(directory) / "manifest.json").write_text(json.dumps(content, indent=1) + "\n")
