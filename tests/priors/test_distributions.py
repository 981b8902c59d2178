import math

import torch

from priors.distributions import DiscretizedLogisticMixture, MuLawCategorical
from priors.mulaw import bin_widths, dequantize, mulaw_decode, mulaw_encode, quantize


def test_mulaw_roundtrip_and_quantisation():
    x = torch.linspace(-1, 1, 1001)
    assert torch.allclose(mulaw_decode(mulaw_encode(x)), x, atol=1e-6)
    q = quantize(x)
    assert q.min() == 0 and q.max() == 255
    assert (dequantize(q) - x).abs().max() < 0.05
    assert torch.isclose(bin_widths().sum(), torch.tensor(2.0), atol=1e-5)


def test_mulaw_categorical_probabilities_sum_to_one():
    head = MuLawCategorical()
    params = torch.randn(3, 256, 7) * 3
    probs = head.log_prob_bins(params).exp().sum(1)
    assert torch.allclose(probs, torch.ones_like(probs), atol=1e-5)
    # the density integrates to one: Σ_bins density(centre) · width = 1
    centres = dequantize(torch.arange(256))
    dens = torch.stack([head.log_prob(params, c.expand(3, 7)).exp() for c in centres], 1)
    total = (dens * bin_widths()[None, :, None]).sum(1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-4)


def test_discretized_logistic_bins_sum_to_one():
    for n_bins in (16, 256):
        head = DiscretizedLogisticMixture(n_components=3, n_bins=n_bins)
        params = torch.randn(2, 9, 5, dtype=torch.float64)
        params[:, 6:] = params[:, 6:] - 2.0  # scales ~ e^-2
        centres = torch.linspace(-1, 1, n_bins, dtype=torch.float64)
        mass = torch.stack([head.log_mass(params, c.expand(2, 5)).exp() for c in centres], 1).sum(1)
        assert torch.allclose(mass, torch.ones_like(mass), atol=1e-6), mass


def test_discretized_logistic_density_is_smooth_and_matches_logistic_pdf():
    head = DiscretizedLogisticMixture(n_components=1, n_bins=65536)
    mu, log_s = 0.1, math.log(0.05)
    params = torch.tensor([[[0.0], [mu], [log_s]]], dtype=torch.float64)
    x = torch.tensor([[0.13]], dtype=torch.float64, requires_grad=True)
    lp = head.log_prob(params, x)
    z = (0.13 - mu) / 0.05
    exact = -z - log_s - 2 * math.log1p(math.exp(-z))
    assert abs(lp.item() - exact) < 1e-4
    lp.sum().backward()
    assert abs(x.grad.item() - (-(1 - 2 / (1 + math.exp(z))) / 0.05)) < 1e-2


def test_sampling_shapes_and_ranges():
    head = DiscretizedLogisticMixture(n_components=2)
    params = torch.randn(4, 6, 10)
    s = head.sample(params, 1.0)
    assert s.shape == (4, 10) and s.abs().max() <= 1
    greedy = head.sample(params, 0.0)
    assert torch.equal(greedy, head.sample(params, 0.0))
    m = MuLawCategorical()
    assert m.sample(torch.randn(4, 256, 10)).shape == (4, 10)
