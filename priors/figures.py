"""Matplotlib figures shared by the CLI's PNGs and the experiment logger (headless, Agg)."""
from __future__ import annotations

import numpy as np
import torch


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def spectrogram_figure(signals: dict, sample_rate: int, n_fft: int = 1024):
    """Log-magnitude spectrograms (dB) of named mono signals (time,), one row each."""
    plt = pyplot()
    fig, axes = plt.subplots(len(signals), 1, figsize=(9, 1.6 * len(signals)), squeeze=False)
    for ax, (name, x) in zip(axes[:, 0], signals.items()):
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        nfft = min(n_fft, 2 ** int(np.log2(max(2, x.shape[-1]))))
        spec = torch.stft(x, nfft, nfft // 4, window=torch.hann_window(nfft), return_complex=True).abs()
        db = 20 * torch.log10(spec + 1e-5)
        ax.imshow(db.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=float(db.max()) - 80,
                  extent=[0, len(x) / sample_rate, 0, sample_rate / 2000])
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9)
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    return fig


def cross_likelihood_figure(priors: list[str], columns: list[str], sigmas, loglik):
    """One heatmap per σ of loglik[σ][prior][column] (mean nats/sample)."""
    plt = pyplot()
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
    fig.tight_layout()
    return fig
