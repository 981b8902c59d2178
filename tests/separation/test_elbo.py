"""The variational objective on a model whose posterior is known exactly."""
import math

import torch
from torch import nn

from separation.elbo import elbo, gain_normalised, gaussian_nll
from separation.encoder import WaveNetEncoder, project_to_mixture


class GaussianPrior(nn.Module):
    """p(x) = N(0, v + σ²) independently per sample."""

    def __init__(self, var):
        super().__init__()
        self.var = var

    def log_prob(self, x, sigma=None):
        s2 = 0.0 if sigma is None else sigma.reshape(-1, 1) ** 2
        v = self.var + s2
        return -0.5 * x**2 / v - 0.5 * torch.log(2 * math.pi * torch.as_tensor(v))


def _fit(mix, priors, sigma_m, steps=1500):
    K, T = len(priors), mix.shape[-1]
    mu = torch.zeros(1, K, T, requires_grad=True)
    log_std = torch.full((1, K, T), -1.0, requires_grad=True)
    opt = torch.optim.Adam([mu, log_std], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        loss = elbo(mu, log_std, mix, priors, mixture_std=sigma_m, n_samples=8)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return mu.detach(), log_std.detach()


def test_elbo_optimum_is_the_exact_posterior_mean_and_bounds_the_evidence():
    torch.manual_seed(0)
    v = [1.0, 0.25]
    sigma_m = 0.3
    priors = [GaussianPrior(x) for x in v]
    T = 64
    s = torch.stack([torch.randn(T) * math.sqrt(x) for x in v])
    mix = (s.sum(0) + sigma_m * torch.randn(T)).unsqueeze(0)
    total = sum(v) + sigma_m**2
    exact_mean = torch.stack([x / total * mix[0] for x in v]).unsqueeze(0)
    mu, log_std = _fit(mix, priors, sigma_m)
    assert (mu - exact_mean).abs().max() < 0.05, (mu - exact_mean).abs().max()
    # mean-field variances: 1 / (1/v_k + 1/σ_m²)
    mf_std = torch.tensor([1 / math.sqrt(1 / x + 1 / sigma_m**2) for x in v])
    assert torch.allclose(log_std.exp().mean(-1)[0], mf_std, rtol=0.1)
    log_evidence = (-0.5 * mix**2 / total - 0.5 * math.log(2 * math.pi * total)).mean()
    torch.manual_seed(1)
    at_opt = elbo(mu, log_std, mix, priors, mixture_std=sigma_m, n_samples=256)["elbo"]
    assert at_opt <= log_evidence + 0.01
    # the mean-field gap is KL(q*||p) = ½·log(Π diag Λ / det Λ) per time sample, Λ the posterior precision
    precision = torch.diag(torch.tensor([1 / x for x in v])) + torch.ones(2, 2) / sigma_m**2
    gap = 0.5 * (torch.log(torch.diagonal(precision)).sum() - torch.logdet(precision))
    assert abs(at_opt - (log_evidence - gap)) < 0.05, (at_opt, log_evidence, gap)
    for trial in range(3):
        rand = elbo(torch.randn_like(mu), torch.randn_like(log_std) - 1, mix, priors, mixture_std=sigma_m,
                    n_samples=64)["elbo"]
        assert rand <= log_evidence + 0.01


def test_beta_weights_only_the_entropy():
    torch.manual_seed(0)
    priors = [GaussianPrior(1.0), GaussianPrior(1.0)]
    mu, log_std = torch.randn(2, 2, 16, dtype=torch.float64), torch.randn(2, 2, 16, dtype=torch.float64) - 1
    mix = torch.randn(2, 16, dtype=torch.float64)
    torch.manual_seed(3)
    a = elbo(mu, log_std, mix, priors, beta=1.0)
    torch.manual_seed(3)
    b = elbo(mu, log_std, mix, priors, beta=2.0)
    assert torch.allclose(b["loss"] - a["loss"], -a["entropy"])
    assert torch.allclose(a["entropy"], (log_std + 0.5 * math.log(2 * math.pi * math.e)).mean((0, 2)).sum())


def test_projection_makes_estimates_add_up_to_the_mixture():
    s = torch.randn(3, 4, 100)
    mix = torch.randn(3, 100)
    p = project_to_mixture(s, mix, 0.25)
    assert torch.allclose(0.25 * p.sum(1), mix, atol=1e-6)
    enc = WaveNetEncoder(n_sources=4, n_layers=3, channels=8)
    mu, log_std = enc(mix)
    assert mu.shape == (3, 4, 100) and log_std.shape == (3, 4, 100)


def test_gaussian_nll_is_minimised_at_the_target():
    target = torch.randn(2, 3, 50)
    at = gaussian_nll(target, torch.full_like(target, -2.0), target)
    off = gaussian_nll(target + 0.1, torch.full_like(target, -2.0), target)
    assert at < off


def test_beta_nll_gives_the_mean_the_mse_gradient():
    torch.manual_seed(0)
    mu = torch.randn(2, 3, 8, requires_grad=True)
    log_std = torch.randn(2, 3, 8)
    target = torch.randn(2, 3, 8)
    gaussian_nll(mu, log_std, target, beta_nll=1.0).backward()
    mse_grad = (mu - target).detach() / (2 * 8)  # d/dμ of ½(μ−t)² averaged over batch·time
    assert torch.allclose(mu.grad, mse_grad, atol=1e-6)
    plain = gaussian_nll(mu, log_std, target)
    assert torch.allclose(plain, gaussian_nll(mu, log_std, target, beta_nll=0.0))


def test_gain_normalised_scoring_ignores_the_level():
    torch.manual_seed(0)
    s = torch.randn(2, 3, 64, dtype=torch.float64)
    rms = [0.5, 0.9, 0.2]
    g = gain_normalised(s, rms)
    assert torch.allclose(g.pow(2).mean(-1).sqrt(), torch.tensor(rms, dtype=torch.float64).expand(2, 3))
    assert torch.allclose(gain_normalised(s * torch.tensor([3.0, 0.1, 7.0]).reshape(1, 3, 1), rms), g)
    # a Gaussian prior rewards shrinking a signal; scored gain-normalised it cannot tell the levels apart
    priors = [GaussianPrior(1.0)] * 3
    tiny_std = torch.full_like(s, -30.0)
    mix = torch.zeros(2, 64, dtype=torch.float64)
    plain = [elbo(a * s, tiny_std, mix, priors)["prior"] for a in (1.0, 0.5)]
    normed = [elbo(a * s, tiny_std, mix, priors, score_rms=rms)["prior"] for a in (1.0, 0.5)]
    assert plain[1] > plain[0] + 1.0
    assert torch.allclose(normed[0], normed[1])


def test_fixed_posterior_std_replaces_the_encoders_and_makes_the_entropy_constant():
    torch.manual_seed(0)
    priors = [GaussianPrior(1.0), GaussianPrior(2.0)]
    mu = torch.randn(2, 2, 32, dtype=torch.float64, requires_grad=True)
    log_std = torch.randn(2, 2, 32, dtype=torch.float64, requires_grad=True)
    mix = torch.randn(2, 32, dtype=torch.float64)
    torch.manual_seed(1)
    fixed = elbo(mu, log_std, mix, priors, posterior_std=0.01)
    torch.manual_seed(1)
    same = elbo(mu, torch.full_like(log_std, math.log(0.01)), mix, priors)
    assert torch.allclose(fixed["loss"], same["loss"])
    assert torch.allclose(fixed["entropy"], torch.tensor(2 * (math.log(0.01) + 0.5 * math.log(2 * math.pi * math.e)),
                                                         dtype=torch.float64))
    fixed["loss"].backward()
    assert log_std.grad is None and mu.grad.abs().sum() > 0
