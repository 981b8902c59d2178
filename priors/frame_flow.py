"""FrameFlowPrior: a normalizing flow over whole crops of log-mel frames, a non-autoregressive
prior of one instrument.

A waveform (batch, time) becomes log-mel frames (batch, n_mels, frames) (:class:`priors.spectral.LogMel`);
a Glow-style flow (:class:`priors.flow.FlowStack`: a per-bin monotone map of each bin's marginal,
:class:`priors.flow.MixtureLogisticCDF` — a mel bin is mostly near silence and sometimes loud, a
spike and a long tail that a few affine couplings map to a Gaussian badly —, then optional
squeezes of frame pairs into channels, ActNorm, invertible 1×1 convolutions across mel bins and
affine couplings whose non-causal dilated WaveNets look across frames) maps the whole crop to a standard-normal latent of the same size:

    log p(F | σ) = log N(z; 0, I) + log |det ∂z/∂F|,   z = f(F; σ)

exact, log-determinant included. Unlike :class:`priors.frame_prior.FramePrior` a sample is drawn
in one inverse pass from z ~ N(0, T²·I): no frame is predicted from drawn frames, so a dream
cannot drift away from the data frame by frame (the frame prior's dreams do: their level and
their quiet high bins run off, docs/results/chorales_frame_ratio.md).

Units: nats per mel bin per frame, like the frame prior — the crop's total log-density spread
evenly over its frames (a flow has no per-frame factorisation). A crop of ``frames`` frames uses
its first ``frames − frames mod 2^n_blocks`` (the flow needs a multiple of
:attr:`length_multiple`).

``feature_noise`` > 0 adds N(0, feature_noise²) to the features while training (dequantisation):
silent bins sit exactly at log(floor), a point mass on which a flow's density would grow without
bound; the noise keeps the learnt density smooth at that scale (the frame prior's ``log_std_min``).
Scoring (eval mode) uses the features as they are.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .config import RecordsInitArgs
from .flow import ActNorm, CropOffsetGaussian, FlowStack, MixtureLogisticCDF, StandardGaussian
from .layers import GlobalConditioning
from .spectral import LogMel


class FrameFlowPrior(RecordsInitArgs, nn.Module):
    """Args: sample_rate, n_fft, hop, n_mels, floor: the log-mel front end (Hz, samples, bins;
    silence maps to log(floor)).
    n_blocks: squeezes of frame pairs (0: none; the latent keeps the input's shape).
    n_flows: flow steps per block. channels, n_layers, kernel_size: width, depth (dilations
    1, 2, 4, …) and kernel of each coupling's WaveNet across frames. coupling_bound: |log-scale|
    bound per coupling. sigma_conditioning: embed the waveform noise level σ into every gate.
    feature_noise: training-time dequantisation noise of the log-mel features (log units).
    marginal_components: > 0 starts the flow with an ActNorm and a per-bin
    :class:`priors.flow.MixtureLogisticCDF` of that many logistics (0: none).
    coupling_components: > 0 makes every coupling a :class:`priors.flow.MixtureCDFCoupling`
    (Flow++) with that many logistics; 0: affine couplings. crop_offsets: the latent's base density
    is :class:`priors.flow.CropOffsetGaussian` (one learnt shared offset per latent channel and
    crop) instead of N(0, I). marginal_link: ``"logit"`` or ``"probit"``, the link of the per-bin
    map (:class:`priors.flow.MixtureLogisticCDF`). marginal_fit_steps: > 0 fits the per-bin map
    (its ActNorm, then each bin's mixture, that many Adam steps) to the marginals of the first
    training batch alone, then freezes it: with the probit link each bin is then N(0, 1) on its
    own and the rest of the flow learns only how the bins depend on each other (a Gaussian
    copula); measured on the chorales it fits worse and dreams no louder (docs/results/
    chorales_frame_flow.md), so the configs keep the jointly trained logit map. The fit is
    done once (a buffer records it; under DDP rank 0's fit is broadcast), and a frozen map means
    DDP needs ``--trainer.strategy ddp_find_unused_parameters_true``."""

    def __init__(self, sample_rate: int = 22_050, n_fft: int = 1024, hop: int = 256, n_mels: int = 128,
                 n_blocks: int = 1, n_flows: int = 6, channels: int = 64, n_layers: int = 6, kernel_size: int = 3,
                 coupling_bound: float = 2.0, sigma_conditioning: bool = True, feature_noise: float = 0.05,
                 marginal_components: int = 4, coupling_components: int = 0, crop_offsets: bool = False,
                 marginal_link: str = "logit", marginal_fit_steps: int = 0, floor: float = 1e-4):
        super().__init__()
        if n_blocks < 0 or n_flows < 1:
            raise ValueError("need n_blocks >= 0 and n_flows >= 1")
        self.features = LogMel(sample_rate, n_fft, hop, n_mels, floor)
        self.n_mels, self.n_blocks, self.feature_noise = n_mels, n_blocks, feature_noise
        self.conditioning = GlobalConditioning(channels, True, 0) if sigma_conditioning else None
        if marginal_fit_steps and not marginal_components:
            raise ValueError("marginal_fit_steps needs marginal_components > 0")
        head = ([ActNorm(n_mels), MixtureLogisticCDF(n_mels, marginal_components, link=marginal_link)]
                if marginal_components else [])
        self.marginal_fit_steps = marginal_fit_steps
        if marginal_fit_steps:
            self.register_buffer("marginals_fitted", torch.tensor(0.0))
        self.flow = FlowStack(n_mels, n_blocks, n_flows, channels, n_layers, kernel_size,
                              channels if sigma_conditioning else 0, coupling_bound, head, coupling_components)
        base = CropOffsetGaussian if crop_offsets else StandardGaussian
        self.base = base(self.flow.latent_channels)

    @property
    def length_multiple(self) -> int:
        """Frames per crop must be a multiple of this (2^n_blocks); log_prob drops the rest."""
        return 2 ** self.n_blocks

    def _cond(self, batch: int, device, sigma):
        return self.conditioning(batch, device, sigma) if self.conditioning is not None else None

    def log_likelihood_features(self, feats: torch.Tensor, sigma=None) -> torch.Tensor:
        """feats (batch, n_mels, frames), frames a multiple of :attr:`length_multiple` ->
        (batch,) exact log-density of each crop in nats (plus dequantisation noise in training)."""
        if feats.shape[-1] % self.length_multiple:
            raise ValueError(f"frame flow: {feats.shape[-1]} frames is not a multiple of {self.length_multiple}")
        if self.training and self.feature_noise > 0:
            feats = feats + self.feature_noise * torch.randn_like(feats)
        if self.training and self.marginal_fit_steps:
            self._fit_marginals(feats)
        z, logdet = self.flow(feats, self._cond(feats.shape[0], feats.device, sigma))
        return self.base.log_density(z) + logdet

    def _fit_marginals(self, feats: torch.Tensor) -> None:
        """The first training batch fits the per-bin map alone (see ``marginal_fit_steps``);
        afterwards (and after loading a fitted checkpoint) its parameters stay frozen."""
        actnorm, marginal = self.flow[0], self.flow[1]
        if not self.marginals_fitted:
            with torch.no_grad():
                actnorm.initialize(feats)
                normed, _ = actnorm(feats)
            marginal.fit(normed, self.marginal_fit_steps)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                for tensor in (*actnorm.parameters(), *marginal.parameters()):
                    torch.distributed.broadcast(tensor.data, 0)
            self.marginals_fitted.fill_(1.0)
        for param in (*actnorm.parameters(), *marginal.parameters()):
            param.requires_grad_(False)
            param.grad = None

    def log_prob_features(self, feats: torch.Tensor, sigma=None) -> torch.Tensor:
        """feats (batch, n_mels, frames) -> (batch, usable frames) nats per mel bin, each frame
        holding the crop's mean (see the module docstring)."""
        frames = feats.shape[-1] - feats.shape[-1] % self.length_multiple
        if frames == 0:
            raise ValueError(f"frame flow: need at least {self.length_multiple} frames, got {feats.shape[-1]}")
        total = self.log_likelihood_features(feats[..., :frames], sigma)
        return (total / (self.n_mels * frames)).unsqueeze(-1).expand(-1, frames)

    def log_prob(self, x: torch.Tensor, sigma=None) -> torch.Tensor:
        """x waveform (batch, time) -> (batch, usable frames), nats per mel bin."""
        return self.log_prob_features(self.features(x), sigma)

    @torch.no_grad()
    def sample_features(self, n: int, frames: int, sigma=None, temperature: float = 1.0,
                        device=None) -> torch.Tensor:
        """(n, n_mels, frames) log-mel crops in one inverse pass from z ~ N(0, temperature²·I)
        (drawn for ``frames`` rounded up to a multiple of :attr:`length_multiple`, then cut)."""
        return self.draw_features(n, frames, sigma, temperature, device)

    def draw_features(self, n: int, frames: int, sigma=None, temperature: float = 1.0,
                      device=None) -> torch.Tensor:
        """:meth:`sample_features` with autograd: the inverse pass is differentiable in the
        parameters (reparameterised, z fixed), so a loss on the drawn frames can train the flow
        (``priors.module.SourcePrior(spectrum_match_weight=…)``)."""
        param = next(self.parameters())
        device = device or param.device
        m = self.length_multiple
        steps = -(-frames // m)
        z = self.base.sample(n, steps, temperature, device, param.dtype)
        return self.flow.reverse(z, self._cond(n, device, sigma))[..., :frames]

    def snap_silence(self, feats: torch.Tensor, width: float = 2.0) -> torch.Tensor:
        """Undo the dequantisation at silence: values below log(floor) + width·feature_noise
        become log(floor), the point mass that the training noise smeared (like rounding a
        dequantised image flow's samples back to integers). Left as they are, these values are a
        hiss just above the floor that the mel pseudo-inverse spreads over the top octave (on the
        chorales it raised the dreams' spectral centroid by up to 25 %). feats (…, n_mels, frames)."""
        silence = torch.full_like(feats, math.log(self.features.floor))
        return torch.where(feats < silence + width * self.feature_noise, silence, feats)

    @torch.no_grad()
    def generate(self, n: int, length: int, sigma=None, temperature: float = 1.0, device=None,
                 progress: bool = False, griffin_lim_iters: int = 32, silence_width: float = 2.0) -> torch.Tensor:
        """Waveforms (n, length): :meth:`sample_features`, :meth:`snap_silence` (``silence_width``
        noise deviations; 0: off), then :meth:`LogMel.to_waveform` (Griffin-Lim phases; the
        magnitudes' statistics are the prior's)."""
        feats = self.sample_features(n, length // self.features.hop + 1, sigma, temperature, device)
        if silence_width > 0:
            feats = self.snap_silence(feats, silence_width)
        return self.features.to_waveform(feats, length, griffin_lim_iters)
