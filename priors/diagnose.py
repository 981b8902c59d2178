"""Measuring priors: cross-likelihood matrices and statistics of samples vs real data."""
from __future__ import annotations

import math

import torch


@torch.no_grad()
def mean_loglik(prior, x: torch.Tensor, sigma: float, batch_size: int = 16, generator=None,
                add_noise: bool = True) -> float:
    """Mean log-density (nats per sample) of x (n, time) + σ·ε under ``prior`` conditioned on σ.
    ``add_noise=False`` scores x as it is (x is already noisy, e.g. a sample drawn at σ)."""
    total, count = 0.0, 0
    for chunk in x.split(batch_size):
        noisy = chunk + sigma * torch.randn(chunk.shape, generator=generator, device=chunk.device) \
            if sigma > 0 and add_noise else chunk
        lp = prior.log_prob(noisy, torch.full((chunk.shape[0],), float(sigma), device=chunk.device))
        total += lp.sum().item()
        count += lp.numel()
    return total / count


@torch.no_grad()
def cross_likelihood(priors, data: dict[str, torch.Tensor], sigmas, seed: int = 0, batch_size: int = 16,
                     add_noise: bool = True):
    """loglik[s][p][c]: mean nats/sample of column ``c`` of ``data`` under prior ``p`` at σ = sigmas[s].

    ``data`` maps a column name (a source, or an extra such as ``silence``) to crops (n, time).
    The same noise draw is used for every prior (seeded per σ and column); ``add_noise=False``
    scores the crops as they are, conditioned on σ (crops that already carry the noise).
    """
    out = []
    for si, sigma in enumerate(sigmas):
        rows = []
        for prior in priors:
            row = []
            for ci, crops in enumerate(data.values()):
                g = torch.Generator(device=crops.device).manual_seed(seed * 1000 + si * 100 + ci)
                row.append(mean_loglik(prior, crops, float(sigma), batch_size, g, add_noise))
            rows.append(row)
        out.append(rows)
    return out


def ratio_cross_likelihood(priors, data: dict[str, torch.Tensor], sigmas, seed: int = 0, batch_size: int = 16,
                           add_noise: bool = True):
    """``(ratio, raw)`` matrices of :func:`cross_likelihood` for :class:`priors.likelihood_ratio.LikelihoodRatio`
    priors sharing one background: ``raw`` scores each column under each source prior alone,
    ``ratio`` = raw − the background's score of that column. The background scores each column
    once, not once per prior: a ratio's mean over positions is the difference of the means (same
    positions, same noise draw). Bounded ratios are not differences: they are scored as they are.
    """
    background = priors[0].background
    if any(p.background is not background for p in priors) or any(p.bounded for p in priors):
        return (cross_likelihood(priors, data, sigmas, seed, batch_size, add_noise),
                cross_likelihood([p.prior for p in priors], data, sigmas, seed, batch_size, add_noise))
    scored = cross_likelihood([p.prior for p in priors] + [background], data, sigmas, seed, batch_size, add_noise)
    raw = [mat[:-1] for mat in scored]
    ratio = [[[v - b for v, b in zip(row, mat[-1])] for row in mat[:-1]] for mat in scored]
    return ratio, raw


def extra_columns(sources: torch.Tensor, mix_scale: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """Reference signals every prior should score: silence, the mixture, white noise of the
    sources' rms. sources (n, K, time)."""
    g = torch.Generator().manual_seed(seed)
    mix = mix_scale * sources.sum(1)
    rms = sources.pow(2).mean().sqrt()
    return {"silence": torch.zeros_like(mix), "mixture": mix,
            "white_noise": (rms * torch.randn(mix.shape, generator=g)).clamp(-1, 1)}


def autocorrelation_peak(x: torch.Tensor, min_lag: int = 8, max_lag: int | None = None) -> torch.Tensor:
    """Largest normalised autocorrelation r[τ]/r[0] over τ ∈ [min_lag, max_lag], per row of
    x (n, time): ≈ 1 for a periodic signal, ≈ 0 for noise. Excludes lags before the first
    zero crossing of r so that slow signals do not score their own smoothness."""
    n, t = x.shape
    max_lag = max_lag or t // 2
    x = x - x.mean(-1, keepdim=True)
    f = torch.fft.rfft(x, n=2 * t)
    r = torch.fft.irfft(f * f.conj(), n=2 * t)[:, : max_lag + 1]
    r = r / r[:, :1].clamp(min=1e-12)
    peaks = []
    for row in r:
        neg = (row[min_lag:] < 0).nonzero()
        start = min_lag + (int(neg[0]) if len(neg) else 0)
        peaks.append(row[start:].max() if start < len(row) else row.new_tensor(0.0))
    return torch.stack(peaks)


def spectral_centroid(x: torch.Tensor, sample_rate: int, n_fft: int = 1024) -> torch.Tensor:
    """Magnitude-weighted mean frequency in Hz, per row of x (n, time)."""
    n_fft = min(n_fft, 2 ** int(math.log2(x.shape[-1])))
    spec = torch.stft(x, n_fft, n_fft // 4, window=torch.hann_window(n_fft, device=x.device), return_complex=True).abs()
    freqs = torch.linspace(0, sample_rate / 2, spec.shape[1], device=x.device)
    return (spec * freqs[:, None]).sum((1, 2)) / spec.sum((1, 2)).clamp(min=1e-12)


def signal_statistics(x: torch.Tensor, sample_rate: int) -> dict[str, float]:
    """Median over rows of rms, spectral centroid (Hz) and autocorrelation peak; x (n, time)."""
    return {"rms": x.pow(2).mean(-1).sqrt().median().item(),
            "spectral_centroid_hz": spectral_centroid(x, sample_rate).median().item(),
            "autocorrelation_peak": autocorrelation_peak(x).median().item()}


def snr_db(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """10·log10(‖ref‖² / ‖ref − est‖²) per row of (n, time), in dB (no rescaling)."""
    num = reference.pow(2).sum(-1).clamp(min=1e-12)
    return 10 * torch.log10(num / (reference - estimate).pow(2).sum(-1).clamp(min=1e-12))


@torch.no_grad()
def continuation_statistics(prior, crops: torch.Tensor, prefix: int, temperature: float = 0.0,
                            short: int = 64) -> dict[str, float]:
    """Does an autoregressive prior know its source beyond the next sample? Prime it with the
    first ``prefix`` samples of real crops (n, time), let it continue to the crop's end and
    compare with the true continuation: median SNR (dB) over the first ``short`` samples and
    over the whole continuation. A prior that copies a periodic source scores high; one that
    only knows local shape scores ≈ 0 dB or below after a few samples."""
    truth = crops[:, prefix:]
    cont = prior.continue_from(crops[:, :prefix], truth.shape[1], sigma=0.0, temperature=temperature)
    return {"prefix": prefix, "length": truth.shape[1], "temperature": temperature,
            f"snr_db_first_{short}": snr_db(cont[:, :short], truth[:, :short]).median().item(),
            "snr_db": snr_db(cont, truth).median().item()}
