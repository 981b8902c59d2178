"""Normalizing-flow prior for waveforms (FloWaveNet / WaveGlow / Glow style).

A waveform x (batch, time) is folded into channels by repeated ``squeeze`` steps and pushed
through invertible layers to a latent z of the same size with a standard-normal density:

    log p(x | σ) = log N(z; 0, I) + log |det ∂z/∂x|,   z = f(x; σ)

Every layer maps a feature map (batch, channels, time) and a conditioning vector
(batch, cond_channels) or None as ``forward(x, cond) -> (y, logdet)`` with logdet (batch,)
in nats, and back as ``reverse(y, cond) -> x``. Densities are continuous (no discretisation):
nats per sample of the waveform.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .config import RecordsInitArgs
from .layers import Conv1d, GatedResidualBlock, GlobalConditioning, dilations

LOG_2PI = math.log(2.0 * math.pi)


class Squeeze(nn.Module):
    """Fold time into channels: (batch, C, T) -> (batch, 2C, T/2); output channel 2c + j holds
    input channel c at times 2t + j. A permutation, so logdet = 0."""

    def forward(self, x: torch.Tensor, cond=None):
        b, c, t = x.shape
        if t % 2:
            raise ValueError(f"squeeze needs an even number of time steps, got {t}")
        y = x.reshape(b, c, t // 2, 2).transpose(2, 3).reshape(b, 2 * c, t // 2)
        return y, x.new_zeros(b)

    def reverse(self, y: torch.Tensor, cond=None) -> torch.Tensor:
        b, c2, t2 = y.shape
        return y.reshape(b, c2 // 2, 2, t2).transpose(2, 3).reshape(b, c2 // 2, 2 * t2)


class ActNorm(nn.Module):
    """Per-channel affine map y = (x + bias)·exp(log_scale) (Glow).

    Initialised from the first batch it sees so that y has zero mean and unit variance per
    channel (under DDP from the statistics of all ranks' first batches, so the replicas stay
    identical); ``initialized`` is a buffer, so a loaded checkpoint is not re-initialised.
    logdet = T·Σ_c log_scale_c (the same for every example).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1))
        self.register_buffer("initialized", torch.tensor(0.0))
        self._ready = False  # Python mirror of ``initialized`` (avoids a device sync per call)

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation from x (batch, channels, time), pooled over the
        processes of an initialised ``torch.distributed`` group."""
        xd = x.double()
        stats = torch.cat([xd.sum(dim=(0, 2)), xd.pow(2).sum(dim=(0, 2)),
                           xd.new_tensor([x.shape[0] * x.shape[2]])])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)
        c = x.shape[1]
        count = stats[-1]
        mean = stats[:c] / count
        var = (stats[c:2 * c] / count - mean**2).clamp(min=0)
        mean = mean.to(x.dtype).view(1, c, 1)
        std = var.sqrt().to(x.dtype).view(1, c, 1).clamp(min=1e-6)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std))
        self.initialized.fill_(1.0)
        self._ready = True

    def forward(self, x: torch.Tensor, cond=None):
        if not self._ready:
            if self.initialized:
                self._ready = True
            else:
                self.initialize(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        logdet = x.shape[2] * self.log_scale.sum()
        return y, logdet.expand(x.shape[0])

    def reverse(self, y: torch.Tensor, cond=None) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class Invertible1x1Conv(nn.Module):
    """Channel mixing y_t = W x_t with W = P·L·(U + diag(sign·exp(log_s))) (Glow's LU form),
    initialised to a random rotation. logdet = T·Σ log_s = T·log|det W|."""

    def __init__(self, channels: int):
        super().__init__()
        q = torch.linalg.qr(torch.randn(channels, channels))[0]
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        # derived from the size: not stored in checkpoints (older checkpoints that hold them still load)
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1), persistent=False)
        self.register_buffer("eye", torch.eye(channels), persistent=False)
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("lower_mask", "eye"):
            state_dict.pop(prefix + name, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def weight(self) -> torch.Tensor:
        """W (channels, channels)."""
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def forward(self, x: torch.Tensor, cond=None):
        y = F.conv1d(x, self.weight().unsqueeze(-1))
        logdet = x.shape[2] * self.log_s.sum()
        return y, logdet.expand(x.shape[0])

    def reverse(self, y: torch.Tensor, cond=None) -> torch.Tensor:
        return F.conv1d(y, torch.linalg.inv(self.weight()).unsqueeze(-1))


class CouplingNet(nn.Module):
    """Small non-causal WaveNet: (batch, in_channels, T) + cond -> (batch, out_channels, T).

    Its output layer starts at zero, so the coupling it drives starts as the identity."""

    def __init__(self, in_channels: int, out_channels: int, channels: int, n_layers: int,
                 kernel_size: int, cond_channels: int):
        super().__init__()
        self.start = Conv1d(in_channels, channels, kernel_size, causal=False)
        self.blocks = nn.ModuleList(
            GatedResidualBlock(channels, channels, kernel_size, d, cond_channels, causal=False)
            for d in dilations(n_layers, 1)
        )
        self.end = nn.Conv1d(channels, out_channels, 1)
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)
        self.skip_scale = math.sqrt(1.0 / max(1, n_layers))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = self.start(x)
        skips = 0.0
        for block in self.blocks:
            h, s = block(h, cond)
            skips = skips + s
        return self.end(F.relu(skips * self.skip_scale))


def _log_sigmoids(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor):
    """log sigmoid(z) and log sigmoid(−z) of z = (x − μ_j) / s_j: (batch, C, J, T) each."""
    z = (x.unsqueeze(2) - mean) * torch.exp(-log_scale)
    return F.logsigmoid(z), F.logsigmoid(-z)


def _logit_of(log_weights: torch.Tensor, log_sig: torch.Tensor, log_sig_neg: torch.Tensor):
    """log c and log(1 − c) of c = Σ_j w_j sigmoid(z_j): (batch, C, T) each."""
    return torch.logsumexp(log_weights + log_sig, 2), torch.logsumexp(log_weights + log_sig_neg, 2)


def _log_pdf_of(log_weights: torch.Tensor, log_scale: torch.Tensor, log_sig: torch.Tensor, log_sig_neg: torch.Tensor):
    """log p_mix(x) = log Σ_j w_j sigmoid(z_j) sigmoid(−z_j) / s_j: (batch, C, T)."""
    return torch.logsumexp(log_weights + log_sig + log_sig_neg - log_scale, 2)


LOG_P_MIN = -80.0  # probit link: tail probabilities below e^-80 (|y| > 12.5) are clamped


def _probit_of(log_c: torch.Tensor, log_1mc: torch.Tensor) -> torch.Tensor:
    """Φ⁻¹(c) from log c and log(1 − c), taken from the smaller tail (no cancellation near c = 1)."""
    low = log_c < log_1mc
    y = torch.special.ndtri(torch.where(low, log_c, log_1mc).clamp(min=LOG_P_MIN).exp())
    return torch.where(low, y, -y)


def mixture_logit_cdf(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, log_weights: torch.Tensor,
                      link: str = "logit"):
    """Element-wise monotone map of Flow++: y = logit(c), c = Σ_j w_j · sigmoid((x − μ_j) / s_j).

    x (batch, C, T); mean, log_scale, log_weights (normalised over j) broadcastable to
    (batch, C, J, T). Returns y and log dy/dx = log p_mix(x) − log c − log(1 − c), both
    (batch, C, T), computed in log space so that values far from every component stay finite.
    ``link="probit"``: y = Φ⁻¹(c) instead (log dy/dx = log p_mix(x) − log φ(y)), so that x drawn
    from the mixture gives y ~ N(0, 1) exactly: the Gaussian-copula split, in which the map holds
    the marginal and what follows it only the dependence."""
    log_sig, log_sig_neg = _log_sigmoids(x, mean, log_scale)
    log_c, log_1mc = _logit_of(log_weights, log_sig, log_sig_neg)
    log_pdf = _log_pdf_of(log_weights, log_scale, log_sig, log_sig_neg)
    if link == "probit":
        y = _probit_of(log_c, log_1mc)
        return y, log_pdf + 0.5 * y * y + 0.5 * LOG_2PI
    return log_c - log_1mc, log_pdf - log_c - log_1mc


def invert_mixture_logit_cdf(y: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                             log_weights: torch.Tensor, steps: int = 60, link: str = "logit") -> torch.Tensor:
    """x with :func:`mixture_logit_cdf`(x, …, link)[0] = y, by bisection (the map is increasing)
    in a bracket around the components, first widened (doubling) where y lies outside it. Each
    evaluation computes the map alone, not its derivative (the probit link is bisected on the
    logit scale: logit(Φ(y))).

    Differentiable where autograd is on: the bisection runs without a graph, and one Newton step
    of zero value, x − (g(x) − y) / g'(x) with g'(x) held fixed, carries the implicit-function
    gradients dx/dy = 1 / g'(x) and dx/dθ = −(∂g/∂θ) / g'(x) (θ: mean, log_scale, log_weights),
    so a loss on samples x = f⁻¹(z) trains the map."""
    with torch.no_grad():
        x = _bisect_mixture_logit_cdf(y, mean, log_scale, log_weights, steps, link)
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in (y, mean, log_scale, log_weights)):
        return x
    g, log_derivative = mixture_logit_cdf(x, mean, log_scale, log_weights, link)
    step = (g - y) * torch.exp(-log_derivative.detach())
    return x - (step - step.detach())


def _bisect_mixture_logit_cdf(y: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                              log_weights: torch.Tensor, steps: int, link: str) -> torch.Tensor:
    if link == "probit":
        y = torch.special.log_ndtr(y) - torch.special.log_ndtr(-y)

    def f(v):
        log_c, log_1mc = _logit_of(log_weights, *_log_sigmoids(v, mean, log_scale))
        return log_c - log_1mc

    reach = 10.0 * log_scale.exp().max().item()
    lo = torch.full_like(y, mean.min().item() - reach)
    hi = torch.full_like(y, mean.max().item() + reach)
    for _ in range(60):
        low_out, high_out = f(lo) > y, f(hi) < y
        if not (low_out.any() or high_out.any()):
            break
        lo, hi = lo - low_out * (hi - lo), hi + high_out * (hi - lo)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        above = f(mid) > y
        hi = torch.where(above, mid, hi)
        lo = torch.where(above, lo, mid)
    return 0.5 * (lo + hi)


class MixtureLogisticCDF(nn.Module):
    """Element-wise :func:`mixture_logit_cdf` with its own J components per channel. It can turn
    a per-channel marginal with a spike and a long tail (a mel bin that is mostly silent and
    sometimes loud) into a near-logistic one (``link="logit"``) or, with ``link="probit"``, into
    N(0, 1) exactly where the mixture fits the marginal, which a few affine couplings cannot.
    logdet = Σ_{c,t} log dy/dx; the inverse is :func:`invert_mixture_logit_cdf` (to float
    precision after ``bisection_steps`` halvings). ``cond`` is ignored."""

    def __init__(self, channels: int, n_components: int = 4, bisection_steps: int = 60, link: str = "logit"):
        super().__init__()
        if link not in ("logit", "probit"):
            raise ValueError(f"link must be logit or probit, got {link!r}")
        self.mean = nn.Parameter(torch.linspace(-2.0, 2.0, n_components).repeat(channels, 1).unsqueeze(-1))
        self.log_scale = nn.Parameter(torch.zeros(channels, n_components, 1))
        self.logits = nn.Parameter(torch.zeros(channels, n_components, 1))
        self.bisection_steps, self.link = bisection_steps, link

    def forward(self, x: torch.Tensor, cond=None):
        y, log_derivative = mixture_logit_cdf(x, self.mean, self.log_scale, self.logits.log_softmax(1), self.link)
        return y, log_derivative.sum(dim=(1, 2))

    def reverse(self, y: torch.Tensor, cond=None) -> torch.Tensor:
        return invert_mixture_logit_cdf(y, self.mean, self.log_scale, self.logits.log_softmax(1),
                                        self.bisection_steps, self.link)

    def marginal_log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log p_mix(x) per element, x (batch, C, T) -> (batch, C, T) nats: the mixture's own
        density, which the probit link turns into the log-likelihood of the map followed by N(0, 1)."""
        return _log_pdf_of(self.logits.log_softmax(1), self.log_scale, *_log_sigmoids(x, self.mean, self.log_scale))

    @torch.enable_grad()
    def fit(self, x: torch.Tensor, steps: int = 300, lr: float = 0.05) -> float:
        """Fit each channel's mixture to the values of x (batch, C, T) alone by maximum likelihood:
        means start at the channel's quantiles, then ``steps`` Adam steps. Returns the final mean
        log-density (nats per element)."""
        xs = x.detach().transpose(0, 1).reshape(x.shape[1], -1)  # (C, N)
        j = self.mean.shape[1]
        with torch.no_grad():
            levels = (torch.arange(j, device=x.device, dtype=torch.float32) + 0.5) / j
            self.mean.copy_(torch.quantile(xs.float(), levels, dim=1).T.unsqueeze(-1))
            spread = xs.float().std(1).clamp(min=1e-3).view(-1, 1, 1) / j
            self.log_scale.copy_(spread.log().expand_as(self.log_scale))
            self.logits.zero_()
        opt = torch.optim.Adam([self.mean, self.log_scale, self.logits], lr=lr)
        xs = xs.unsqueeze(0)
        for _ in range(steps):
            opt.zero_grad()
            loss = -self.marginal_log_density(xs).mean()
            loss.backward()
            opt.step()
        return -loss.item()


class MixtureCDFCoupling(nn.Module):
    """Flow++ coupling: the first half x_a passes unchanged and conditions an element-wise
    :func:`mixture_logit_cdf` of the second half followed by an affine map,

        y_b = logit(Σ_j w_j sigmoid((x_b − μ_j) / s_j)) · exp(a) + b,   (μ, s, w, a, b) = net(x_a, cond)

    so one step can move each value through a multimodal conditional, which one affine step
    cannot. |a| and |log s| are soft-bounded by ``bound``; the means start spread over
    [−2, 2]. logdet = Σ (log dy/dx + a). The inverse bisects the CDF (:func:`invert_mixture_logit_cdf`)."""

    def __init__(self, channels: int, hidden: int, n_layers: int, kernel_size: int,
                 cond_channels: int = 0, n_components: int = 4, bound: float = 2.0):
        super().__init__()
        if channels < 2:
            raise ValueError("a coupling needs at least 2 channels")
        self.n_a, self.n_b, self.j, self.bound = channels // 2, channels - channels // 2, n_components, bound
        self.net = CouplingNet(self.n_a, self.n_b * (3 * n_components + 2), hidden, n_layers, kernel_size, cond_channels)
        self.register_buffer("mean_offset", torch.linspace(-2.0, 2.0, n_components).view(1, 1, n_components, 1),
                             persistent=False)

    def _params(self, x_a: torch.Tensor, cond):
        out = self.net(x_a, cond)
        b, t = out.shape[0], out.shape[-1]
        mix, affine = out.split([self.n_b * 3 * self.j, self.n_b * 2], dim=1)
        mean, log_scale, logits = mix.reshape(b, self.n_b, 3 * self.j, t).split(self.j, dim=2)
        log_a, shift = affine.chunk(2, dim=1)
        return (mean + self.mean_offset, self._soft(log_scale), logits.log_softmax(2), self._soft(log_a), shift)

    def _soft(self, v: torch.Tensor) -> torch.Tensor:
        return self.bound * torch.tanh(v / self.bound)

    def forward(self, x: torch.Tensor, cond=None):
        x_a, x_b = x.split([self.n_a, self.n_b], dim=1)
        mean, log_scale, log_w, log_a, shift = self._params(x_a, cond)
        u, log_derivative = mixture_logit_cdf(x_b, mean, log_scale, log_w)
        y_b = u * torch.exp(log_a) + shift
        return torch.cat([x_a, y_b], dim=1), (log_derivative + log_a).sum(dim=(1, 2))

    def reverse(self, y: torch.Tensor, cond=None) -> torch.Tensor:
        y_a, y_b = y.split([self.n_a, self.n_b], dim=1)
        mean, log_scale, log_w, log_a, shift = self._params(y_a, cond)
        x_b = invert_mixture_logit_cdf((y_b - shift) * torch.exp(-log_a), mean, log_scale, log_w)
        return torch.cat([y_a, x_b], dim=1)


class AffineCoupling(nn.Module):
    """Affine coupling (RealNVP): the first half of the channels x_a passes unchanged and
    conditions y_b = x_b·exp(log_s) + t, (log_s, t) = net(x_a, cond). log_s is soft-clamped,
    log_s = bound·tanh(raw / bound), so the scale stays in [e^-bound, e^bound] and is the identity
    at raw = 0. logdet = Σ_{c,t} log_s (per example)."""

    def __init__(self, channels: int, hidden: int, n_layers: int, kernel_size: int,
                 cond_channels: int = 0, bound: float = 2.0):
        super().__init__()
        if channels < 2:
            raise ValueError("a coupling needs at least 2 channels")
        self.n_a = channels // 2
        self.n_b = channels - self.n_a
        self.bound = bound
        self.net = CouplingNet(self.n_a, 2 * self.n_b, hidden, n_layers, kernel_size, cond_channels)

    def _scale_shift(self, x_a: torch.Tensor, cond):
        raw, shift = self.net(x_a, cond).chunk(2, dim=1)
        return self.bound * torch.tanh(raw / self.bound), shift

    def forward(self, x: torch.Tensor, cond=None):
        x_a, x_b = x.split([self.n_a, self.n_b], dim=1)
        log_s, shift = self._scale_shift(x_a, cond)
        y_b = x_b * torch.exp(log_s) + shift
        return torch.cat([x_a, y_b], dim=1), log_s.sum(dim=(1, 2))

    def reverse(self, y: torch.Tensor, cond=None) -> torch.Tensor:
        y_a, y_b = y.split([self.n_a, self.n_b], dim=1)
        log_s, shift = self._scale_shift(y_a, cond)
        return torch.cat([y_a, (y_b - shift) * torch.exp(-log_s)], dim=1)


class FlowStack(nn.ModuleList):
    """``n_blocks`` × [squeeze, then ``n_flows`` × (ActNorm, Invertible1x1Conv, AffineCoupling)]
    over feature maps (batch, in_channels, T): z has (batch, in_channels·2^n_blocks,
    T / 2^n_blocks) (``n_blocks`` = 0: no squeeze, z has the input's shape). ``head``: invertible
    layers applied first, at the input's shape (e.g. :class:`MixtureLogisticCDF`).
    ``coupling_components`` > 0 uses :class:`MixtureCDFCoupling` with that many logistics
    instead of :class:`AffineCoupling`. Shared by the waveform :class:`Flow` (one input channel)
    and the log-mel ``priors.frame_flow.FrameFlowPrior`` (mel bins as channels)."""

    def __init__(self, in_channels: int, n_blocks: int, n_flows: int, channels: int, n_layers: int,
                 kernel_size: int, cond_channels: int, coupling_bound: float, head=(),
                 coupling_components: int = 0):
        layers: list[nn.Module] = list(head)
        c = in_channels
        for _ in range(max(1, n_blocks)):
            if n_blocks:
                layers.append(Squeeze())
                c *= 2
            for _ in range(n_flows):
                coupling = (MixtureCDFCoupling(c, channels, n_layers, kernel_size, cond_channels, coupling_components,
                                               coupling_bound) if coupling_components
                            else AffineCoupling(c, channels, n_layers, kernel_size, cond_channels, coupling_bound))
                layers += [ActNorm(c), Invertible1x1Conv(c), coupling]
        super().__init__(layers)
        self.latent_channels = c

    def forward(self, h: torch.Tensor, cond=None):
        """h (batch, in_channels, T) -> (z, logdet (batch,) nats)."""
        logdet = h.new_zeros(h.shape[0])
        for layer in self:
            h, ld = layer(h, cond)
            logdet = logdet + ld
        return h, logdet

    def reverse(self, z: torch.Tensor, cond=None, progress: bool = False) -> torch.Tensor:
        """The inverse of :meth:`forward`: z -> h (batch, in_channels, T)."""
        h = z
        for layer in tqdm(reversed(self), total=len(self), disable=not progress, desc="generate", leave=False):
            h = layer.reverse(h, cond)
        return h


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over every dimension but the first: (batch, …) -> (batch,) nats."""
    return -0.5 * (z ** 2).flatten(1).sum(1) - 0.5 * z[0].numel() * LOG_2PI


class StandardGaussian(nn.Module):
    """The base density N(0, I) of latents (batch, channels, T), with the interface of
    :class:`CropOffsetGaussian` (no parameters: nothing in the state dict)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        """z (batch, channels, T) -> (batch,) nats."""
        return standard_normal_log_density(z)

    def sample(self, n: int, t: int, temperature: float = 1.0, device=None, dtype=None) -> torch.Tensor:
        """(n, channels, t) latents from N(0, temperature²·I)."""
        return torch.randn(n, self.channels, t, device=device, dtype=dtype) * temperature


class CropOffsetGaussian(nn.Module):
    """A base density for latents (batch, channels, T) with one shared random offset per channel
    and crop: z[c, t] = ε[c, t] + τ_c·m_c, ε, m ~ N(0, 1), so each channel's T values are
    N(0, I + τ_c²·11ᵀ). Sherman–Morrison gives the exact log-density:

        log N = −½ (‖z_c‖² − τ_c² (Σ_t z_c,t)² / (1 + T τ_c²)) − ½ log(1 + T τ_c²) − ½ T log 2π

    summed over channels. τ_c = exp(log_tau_c) is learnt (starts at ``init_tau``); at τ = 0 it
    is N(0, I)."""

    def __init__(self, channels: int, init_tau: float = 0.05):
        super().__init__()
        self.log_tau = nn.Parameter(torch.full((channels,), math.log(init_tau)))

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        """z (batch, channels, T) -> (batch,) nats."""
        t = z.shape[-1]
        tau2 = torch.exp(2 * self.log_tau)
        quad = (z ** 2).sum(-1) - tau2 * z.sum(-1) ** 2 / (1 + t * tau2)
        return (-0.5 * quad - 0.5 * torch.log1p(t * tau2)).sum(-1) - 0.5 * z[0].numel() * LOG_2PI

    def sample(self, n: int, t: int, temperature: float = 1.0, device=None, dtype=None) -> torch.Tensor:
        """(n, channels, t) latents, both parts scaled by ``temperature``."""
        c = self.log_tau.shape[0]
        eps = torch.randn(n, c, t, device=device, dtype=dtype)
        offset = torch.randn(n, c, 1, device=device, dtype=dtype) * torch.exp(self.log_tau).to(dtype)[:, None]
        return (eps + offset) * temperature


class Flow(RecordsInitArgs, nn.Module):
    """Multi-scale flow prior p(x | σ, source) for waveforms x (batch, time).

    Architecture: ``n_blocks`` times [squeeze, then ``n_flows`` × (ActNorm, Invertible1x1Conv,
    AffineCoupling)], so the latent z has shape (batch, 2^n_blocks, time / 2^n_blocks) and the
    time length must be a multiple of :attr:`length_multiple` = 2^n_blocks.

    Args:
        n_blocks: squeeze levels. n_flows: flow steps per level.
        channels: width of the coupling WaveNets (and of the conditioning vector).
        n_layers, kernel_size: gated residual layers per coupling WaveNet (dilations 1, 2, 4, …)
            and their (non-causal) kernel.
        coupling_bound: |log-scale| bound of each coupling.
        sigma_conditioning: feed an embedding of the noise level σ into every gate.
        n_sources: > 0 adds a learned source-id embedding (one net for several sources).

    Units: log-densities are continuous, in nats. :meth:`log_likelihood` gives the total per
    example; :meth:`log_prob` spreads it evenly over the samples (see there).
    """

    def __init__(self, n_blocks: int = 3, n_flows: int = 4, channels: int = 32, n_layers: int = 4,
                 kernel_size: int = 3, coupling_bound: float = 2.0, sigma_conditioning: bool = True,
                 n_sources: int = 0):
        super().__init__()
        if n_blocks < 1 or n_flows < 1:
            raise ValueError("need n_blocks >= 1 and n_flows >= 1")
        self.n_blocks = n_blocks
        cond_channels = channels if (sigma_conditioning or n_sources) else 0
        self.conditioning = GlobalConditioning(channels, sigma_conditioning, n_sources) if cond_channels else None
        self.layers = FlowStack(1, n_blocks, n_flows, channels, n_layers, kernel_size, cond_channels, coupling_bound)
        self.latent_channels = self.layers.latent_channels
        self.base = StandardGaussian(self.latent_channels)

    @property
    def length_multiple(self) -> int:
        """Every input / generated length must be a multiple of this (2^n_blocks)."""
        return 2 ** self.n_blocks

    def _check_length(self, length: int) -> None:
        if length % self.length_multiple:
            raise ValueError(f"flow prior: length {length} is not a multiple of {self.length_multiple} "
                             f"(2^n_blocks); crop or pad the waveform to a multiple of {self.length_multiple}")

    def _cond(self, batch: int, device, sigma, source):
        if self.conditioning is None:
            return None
        return self.conditioning(batch, device, sigma, source)

    def forward(self, x: torch.Tensor, sigma=None, source=None):
        """x (batch, time) -> (z (batch, 2^n_blocks, time / 2^n_blocks), logdet (batch,) nats)."""
        self._check_length(x.shape[-1])
        return self.layers(x.unsqueeze(1), self._cond(x.shape[0], x.device, sigma, source))

    def reverse(self, z: torch.Tensor, sigma=None, source=None, progress: bool = False) -> torch.Tensor:
        """z (batch, 2^n_blocks, time / 2^n_blocks) -> x (batch, time); the inverse of forward."""
        if z.dim() != 3 or z.shape[1] != self.latent_channels:
            raise ValueError(f"z must be (batch, {self.latent_channels}, time / {self.length_multiple}), "
                             f"got {tuple(z.shape)}")
        return self.layers.reverse(z, self._cond(z.shape[0], z.device, sigma, source), progress).squeeze(1)

    def log_likelihood(self, x: torch.Tensor, sigma=None, source=None) -> torch.Tensor:
        """Exact log-density of each waveform, (batch,) nats: log N(z; 0, I) + log|det ∂z/∂x|."""
        z, logdet = self(x, sigma, source)
        return self.base.log_density(z) + logdet

    def log_prob(self, x: torch.Tensor, sigma=None, source=None) -> torch.Tensor:
        """(batch, time) nats per sample: each row holds log_likelihood / time, so its mean is
        the per-sample log-likelihood and its sum the exact total (a flow has no per-sample
        factorisation; this even split keeps the SourcePrior / separator contract)."""
        total = self.log_likelihood(x, sigma, source)
        return (total / x.shape[-1]).unsqueeze(-1).expand(-1, x.shape[-1])

    @torch.no_grad()
    def generate(self, n: int, length: int, sigma=0.0, temperature: float = 1.0, device=None,
                 progress: bool = False, source=None, clip: bool = True) -> torch.Tensor:
        """Sample n waveforms (n, length) in one pass: z ~ N(0, temperature²·I), x = f⁻¹(z).
        ``length`` must be a multiple of :attr:`length_multiple` (ValueError otherwise);
        ``clip`` clamps the result to [-1, 1] like the WaveNet's samples."""
        self._check_length(length)
        param = next(self.parameters())
        device = device or param.device
        z = self.base.sample(n, length // self.length_multiple, temperature, device, param.dtype)
        x = self.reverse(z, sigma, source, progress=progress)
        return x.clamp(-1.0, 1.0) if clip else x
