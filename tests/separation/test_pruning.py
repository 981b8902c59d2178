"""Pruning gated units: the kept units are copied exactly, dropped constant units are folded
into the biases, and ``priorsep prune`` writes a loadable, cheaper separator."""
import pytest
import torch

from separation.encoder import WaveNetEncoder
from separation.pruning import prune_gate_units


def _encoder():
    torch.manual_seed(0)
    enc = WaveNetEncoder(n_sources=4, n_layers=4, n_stacks=2, channels=8)
    with torch.no_grad():
        torch.nn.init.normal_(enc.out2.weight, std=0.2)
    return enc


def test_units_that_send_nothing_are_dropped_and_the_output_is_unchanged():
    enc = _encoder()
    with torch.no_grad():
        for block in enc.blocks:  # units 1, 3, 5, 7 of every block reach neither the residual nor the skips
            block.res.weight[:, 1::2] = 0
            block.skip.weight[:, 1::2] = 0
    mix = torch.randn(3, 500) * 0.3
    pruned = prune_gate_units(enc, mix, 4)
    assert pruned.init_args["gate_channels"] == 4
    for block in pruned.blocks:
        assert block.conv.weight.shape == (8, 8, 3) and block.res.weight.shape == (8, 4, 1)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in enc.parameters())
    test = torch.randn(2, 300) * 0.3
    for a, b in zip(pruned(test), enc(test)):
        assert torch.allclose(a, b, atol=1e-6)


def test_dropped_constant_units_are_folded_into_the_biases():
    enc = _encoder()
    with torch.no_grad():
        for block in enc.blocks:  # units 4..7: input weights zero -> a constant, small activation
            for half in (0, 8):
                block.conv.weight[half + 4:half + 8] = 0
                block.conv.bias[half + 4:half + 8] = 0.01
    mix = torch.randn(3, 500) * 0.3
    pruned = prune_gate_units(enc, mix, 4)
    test = torch.randn(2, 300) * 0.3
    for a, b in zip(pruned(test), enc(test)):
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="gate_channels"):
        prune_gate_units(enc, mix, 9)


def test_prune_command_writes_a_cheaper_separator_that_loads(tmp_path, capsys):
    from separation.checkpoints import load_separator, save_separator
    from separation.cli import main

    enc = _encoder()
    meta = {"format": "priorsep-separator/1", "objective": "elbo", "sources": ["sin", "square", "saw", "triangle"],
            "sample_rate": 14700, "mix_scale": 0.25, "project": True, "class_path": enc.class_path,
            "init_args": dict(enc.init_args), "priors": [], "version": "test"}
    save_separator(tmp_path / "sep.pt", enc, meta)
    out = tmp_path / "pruned.pt"
    assert main(["prune", str(tmp_path / "sep.pt"), str(out), "--gate-channels", "3", "--n", "4", "--length", "256"]) == 0
    assert "3 gated units" in capsys.readouterr().out
    sep = load_separator(out, sources=["sin", "square", "saw", "triangle"])
    assert sep.meta["init_args"]["gate_channels"] == 3 and sep.meta["pruned_from"].endswith("sep.pt")
    assert sep(torch.randn(2, 200)).shape == (2, 4, 200)
    assert main(["prune", str(tmp_path / "sep.pt"), str(out), "--gate-channels", "99"]) == 2
