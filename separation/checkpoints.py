"""Self-describing separator checkpoints and the ready-to-use separators built from them.

Compact file (``.pt``)::

    {"format": "priorsep-separator/1", "objective": "sleep", "sources": [...],
     "sample_rate": int, "mix_scale": float, "project": bool, "class_path": ..., "init_args": {...},
     "priors": [{"source": ..., "hash": ...}], "version": str, "state_dict": {...}}

A Lightning ``.ckpt`` of :class:`separation.module.VariationalSeparator` carries the same
description under ``checkpoint["priorsep"]`` (weights under ``encoder.*``).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import nn

from priors.checkpoint import CheckpointError, package_version

from .encoder import project_to_mixture

FORMAT = "priorsep-separator/1"
#: inference precisions of :class:`EncoderSeparator`
PRECISIONS = ("fp32", "bf16")


def describe_separator(module) -> dict:
    h = module.hparams
    enc = module.encoder
    return {"format": FORMAT, "objective": h.objective, "sources": list(module.sources),
            "sample_rate": int(h.sample_rate), "mix_scale": float(h.mix_scale), "project": bool(h.project),
            "class_path": enc.class_path, "init_args": dict(enc.init_args),
            "priors": [{"source": m["source"], "hash": m.get("hash")} for m in module.prior_metas],
            **({"background_hash": module.prior_metas[0]["background_hash"]}
               if module.prior_metas and "background_hash" in module.prior_metas[0] else {}),
            "version": package_version()}


class EncoderSeparator(nn.Module):
    """A trained encoder as a :class:`separation.interface.Separator`: mixture (batch, time)
    -> posterior mean (batch, K, time), projected onto the mixture when trained so.

    On the CPU the batch is run one mixture at a time (the encoder treats examples
    independently; the activations of a whole batch overflow the caches), in as many parallel
    single-threaded streams as torch has intra-op threads. The 64-channel toy encoder on 2
    cores: 0.57 → 0.29 s per audio second on the toy benchmark (batches of 16 × 16 384) one
    mixture at a time, the same estimates up to float rounding; ``results/probes/enc_speed.py``
    times batch shapes.

    ``precision="bf16"``: the encoder runs under bfloat16 autocast (the projection and the
    output stay float32) — ≈ 1.3–2× faster on CPUs with AVX512-BF16 (or a GPU); the shipped
    toy separator's SI-SDRi moves by ≈ 0.02 dB (the README's measurement)."""

    def __init__(self, encoder: nn.Module, meta: dict, precision: str = "fp32"):
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.encoder = encoder.eval()
        self.meta = meta
        self.precision = precision
        self.sources = list(meta["sources"])
        self.sample_rate = int(meta["sample_rate"])
        self.mix_scale = float(meta["mix_scale"])

    @torch.no_grad()
    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        if mix.device.type == "cpu" and mix.shape[0] > 1:
            return torch.cat(self._per_item(mix.split(1)))
        with torch.autocast(mix.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            mu, _ = self.encoder(mix)
        mu = mu.float()
        return project_to_mixture(mu, mix, self.mix_scale) if self.meta.get("project", True) else mu

    def _per_item(self, items: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """CPU: the mixtures (1, time) of a batch in parallel single-threaded streams, one per
        intra-op thread (the ops release the GIL; the streams do not synchronise per op)."""
        threads = min(torch.get_num_threads(), len(items))
        if threads < 2:
            return [self(m) for m in items]

        def one(m: torch.Tensor) -> torch.Tensor:
            torch.set_num_threads(1)  # this worker thread only
            return self(m)

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, items))


def save_separator(path: str | Path, encoder: nn.Module, meta: dict, half: bool = False) -> None:
    """Write a compact weights-only separator checkpoint (atomically); ``half``: float16 weights
    (half the size; loaded back into a float32 network)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.half() if half else v.float() for k, v in encoder.state_dict().items()}
    torch.save({**meta, "state_dict": state}, tmp)
    tmp.replace(path)


def split_separator_checkpoint(ckpt) -> tuple[dict, dict] | None:
    """(meta, encoder state_dict) of a loaded separator checkpoint, compact (``.pt``) or Lightning
    (``.ckpt``: the ``encoder.*`` weights, prefix removed); None for anything else."""
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        return {k: v for k, v in ckpt.items() if k != "state_dict"}, ckpt["state_dict"]
    if isinstance(ckpt, dict) and isinstance(ckpt.get("priorsep"), dict) and ckpt["priorsep"].get("format") == FORMAT:
        state = {k[len("encoder."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}
        return ckpt["priorsep"], state
    return None


def load_separator(path: str | Path, device="cpu", sources: list[str] | None = None,
                   priors_dir: str | Path | None = None, sample_rate: int | None = None,
                   precision: str = "fp32") -> EncoderSeparator:
    """Rebuild a separator from a compact ``.pt`` or a Lightning ``.ckpt``.

    Refuses (CheckpointError, one line) a file that is missing, corrupt, not a separator,
    trained for other ``sources`` or another ``sample_rate``, or — with ``priors_dir`` — trained
    against other priors. A ``supervised`` separator is exempt from the last check: it learned
    from (mixture, sources) pairs and the priors never entered its loss, so it may sit beside
    any priors for the same sources. ``precision``: see :class:`EncoderSeparator`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    parts = split_separator_checkpoint(ckpt)
    if parts is not None:
        meta, state = parts
    else:
        found = (ckpt.get("format") or ckpt.get("priorsep", {}).get("format")) if isinstance(ckpt, dict) else None
        raise CheckpointError(f"{path}: not a separator checkpoint (format {found or 'unknown'})")
    if sample_rate is not None and int(meta["sample_rate"]) != int(sample_rate):
        raise CheckpointError(f"{path}: separator works at {meta['sample_rate']} Hz, the data is at {sample_rate} Hz")
    if sources is not None and list(sources) != list(meta["sources"]):
        raise CheckpointError(f"{path}: separator is for {meta['sources']}, expected {list(sources)}")
    if priors_dir is not None and meta.get("priors") and meta.get("objective") != "supervised":
        from priors.checkpoint import file_hash, prior_files

        now = {f.stem: file_hash(f) for f in prior_files(priors_dir, list(meta["sources"]))}
        changed = [p["source"] for p in meta["priors"] if p.get("hash") and now.get(p["source"]) != p["hash"]]
        if changed:
            raise CheckpointError(f"{path}: trained against other priors than {priors_dir} ({', '.join(changed)} changed)")
        if meta.get("background_hash"):  # scored as likelihood ratios: the background counts too
            from priors.checkpoint import background_file

            background = background_file(priors_dir)
            if background is None or file_hash(background) != meta["background_hash"]:
                raise CheckpointError(f"{path}: trained against other priors than {priors_dir} (the background prior changed)")
    if not meta["class_path"].startswith("separation."):
        raise CheckpointError(f"{path}: refusing to build {meta['class_path']!r}")
    import importlib

    mod, _, name = meta["class_path"].rpartition(".")
    encoder = getattr(importlib.import_module(mod), name)(**meta["init_args"])
    try:
        encoder.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit {meta['class_path']} ({str(err).splitlines()[0]})") from None
    return EncoderSeparator(encoder, meta, precision).to(device)
