"""PNG figures: cross-likelihood heatmaps, samples vs real, spectrograms, benchmark bars."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_name(f".{Path(path).stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    tmp.replace(path)
    _plt().close(fig)


def plot_cross_likelihood(path, priors: list[str], columns: list[str], sigmas, loglik) -> None:
    """One heatmap per σ of loglik[σ][prior][column] (nats/sample)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(sigmas), figsize=(4.2 * len(sigmas), 3.6), squeeze=False)
    for ax, sigma, mat in zip(axes[0], sigmas, loglik):
        m = np.asarray(mat)
        im = ax.imshow(m, cmap="viridis", vmin=np.percentile(m, 10), vmax=m.max())
        ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
        ax.set_yticks(range(len(priors)), priors)
        ax.set_title(f"σ = {sigma:g}")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle("mean log-likelihood (nats/sample): rows = prior, columns = data")
    _save(fig, path)


def plot_samples(path, generated: dict, real: dict, sample_rate: int, samples: int = 600) -> None:
    """Waveform snippets: each prior's samples (left) next to real examples (right)."""
    plt = _plt()
    names = list(generated)
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 1.8 * len(names)), squeeze=False)
    samples = min(samples, min(d.shape[-1] for d in (*generated.values(), *real.values())))
    t = np.arange(samples) / sample_rate * 1000
    for i, s in enumerate(names):
        for j, (label, data) in enumerate((("generated", generated[s]), ("real", real[s]))):
            for row in data:
                axes[i, j].plot(t, row[-samples:].numpy(), lw=0.8)
            axes[i, j].set_title(f"{s}: {label}", fontsize=9)
            axes[i, j].set_ylim(-1.1, 1.1)
    axes[-1, 0].set_xlabel("ms")
    axes[-1, 1].set_xlabel("ms")
    fig.tight_layout()
    _save(fig, path)


def plot_spectrograms(path, signals: dict, sample_rate: int, n_fft: int = 1024) -> None:
    """Log-magnitude spectrograms of named mono signals (time,), one row each."""
    import torch

    plt = _plt()
    fig, axes = plt.subplots(len(signals), 1, figsize=(9, 1.6 * len(signals)), squeeze=False)
    for ax, (name, x) in zip(axes[:, 0], signals.items()):
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        spec = torch.stft(x, n_fft, n_fft // 4, window=torch.hann_window(n_fft), return_complex=True).abs()
        db = 20 * torch.log10(spec + 1e-5)
        ax.imshow(db.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=float(db.max()) - 80,
                  extent=[0, len(x) / sample_rate, 0, sample_rate / 2000])
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9)
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    _save(fig, path)


def plot_benchmark(path, table: dict, sources: list[str]) -> None:
    """Grouped bars of SI-SDRi (dB) per method and source; table[method][source|'mean']."""
    plt = _plt()
    methods = list(table)
    cols = [*sources, "mean"]
    fig, ax = plt.subplots(figsize=(1.2 + 1.3 * len(cols), 3.5))
    width = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        ax.bar(np.arange(len(cols)) + i * width, [table[m][c] for c in cols], width, label=m)
    ax.set_xticks(np.arange(len(cols)) + 0.4 - width / 2, cols)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("SI-SDRi (dB)")
    ax.legend(fontsize=8)
    _save(fig, path)
