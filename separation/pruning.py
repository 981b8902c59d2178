"""Cheaper encoders cut from trained ones: keep the gated units that carry the most signal.

:func:`prune_gate_units` copies a :class:`separation.encoder.WaveNetEncoder` into one with
fewer gated units per block. A unit's importance in its block is its mean |activation| on
the given mixtures times the norm of its residual and skip weights (what it sends on); the
dropped units' mean activations are folded into the residual and skip biases, so the first
moment of what each block sends on is kept. The pruned network is a starting point for
distillation (objective ``distil``), not a finished separator.
"""
from __future__ import annotations

import torch

from .encoder import WaveNetEncoder


@torch.no_grad()
def gate_statistics(encoder: WaveNetEncoder, mix: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per block, the (mean |z|, mean z) of its gated units over mixtures ``mix`` (batch, time);
    each a (gate_channels,) tensor. z is read where it enters the block's residual projection."""
    stats = []

    def record(module, inputs):
        z = inputs[0]
        stats.append((z.abs().mean(dim=(0, 2)), z.mean(dim=(0, 2))))

    hooks = [block.res.register_forward_pre_hook(record) for block in encoder.blocks]
    try:
        encoder(mix)
    finally:
        for h in hooks:
            h.remove()
    return stats


@torch.no_grad()
def prune_gate_units(encoder: WaveNetEncoder, mix: torch.Tensor, gate_channels: int) -> WaveNetEncoder:
    """A copy of ``encoder`` with ``gate_channels`` gated units per block, chosen on the
    mixtures ``mix`` (batch, time) in the encoder's input units. Everything else is copied."""
    args = dict(encoder.init_args)
    old = args.get("gate_channels") or args["channels"]
    if not 0 < gate_channels <= old:
        raise ValueError(f"gate_channels must be in 1..{old}, got {gate_channels}")
    pruned = WaveNetEncoder(**{**args, "gate_channels": gate_channels})
    state = {k: v for k, v in encoder.state_dict().items() if not k.startswith("blocks.")}
    for i, (block, (mean_abs, mean)) in enumerate(zip(encoder.blocks, gate_statistics(encoder, mix))):
        res, skip = block.res.weight.squeeze(-1), block.skip.weight.squeeze(-1)  # (C, G), (S, G)
        sends = (res.pow(2).sum(0) + skip.pow(2).sum(0)).sqrt()
        keep = (mean_abs * sends).topk(gate_channels).indices.sort().values
        drop = torch.ones(old, dtype=torch.bool)
        drop[keep] = False
        both = torch.cat([keep, keep + old])  # the tanh half and the sigmoid half of the conv
        prefix = f"blocks.{i}."
        state[prefix + "conv.weight"] = block.conv.weight[both]
        state[prefix + "conv.bias"] = block.conv.bias[both]
        state[prefix + "res.weight"] = block.res.weight[:, keep]
        state[prefix + "res.bias"] = block.res.bias + res[:, drop] @ mean[drop]
        state[prefix + "skip.weight"] = block.skip.weight[:, keep]
        state[prefix + "skip.bias"] = block.skip.bias + skip[:, drop] @ mean[drop]
    pruned.load_state_dict(state)
    return pruned
