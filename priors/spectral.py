"""Time-frequency front-end shared by the frame priors, the mask separator and the NMF / ratio-mask
baselines.

``stft``/``istft`` wrap :func:`torch.stft` with a float32 Hann window (``center=True``): a signal of
``T`` samples gives ``T // hop + 1`` frames; float32 and float64 signals keep their precision,
others (bfloat16, float16) are computed in float32. :class:`LogMel` turns waveforms (batch, time)
into log-mel frames (batch, n_mels, frames), in log units of the mel-weighted STFT magnitude
(magnitudes divided by the window sum, so a full-scale sine peaks near 0.5 before the log).
"""
from __future__ import annotations

import torch
from torch import nn


def _window(n_fft: int, ref: torch.Tensor) -> torch.Tensor:
    return torch.hann_window(n_fft, device=ref.device)


def stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """x (..., time) -> complex spectrum (..., n_fft // 2 + 1, time // hop + 1)."""
    shape = x.shape
    flat = x.reshape(-1, shape[-1])
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()
    spec = torch.stft(flat, n_fft, hop, window=_window(n_fft, x), return_complex=True)
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`: complex (..., bins, frames) -> (..., length)."""
    shape = spec.shape
    x = torch.istft(spec.reshape(-1, *shape[-2:]), n_fft, hop, window=_window(n_fft, spec), length=length)
    return x.reshape(*shape[:-2], length)


class LogMel(nn.Module):
    """Waveform (batch, time) or magnitude (batch, bins, frames) -> log-mel (batch, n_mels, frames).

    ``floor`` bounds the log from below (silence maps to log(floor)); the mel filterbank is
    librosa's (Slaney), a fixed buffer, so the map is differentiable in the input."""

    def __init__(self, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 128,
                 floor: float = 1e-4):
        super().__init__()
        import librosa

        self.n_fft, self.hop, self.floor = n_fft, hop, floor
        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
        self.register_buffer("filterbank", torch.from_numpy(fb).float(), persistent=False)
        self.scale = 2.0 / _window(n_fft, torch.zeros(1)).sum().item()

    def magnitude(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, time) -> |STFT| (batch, bins, frames), window-sum normalised."""
        return stft(x, self.n_fft, self.hop).abs() * self.scale

    def from_magnitude(self, mag: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.einsum("mf,...fn->...mn", self.filterbank, mag) + self.floor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_magnitude(self.magnitude(x))

    def mel_magnitude(self, logmel: torch.Tensor) -> torch.Tensor:
        """The mel-weighted magnitudes behind log-mel frames: exp(logmel) − floor, clamped at 0
        (silence and anything drawn below the floor give 0); same shape."""
        return (logmel.exp() - self.floor).clamp_min(0)

    def centroid_hz(self, logmel: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Energy-weighted mean mel-band centre frequency (Hz) per example: logmel (batch, n_mels, frames) -> (batch,)."""
        import librosa

        centres = torch.as_tensor(librosa.mel_frequencies(self.filterbank.shape[0] + 2, fmax=sample_rate / 2)[1:-1],
                                  dtype=logmel.dtype, device=logmel.device)
        energy = self.mel_magnitude(logmel)
        return (energy * centres[:, None]).sum((1, 2)) / energy.sum((1, 2)).clamp_min(1e-12)

    def long_term_power(self, logmel: torch.Tensor) -> torch.Tensor:
        """The long-term average power spectrum: log-mel (batch, n_mels, frames) -> (n_mels,),
        the mean over crops and frames of each band's squared mel magnitude (floor removed)."""
        return self.mel_magnitude(logmel).pow(2).mean((0, 2))

    def to_magnitude(self, logmel: torch.Tensor) -> torch.Tensor:
        """Approximate inverse of :meth:`from_magnitude`: log-mel (batch, n_mels, frames) ->
        |STFT| (batch, bins, frames) in raw ``torch.stft`` units, by the filterbank's pseudo-inverse
        (negative values clipped)."""
        mel = self.mel_magnitude(logmel)
        pinv = torch.linalg.pinv(self.filterbank.double()).to(mel.dtype)
        return torch.einsum("fm,...mn->...fn", pinv, mel).clamp_min(0) / self.scale

    def to_waveform(self, logmel: torch.Tensor, length: int, n_iter: int = 32) -> torch.Tensor:
        """Log-mel frames (batch, n_mels, frames) -> waveforms (batch, length): :meth:`to_magnitude`
        with phases from ``n_iter`` Griffin-Lim iterations (a reconstruction: the magnitudes'
        statistics are the frames', the fine temporal structure is not)."""
        return griffin_lim(self.to_magnitude(logmel), self.n_fft, self.hop, length, n_iter)


def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop: int, length: int, n_iter: int = 32,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """A waveform (batch, length) whose STFT magnitude approximates ``magnitude`` (batch, bins,
    frames), from random phases by ``n_iter`` Griffin-Lim projections."""
    phase = torch.rand(magnitude.shape, generator=generator, dtype=magnitude.dtype).to(magnitude.device) * 2 * torch.pi
    spec = magnitude * torch.exp(1j * phase)
    for _ in range(n_iter):
        x = istft(spec, n_fft, hop, length)
        rebuilt = stft(x, n_fft, hop)
        spec = magnitude * torch.exp(1j * torch.angle(rebuilt))
    return istft(spec, n_fft, hop, length)
