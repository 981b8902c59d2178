"""Building blocks shared by the priors and the separator's encoder.

Shapes: waveforms (batch, time); feature maps (batch, channels, time); global
conditioning vectors (batch, cond_channels).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Conv1d(nn.Conv1d):
    """1-D convolution that pads itself: ``causal`` pads on the left only (output[t] sees
    input[≤ t]), otherwise symmetrically (same length, non-causal)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1,
                 causal: bool = True, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.causal = causal
        self.total_pad = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal:
            pad = (self.total_pad, 0)
        else:
            pad = (self.total_pad // 2, self.total_pad - self.total_pad // 2)
        return super().forward(F.pad(x, pad))


class NoiseLevelEmbedding(nn.Module):
    """σ (batch,) -> (batch, channels): random Fourier features of log σ, then an MLP.

    σ = 0 (clean) is mapped to log(σ_floor) so it is a valid, distinct input.
    """

    def __init__(self, channels: int, sigma_floor: float = 1e-4, n_freqs: int = 16):
        super().__init__()
        self.sigma_floor = sigma_floor
        self.register_buffer("freqs", torch.linspace(0.5, 8.0, n_freqs))
        self.mlp = nn.Sequential(nn.Linear(2 * n_freqs, channels), nn.SiLU(), nn.Linear(channels, channels))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        # log σ spans about [-9, 0]; scale to roughly [-1, 0]
        s = torch.log(sigma.clamp(min=self.sigma_floor)).unsqueeze(-1) / math.log(1.0 / self.sigma_floor)
        ang = s * self.freqs * math.pi
        return self.mlp(torch.cat([ang.sin(), ang.cos()], dim=-1))


class GlobalConditioning(nn.Module):
    """Builds one conditioning vector from a noise level σ and an optional source id.

    ``n_sources = 0`` disables the source embedding; ``sigma_conditioning = False`` ignores σ.
    """

    def __init__(self, channels: int, sigma_conditioning: bool = True, n_sources: int = 0):
        super().__init__()
        self.channels = channels
        self.sigma = NoiseLevelEmbedding(channels) if sigma_conditioning else None
        self.source = nn.Embedding(n_sources, channels) if n_sources > 0 else None

    def forward(self, batch: int, device: torch.device, sigma: torch.Tensor | float | None = None,
                source: torch.Tensor | int | None = None) -> torch.Tensor | None:
        out = None
        if self.sigma is not None:
            s = torch.as_tensor(0.0 if sigma is None else sigma, dtype=torch.float32, device=device)
            out = self.sigma(s.expand(batch) if s.dim() == 0 else s.reshape(batch))
        if self.source is not None:
            if source is None:
                raise ValueError("this network is conditioned on a source id; pass source=")
            idx = torch.as_tensor(source, dtype=torch.long, device=device)
            e = self.source(idx.expand(batch) if idx.dim() == 0 else idx.reshape(batch))
            out = e if out is None else out + e
        return out


def gated_activation(h: torch.Tensor) -> torch.Tensor:
    """tanh(a)·σ(b) for h = [a; b] split along channels (dim 1)."""
    a, b = h.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def conv_taps(weight: torch.Tensor) -> list[torch.Tensor]:
    """A Conv1d weight (out, in, k) as k matrices (in, out), one per tap, for stepwise use."""
    return [weight[:, :, j].t() for j in range(weight.shape[-1])]


def conv_step(bias: torch.Tensor, history: list[torch.Tensor], taps: list[torch.Tensor],
              out: torch.Tensor | None = None) -> torch.Tensor:
    """One output sample of a convolution from its cached inputs: bias + Σ_j history[j] @ taps[j].
    history[j] (batch, in) pairs with taps[j] (in, out); written into ``out`` when given."""
    h = torch.addmm(bias, history[-1], taps[-1], out=out)
    for x, w in zip(history[:-1], taps[:-1]):
        h.addmm_(x, w)
    return h


def ring_history(buf: torch.Tensor, t: int, kernel_size: int, dilation: int) -> list[torch.Tensor]:
    """A convolution's cached inputs at times t-(k-1)·d, …, t-d, t from a ring buffer
    (slots, batch, channels) written at slot t % slots; each (batch, channels)."""
    size = buf.shape[0]
    return [buf[(t - (kernel_size - 1 - j) * dilation) % size] for j in range(kernel_size)]


class GatedResidualBlock(nn.Module):
    """WaveNet block: dilated conv -> (+ conditioning) -> tanh·sigmoid gate -> residual and skip.

    x (batch, channels, time), cond (batch, cond_channels) or None ->
    (residual output (batch, channels, time), skip (batch, skip_channels, time)).
    ``gate_channels`` (default ``channels``): the gated units between the dilated convolution
    and the residual / skip projections.
    """

    def __init__(self, channels: int, skip_channels: int, kernel_size: int, dilation: int,
                 cond_channels: int = 0, causal: bool = True, gate_channels: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        gates = gate_channels or channels
        self.conv = Conv1d(channels, 2 * gates, kernel_size, dilation, causal=causal)
        self.cond = nn.Linear(cond_channels, 2 * gates, bias=False) if cond_channels else None
        self.res = nn.Conv1d(gates, channels, 1)
        self.skip = nn.Conv1d(gates, skip_channels, 1)

    def gate(self, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self.cond is not None and cond is not None:
            h = h + self.cond(cond).unsqueeze(-1)
        return gated_activation(h)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None):
        z = self.gate(self.conv(x), cond)
        return (x + self.res(z)) * math.sqrt(0.5), self.skip(z)

    @torch.no_grad()
    def step_plan(self, cond: torch.Tensor | None) -> dict:
        """Constants of :meth:`step` for one generated sequence: each tap's weight (C, 2C), the
        gate bias with the conditioning folded in ((batch, 2C) or (2C,)), the residual weight
        and bias pre-scaled by √½, and the skip weight (C, S) (the caller sums the skip biases)."""
        bias = self.conv.bias
        if self.cond is not None and cond is not None:
            bias = bias + self.cond(cond)
        r = math.sqrt(0.5)
        return {"taps": conv_taps(self.conv.weight), "gate_bias": bias,
                "res_w": (self.res.weight.squeeze(-1) * r).t(), "res_b": self.res.bias * r,
                "skip_w": self.skip.weight.squeeze(-1).t()}

    def step(self, history: list[torch.Tensor], plan: dict, out: torch.Tensor | None) -> torch.Tensor:
        """One time step from cached inputs, with fused matrix products.

        history: this layer's inputs at times t-(k-1)·d, …, t-d, t, each (batch, channels);
        plan from :meth:`step_plan`. Writes the residual output (x_t + res(z))·√½ into ``out``
        (batch, channels) unless it is None (the last layer's is unused); returns the gated
        activation z (batch, channels), whose skip projection the caller accumulates.
        """
        a, b = conv_step(plan["gate_bias"], history, plan["taps"]).chunk(2, dim=1)
        z = torch.tanh(a).mul_(torch.sigmoid(b))
        if out is not None:
            torch.addmm(plan["res_b"], z, plan["res_w"], out=out)
            out.add_(history[-1], alpha=math.sqrt(0.5))
        return z


def stack_step(blocks, plans: list[dict], buffers: list[torch.Tensor], t: int, skip_bias: torch.Tensor) -> torch.Tensor:
    """One time step of a stack of :class:`GatedResidualBlock` from ring-buffer caches.

    ``buffers[i]`` (slots, batch, channels) holds block i's inputs: the caller writes slot
    ``t`` of ``buffers[0]``, each block writes its residual output into the next buffer's slot
    (the last block's is unused). ``plans`` from :meth:`GatedResidualBlock.step_plan`.
    Returns the summed skip projections plus ``skip_bias`` (batch, skip_channels)."""
    skips = None
    last = len(blocks) - 1
    for i, (block, plan) in enumerate(zip(blocks, plans)):
        out = buffers[i + 1][t % buffers[i + 1].shape[0]] if i < last else None
        z = block.step(ring_history(buffers[i], t, block.kernel_size, block.dilation), plan, out)
        skips = torch.addmm(skip_bias, z, plan["skip_w"]) if skips is None else skips.addmm_(z, plan["skip_w"])
    return skips


def dilations(n_layers: int, n_stacks: int) -> list[int]:
    """Dilation of each layer: 1, 2, 4, … 2^(L/S-1), repeated over ``n_stacks`` stacks."""
    per_stack = max(1, n_layers // n_stacks)
    return [2 ** (i % per_stack) for i in range(n_layers)]
