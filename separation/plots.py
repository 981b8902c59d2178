"""PNG figures: cross-likelihood heatmaps, samples vs real, spectrograms, benchmark bars."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    from priors.figures import pyplot

    return pyplot()


def _save(fig, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_name(f".{Path(path).stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    tmp.replace(path)
    _plt().close(fig)


def plot_cross_likelihood(path, priors: list[str], columns: list[str], sigmas, loglik) -> None:
    """One heatmap per σ of loglik[σ][prior][column] (nats/sample)."""
    from priors.figures import cross_likelihood_figure

    _save(cross_likelihood_figure(priors, columns, sigmas, loglik), path)


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
    from priors.figures import spectrogram_figure

    _save(spectrogram_figure(signals, sample_rate, n_fft), path)


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
