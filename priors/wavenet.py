"""Autoregressive WaveNet prior (van den Oord et al. 2016) with cached O(T) generation."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .config import RecordsInitArgs
from .distributions import make_head
from .layers import (Conv1d, GatedResidualBlock, GlobalConditioning, conv_step, conv_taps, dilations, ring_history,
                     stack_step)


class WaveNet(RecordsInitArgs, nn.Module):
    """p(x) = Π_t p(x_t | x_<t, σ, source), x a waveform in [-1, 1] at the data's sample rate.

    Args:
        n_layers, n_stacks: dilations 1, 2, …, 2^(n_layers/n_stacks - 1), repeated per stack.
        residual_channels, skip_channels: widths of the residual and skip paths.
        kernel_size: kernel of the dilated causal convolutions.
        input_kernel_size: kernel of the first (causal) convolution on the shifted input.
        head: ``"logistic"`` (discretized mixture of logistics, smooth in x) or ``"mulaw"``
            (256-way softmax over μ-law classes).
        n_components, n_bins: logistic head; n_classes: μ-law head.
        sigma_conditioning: embed the noise level σ into every gate.
        n_sources: > 0 adds a learned source-id embedding (one net for several sources).
    """

    def __init__(self, n_layers: int = 10, n_stacks: int = 1, residual_channels: int = 32,
                 skip_channels: int = 32, kernel_size: int = 2, input_kernel_size: int = 2,
                 head: str = "logistic", n_components: int = 4, n_bins: int = 65536,
                 n_classes: int = 256, sigma_conditioning: bool = True, n_sources: int = 0):
        super().__init__()
        self.kernel_size = kernel_size
        self.input_kernel_size = input_kernel_size
        head_kwargs = ({"n_classes": n_classes} if head == "mulaw"
                       else {"n_components": n_components, "n_bins": n_bins})
        self.head = make_head(head, **head_kwargs)
        cond_channels = residual_channels if (sigma_conditioning or n_sources) else 0
        self.conditioning = GlobalConditioning(residual_channels, sigma_conditioning, n_sources) if cond_channels else None
        self.input_conv = Conv1d(1, residual_channels, input_kernel_size, causal=True)
        self.blocks = nn.ModuleList(
            GatedResidualBlock(residual_channels, skip_channels, kernel_size, d, cond_channels, causal=True)
            for d in dilations(n_layers, n_stacks)
        )
        self.out1 = nn.Conv1d(skip_channels, skip_channels, 1)
        self.out2 = nn.Conv1d(skip_channels, self.head.n_params, 1)
        self.skip_scale = math.sqrt(1.0 / len(self.blocks))

    @property
    def receptive_field(self) -> int:
        """Number of past samples that influence p(x_t | x_<t):
        (input_kernel - 1) + Σ_layers (kernel - 1)·dilation + 1 (the one-sample shift)."""
        return (self.input_kernel_size - 1) + sum((b.kernel_size - 1) * b.dilation for b in self.blocks) + 1

    def _cond(self, x: torch.Tensor, sigma, source):
        if self.conditioning is None:
            return None
        return self.conditioning(x.shape[0], x.device, sigma, source)

    def forward(self, x: torch.Tensor, sigma=None, source=None) -> torch.Tensor:
        """Teacher-forced pass: x (batch, time) -> distribution parameters (batch, n_params, time),
        where column t parameterises p(x_t | x_<t)."""
        cond = self._cond(x, sigma, source)
        shifted = F.pad(x, (1, 0))[:, :-1].unsqueeze(1)
        h = self.input_conv(shifted)
        skips = 0.0
        for block in self.blocks:
            h, s = block(h, cond)
            skips = skips + s
        return self.out2(F.relu(self.out1(F.relu(skips * self.skip_scale))))

    def log_prob(self, x: torch.Tensor, sigma=None, source=None) -> torch.Tensor:
        """Log-density of each sample, (batch, time), nats (see priors.distributions)."""
        return self.head.log_prob(self(x, sigma, source), x)

    # ------------------------------------------------------------------ generation
    def _step_params(self, buffers, t: int, x_prev: torch.Tensor, plan: dict) -> torch.Tensor:
        """Advance the caches by one sample. x_prev (batch,) is x_{t-1}; plan: the sequence's
        constants (see :meth:`_plan`); returns (batch, n_params). Each layer writes its output
        straight into the next layer's ring-buffer slot."""
        in_buf = buffers[0]  # time-major ring buffers: (slots, batch, channels)
        k_in = self.input_kernel_size
        in_buf[t % k_in] = x_prev.unsqueeze(1)
        conv_step(self.input_conv.bias, ring_history(in_buf, t, k_in, 1), plan["input_taps"],
                  out=buffers[1][t % buffers[1].shape[0]])
        skips = stack_step(self.blocks, plan["blocks"], buffers[1:], t, plan["skip_bias"])
        z = torch.addmm(self.out1.bias, skips.relu_(), plan["out1_w"]).relu_()
        return torch.addmm(self.out2.bias, z, plan["out2_w"])

    @torch.no_grad()
    def _plan(self, x: torch.Tensor, sigma, source) -> dict:
        """Constants of the cached generator for one batch of sequences, computed once: every
        block's fused weights and conditioned gate bias, the summed skip biases, and the output
        weights with the skip scale folded in (relu(a·s) = a·relu(s) for a > 0)."""
        cond = self._cond(x, sigma, source)
        return {"input_taps": conv_taps(self.input_conv.weight),
                "blocks": [block.step_plan(cond) for block in self.blocks],
                "skip_bias": sum(block.skip.bias for block in self.blocks),
                "out1_w": (self.out1.weight.squeeze(-1) * self.skip_scale).t(),
                "out2_w": self.out2.weight.squeeze(-1).t()}

    def _new_buffers(self, batch: int, device, dtype):
        """Time-major ring buffers (slots, batch, channels): the input's last k_in samples, and
        each block's last (k-1)·d+1 inputs (read with :func:`ring_history`)."""
        c = self.input_conv.out_channels
        bufs = [torch.zeros(self.input_kernel_size, batch, 1, device=device, dtype=dtype)]
        bufs += [torch.zeros((b.kernel_size - 1) * b.dilation + 1, batch, c, device=device, dtype=dtype)
                 for b in self.blocks]
        return bufs

    @torch.no_grad()
    def incremental_forward(self, x: torch.Tensor, sigma=None, source=None) -> torch.Tensor:
        """The cached generator driven by a given waveform (teacher forcing), one sample at a
        time: x (batch, time) -> params (batch, n_params, time). Equals :meth:`forward`."""
        plan = self._plan(x, sigma, source)
        bufs = self._new_buffers(x.shape[0], x.device, x.dtype)
        prev = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        out = []
        for t in range(x.shape[1]):
            out.append(self._step_params(bufs, t, prev, plan))
            prev = x[:, t]
        return torch.stack(out, dim=-1)

    @torch.no_grad()
    def generate(self, n: int, length: int, sigma=None, source=None, temperature: float = 1.0,
                 device=None, progress: bool = False) -> torch.Tensor:
        """Sample n waveforms of ``length`` samples with cached convolutions: O(T·layers),
        returns (n, length) in [-1, 1]. temperature 0 takes the most likely value."""
        device = device or next(self.parameters()).device
        return self.continue_from(torch.zeros(n, 0, device=device), length, sigma, source, temperature, progress)

    @torch.no_grad()
    def continue_from(self, prefix: torch.Tensor, length: int, sigma=None, source=None, temperature: float = 1.0,
                      progress: bool = False) -> torch.Tensor:
        """Sample continuations of given waveforms: the cached generator reads ``prefix``
        (n, P) as its history (teacher forcing), then draws ``length`` more samples;
        returns the continuation (n, length), without the prefix. P = 0 is :meth:`generate`."""
        n, device = prefix.shape[0], prefix.device
        plan = self._plan(prefix, sigma, source)
        bufs = self._new_buffers(n, device, torch.float32)
        prev = torch.zeros(n, device=device)
        for t in range(prefix.shape[1]):
            self._step_params(bufs, t, prev, plan)
            prev = prefix[:, t].float()
        out = torch.empty(n, length, device=device)
        start = prefix.shape[1]
        for i in tqdm(range(length), disable=not progress, desc="generate", leave=False):
            params = self._step_params(bufs, start + i, prev, plan)
            prev = self.head.sample(params.unsqueeze(-1), temperature).squeeze(-1)
            out[:, i] = prev
        return out
