"""The posterior network: shapes at any length, the 'each source = mixture' start, a finite,
non-causal receptive field (checked with gradients), and fewer gated units costing less."""
import pytest
import torch

from separation.encoder import WaveNetEncoder


def _encoders():
    torch.manual_seed(0)
    return [WaveNetEncoder(n_sources=3, n_layers=4, n_stacks=2, channels=8),
            WaveNetEncoder(n_sources=3, n_layers=4, n_stacks=2, channels=8, gate_channels=3)]


@pytest.mark.parametrize("length", [1, 7, 1001])
def test_encoders_return_one_mean_and_log_std_per_source_at_any_length(length):
    for enc in _encoders():
        mu, log_std = enc(torch.randn(2, length))
        assert mu.shape == log_std.shape == (2, 3, length)


def test_untrained_encoders_start_from_each_source_equal_to_the_mixture():
    mix = torch.randn(2, 333)
    for enc in _encoders():
        mu, _ = enc(mix)
        assert torch.equal(mu, mix.unsqueeze(1).expand_as(mu))


def test_encoder_sees_both_sides_within_its_receptive_field_only():
    for enc in _encoders():
        with torch.no_grad():  # a non-zero output head so the correction depends on the input
            torch.nn.init.normal_(enc.out2.weight, std=0.1)
        length, t = 256, 128
        mix = torch.randn(1, length, requires_grad=True)
        mu, _ = enc(mix)
        (mu[0, :, t] - mix[0, t]).sum().backward()  # the correction at sample t
        seen = (mix.grad[0].abs() > 0).nonzero().flatten()
        half = enc.receptive_field // 2
        assert seen.min() == t - half and seen.max() == t + half  # past and future, exactly that far


def _macs_per_sample(enc, length=2048):
    """Multiply-accumulates per sample of every convolution, from the shapes."""
    total, hooks = [0], []

    def count(m, inputs, out):
        total[0] += out.shape[-1] * m.weight.numel()

    for m in enc.modules():
        if isinstance(m, torch.nn.Conv1d):
            hooks.append(m.register_forward_hook(count))
    with torch.no_grad():
        enc(torch.zeros(1, length))
    for h in hooks:
        h.remove()
    return total[0] / length


def test_half_the_gated_units_cost_about_half():
    dense = WaveNetEncoder(n_sources=4, n_layers=20, n_stacks=2, channels=64)
    gated = WaveNetEncoder(n_sources=4, n_layers=20, n_stacks=2, channels=64, gate_channels=32)
    ratio = _macs_per_sample(gated) / _macs_per_sample(dense)
    assert 0.45 < ratio < 0.55, ratio
