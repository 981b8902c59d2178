"""Reference separators that give the learned ones context: the mixture itself, NMF with
per-source templates (and its stored templates), and the oracle ideal ratio mask. (The
supervised bound is the variational separator's encoder trained on real pairs:
``configs/separation/toy_supervised.yaml``.) All are :class:`separation.interface.Separator`
objects; ``separation.methods`` registers them by name."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from priors.spectral import istft as _istft
from priors.spectral import stft as _stft


def nmf_kl(v: torch.Tensor, rank: int, n_iter: int = 200, templates: torch.Tensor | None = None,
           seed: int = 0, eps: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """KL-divergence NMF by multiplicative updates: v (F, N) ≈ W (F, R) @ H (R, N).

    With ``templates`` given, W is fixed to them and only H is learned. Returns (W, H).
    """
    g = torch.Generator().manual_seed(seed)
    f, n = v.shape
    w = templates if templates is not None else torch.rand(f, rank, generator=g, dtype=v.dtype) + 0.1
    h = torch.rand(w.shape[1], n, generator=g, dtype=v.dtype) + 0.1
    for _ in range(n_iter):
        h = h * (w.T @ (v / (w @ h + eps))) / (w.sum(0)[:, None] + eps)
        if templates is None:
            w = w * ((v / (w @ h + eps)) @ h.T) / (h.sum(1)[None, :] + eps)
            scale = w.sum(0, keepdim=True) + eps
            w, h = w / scale, h * scale.T
    return w, h


class NMFSeparator(nn.Module):
    """Per-source spectral templates learned by KL-NMF from isolated training audio, then
    activations fitted to each mixture with the templates fixed; soft (Wiener-like) masks
    on the mixture STFT, mixture phase (``power`` p: mask_k = V_k^p / Σ_j V_j^p for the model
    magnitudes V_k = W_k H_k; 1 is the ratio of magnitudes, 2 the Wiener filter of the model's
    power spectra). ``fit`` (or ``load``) first; then mix (batch, time) ->
    (batch, K, time), computed on the CPU in float64 whatever the mixture's device (returned there).
    ``save``/``load``: the templates and settings in a ``torch.save`` file."""

    def __init__(self, sources: Sequence[str], sample_rate: int, mix_scale: float = 1.0, rank: int = 32,
                 n_fft: int = 1024, hop: int = 256, n_iter: int = 200, seed: int = 0, power: float = 1.0):
        super().__init__()
        self.sources, self.sample_rate, self.mix_scale = list(sources), sample_rate, mix_scale
        self.rank, self.n_fft, self.hop, self.n_iter, self.seed = rank, n_fft, hop, n_iter, seed
        self.power = power
        self.register_buffer("templates", torch.empty(0))

    def fit(self, isolated: Sequence[torch.Tensor]) -> "NMFSeparator":
        """isolated[k]: (n, time) training audio of source k only."""
        ws = []
        for k, x in enumerate(isolated):
            v = _stft(x.double(), self.n_fft, self.hop).abs()  # (n, F, N)
            v = v.permute(1, 0, 2).reshape(v.shape[1], -1)
            w, _ = nmf_kl(v, self.rank, self.n_iter, seed=self.seed + k)
            ws.append(w)
        self.templates = torch.cat(ws, dim=1)
        return self

    def save(self, path: str | Path, **extra) -> None:
        """Write the fitted templates and the settings (plus ``extra`` entries, e.g. how many
        training crops each source had) to ``path``, atomically."""
        if self.templates.numel() == 0:
            raise RuntimeError("NMFSeparator.fit must be called before save")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save({"sources": self.sources, "sample_rate": self.sample_rate, "rank": self.rank,
                    "templates": self.templates, "n_fft": self.n_fft, "hop": self.hop, "n_iter": self.n_iter,
                    "power": self.power, **extra}, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path, mix_scale: float = 1.0, seed: int = 0) -> "NMFSeparator":
        """A separator with the templates :meth:`save` wrote (the mixture scale and the seed of
        the activations are the caller's)."""
        stored = torch.load(path, map_location="cpu")
        sep = cls(stored["sources"], stored["sample_rate"], mix_scale, rank=stored["rank"],
                  n_fft=stored.get("n_fft", 1024), hop=stored.get("hop", 256), n_iter=stored.get("n_iter", 200),
                  seed=seed, power=stored.get("power", 1.0))
        sep.templates = stored["templates"]
        return sep

    @torch.no_grad()
    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        if self.templates.numel() == 0:
            raise RuntimeError("NMFSeparator.fit must be called first")
        templates = self.templates.cpu()
        spec = _stft(mix.cpu().double(), self.n_fft, self.hop)  # (B, F, N)
        out = []
        for b in range(mix.shape[0]):
            _, h = nmf_kl(spec[b].abs(), templates.shape[1], self.n_iter, templates=templates, seed=self.seed)
            parts = torch.stack([templates[:, k * self.rank:(k + 1) * self.rank] @ h[k * self.rank:(k + 1) * self.rank]
                                 for k in range(len(self.sources))])
            parts = parts ** self.power
            masks = parts / parts.sum(0, keepdim=True).clamp(min=1e-10 ** self.power)
            out.append(_istft(masks * spec[b], self.n_fft, self.hop, mix.shape[-1]))
        return (torch.stack(out) / self.mix_scale).to(mix.dtype).to(mix.device)


def oracle_ratio_mask(mix: torch.Tensor, sources: torch.Tensor, mix_scale: float = 1.0, power: float = 2.0,
                      n_fft: int = 2048, hop: int = 512) -> torch.Tensor:
    """Ideal ratio mask |S_k|^p / Σ_j |S_j|^p applied to the mixture STFT (IRM2 for p = 2).
    mix (batch, time), sources (batch, K, time) -> (batch, K, time) float32, divided by
    ``mix_scale`` (source units). Needs the references: an oracle, for context only.

    Computed in float32, one batch row and one source at a time (the inputs may be float64
    views of whole recordings: only one row's spectrograms are held in memory)."""
    n, k, length = sources.shape
    out = torch.empty((n, k, length), dtype=torch.float32, device=mix.device)
    for b in range(n):
        p = [_stft(sources[b, j].to(torch.float32), n_fft, hop).abs() ** power for j in range(k)]
        total = torch.stack(p).sum(0).clamp(min=1e-12)
        m = _stft(mix[b].to(torch.float32), n_fft, hop)
        for j in range(k):
            out[b, j] = _istft(p[j] / total * m, n_fft, hop, length)
            p[j] = None
    return out / mix_scale


class MixtureSeparator:
    """The trivial estimate: every source = mixture / (K · mix_scale), in the mixture's dtype.
    Works at any rate and length (``sample_rate`` None: apply it to whole recordings)."""

    sample_rate = None
    needs_references = False

    def __init__(self, sources: Sequence[str], mix_scale: float = 1.0):
        self.sources, self.mix_scale = list(sources), mix_scale

    def __call__(self, mix: torch.Tensor) -> torch.Tensor:
        k = len(self.sources)
        return mix.unsqueeze(1).repeat(1, k, 1) / (k * self.mix_scale)


class OracleRatioMask:
    """:func:`oracle_ratio_mask` as a separator that reads the references (an
    :class:`separation.interface.OracleSeparator`): ``(mix (batch, time), references (batch, K,
    time)) -> (batch, K, time)``, the sources in the references' order. Any rate and length."""

    sample_rate = None
    needs_references = True

    def __init__(self, sources: Sequence[str] | None = None, mix_scale: float = 1.0, power: float = 2.0,
                 n_fft: int = 2048, hop: int = 512):
        self.sources = list(sources or [])
        self.mix_scale, self.power, self.n_fft, self.hop = mix_scale, power, n_fft, hop

    def __call__(self, mix: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        return oracle_ratio_mask(mix, references, self.mix_scale, self.power, self.n_fft, self.hop)
