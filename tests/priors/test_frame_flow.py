"""FrameFlowPrior: an exact flow density over log-mel crops (inverse, log-det against autograd,
normalised density), its per-bin units, dequantisation only in training, sampling, the ratio
wrapper, checkpoints and the SourcePrior training path. Tiny models, float64 where precision
matters."""
import math

import pytest
import torch
from torch.autograd.functional import jacobian

from priors.checkpoint import describe_prior, load_prior, save_prior
from priors.frame_flow import FrameFlowPrior
from priors.likelihood_ratio import LikelihoodRatio
from tests.conftest import perturb_couplings

SR = 8000


def tiny(seed: int = 0, double: bool = False, **kw) -> FrameFlowPrior:
    """A small frame flow whose ActNorms are initialised on random features and whose couplings
    are no longer the identity."""
    torch.manual_seed(seed)
    args = dict(sample_rate=SR, n_fft=256, hop=64, n_mels=8, n_blocks=1, n_flows=2, channels=8, n_layers=2)
    args.update(kw)
    prior = FrameFlowPrior(**args)
    prior = prior.double() if double else prior
    dtype = torch.float64 if double else torch.float32
    with torch.no_grad():
        prior.eval().log_prob_features(torch.randn(4, args["n_mels"], 8, dtype=dtype) - 4, 0.01)
    perturb_couplings(prior)
    return prior


@pytest.mark.parametrize("coupling_components,link", [(0, "logit"), (3, "logit"), (0, "probit")])
def test_flow_over_frames_inverts_and_its_logdet_is_the_autograd_jacobian(coupling_components, link):
    prior = tiny(double=True, coupling_components=coupling_components, marginal_link=link)
    feats = torch.randn(2, 8, 4, dtype=torch.float64) - 4
    cond = prior._cond(2, feats.device, torch.tensor([0.0, 0.02]))
    z, logdet = prior.flow(feats, cond)
    assert z.shape == (2, 16, 2)
    torch.testing.assert_close(prior.flow.reverse(z, cond), feats, atol=1e-10, rtol=0)
    one = feats[:1]
    jac = jacobian(lambda v: prior.flow(v.reshape(one.shape), cond[:1])[0].reshape(-1), one.reshape(-1), vectorize=True)
    torch.testing.assert_close(logdet[0], torch.linalg.slogdet(jac)[1], atol=1e-8, rtol=0)
    exact = -0.5 * z[0].pow(2).sum() - 0.5 * z[0].numel() * math.log(2 * math.pi) + logdet[0]
    torch.testing.assert_close(prior.log_likelihood_features(one, torch.tensor([0.0])), exact.reshape(1))


@pytest.mark.parametrize("coupling_components,crop_offsets,link",
                         [(0, False, "logit"), (3, False, "logit"), (0, True, "logit"), (0, False, "probit")])
def test_density_over_two_bins_integrates_to_one(coupling_components, crop_offsets, link):
    prior = tiny(double=True, n_mels=2, n_blocks=0, n_flows=3, coupling_components=coupling_components,
                 crop_offsets=crop_offsets, marginal_link=link)
    if crop_offsets:  # a visible offset variance
        prior.base.log_tau.data.fill_(0.3)
    n, half = 121, 12.0
    u = torch.linspace(-4 - half, -4 + half, n, dtype=torch.float64)
    grid = torch.cartesian_prod(u, u).unsqueeze(-1)  # (n², 2 bins, 1 frame)
    with torch.no_grad():
        density = prior.log_likelihood_features(grid, 0.0).exp()
    assert abs((density.sum() * (u[1] - u[0]) ** 2).item() - 1.0) < 1e-3


def test_log_prob_units_frames_and_gradient():
    prior = tiny()
    x = (0.3 * torch.randn(2, 64 * 9)).requires_grad_(True)  # 10 frames: the flow uses the first 10
    lp = prior.log_prob(x, torch.zeros(2))
    assert lp.shape == (2, 10) and torch.allclose(lp, lp[:, :1].expand(-1, 10))
    total = prior.log_likelihood_features(prior.features(x)[..., :10], torch.zeros(2))
    torch.testing.assert_close(lp.sum(1), total / 8)
    lp.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    odd = tiny().features(torch.randn(1, 64 * 10))  # 11 frames -> 10 used
    assert tiny().log_prob_features(odd).shape == (1, 10)
    with pytest.raises(ValueError, match="multiple"):
        prior.log_likelihood_features(odd)
    quiet = tiny(floor=1e-5).features(torch.zeros(1, 64 * 9))  # silence sits at log(floor)
    torch.testing.assert_close(quiet, torch.full_like(quiet, math.log(1e-5)))


def test_dequantisation_noise_only_while_training_and_sigma_conditions():
    prior = tiny(feature_noise=0.5)
    feats = torch.randn(2, 8, 6) - 4
    with torch.no_grad():
        a, b = prior.log_prob_features(feats, 0.0), prior.log_prob_features(feats, 0.0)
        torch.testing.assert_close(a, b)
        prior.train()
        assert not torch.allclose(prior.log_prob_features(feats, 0.0), a)
        prior.eval()
        assert not torch.allclose(prior.log_prob_features(feats, 0.03), a)


def test_samples_are_the_inverse_of_latents_and_generate_waveforms():
    prior = tiny()
    torch.manual_seed(5)
    feats = prior.sample_features(3, 7, 0.0, temperature=0.5)
    assert feats.shape == (3, 8, 7)
    torch.manual_seed(5)
    z = torch.randn(3, 16, 4) * 0.5
    torch.testing.assert_close(feats, prior.flow.reverse(z, prior._cond(3, "cpu", 0.0))[..., :7])
    zero = prior.sample_features(2, 4, 0.0, temperature=0.0)
    torch.testing.assert_close(zero[0], zero[1])
    wav = prior.generate(2, 1000, sigma=0.0, temperature=0.7)
    assert wav.shape == (2, 1000) and torch.isfinite(wav).all()


def test_ratio_and_checkpoint_round_trip(tmp_path):
    prior, background = tiny(seed=0), tiny(seed=1)
    x = 0.3 * torch.randn(2, 640)
    with torch.no_grad():
        ratio = LikelihoodRatio(prior, background).log_prob(x, 0.0)
        torch.testing.assert_close(ratio, prior.log_prob(x, 0.0) - background.log_prob(x, 0.0))
    path = tmp_path / "a.pt"
    save_prior(path, prior, describe_prior(prior, "a", SR))
    loaded, meta = load_prior(path)
    assert meta["class_path"] == "priors.frame_flow.FrameFlowPrior"
    with torch.no_grad():
        torch.testing.assert_close(loaded.log_prob(x, 0.0), prior.log_prob(x, 0.0))


def test_source_prior_trains_a_frame_flow():
    from priors.module import SourcePrior

    torch.manual_seed(0)
    prior = FrameFlowPrior(sample_rate=SR, n_fft=256, hop=64, n_mels=16, n_flows=2, channels=8, n_layers=2)
    job = SourcePrior(prior, "a", sample_rate=SR, sigma_min=0.001, sigma_max=0.03, warmup_steps=1, media_seconds=0)
    opt = torch.optim.Adam(prior.parameters(), 3e-3)
    t = torch.arange(2048) / SR
    batch = torch.stack([0.5 * torch.sin(2 * math.pi * 440 * t + p) for p in torch.rand(8) * 6])
    losses = []
    for _ in range(40):
        loss = job.nll(batch, torch.zeros(8))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3
    assert job.describe()["class_path"] == "priors.frame_flow.FrameFlowPrior"


def test_crop_offset_base_is_the_gaussian_with_one_shared_offset_per_channel():
    """log_density = N(0, I + τ²·11ᵀ) per channel (Sherman–Morrison against the full
    covariance); samples have that covariance; a frame flow with it samples by inverting them."""
    from priors.flow import CropOffsetGaussian, standard_normal_log_density

    base = CropOffsetGaussian(3).double()
    base.log_tau.data = torch.tensor([-1.0, 0.0, 0.5], dtype=torch.float64)
    z = torch.randn(4, 3, 6, dtype=torch.float64)
    want = sum(torch.distributions.MultivariateNormal(
        torch.zeros(6, dtype=torch.float64),
        torch.eye(6, dtype=torch.float64) + math.exp(2 * base.log_tau[c].item())).log_prob(z[:, c]) for c in range(3))
    torch.testing.assert_close(base.log_density(z), want)
    base.log_tau.data.fill_(-30.0)  # τ → 0: the standard normal
    torch.testing.assert_close(base.log_density(z), standard_normal_log_density(z))
    base.log_tau.data = torch.tensor([-1.0, 0.0, 0.5], dtype=torch.float64)
    torch.manual_seed(0)
    s = base.sample(40_000, 3, temperature=0.5, dtype=torch.float64)
    for c in range(3):
        cov = torch.cov(s[:, c].T) / 0.25
        torch.testing.assert_close(cov, torch.eye(3, dtype=torch.float64) + math.exp(2 * base.log_tau[c].item()),
                                   atol=0.06, rtol=0.03)
    prior = tiny(crop_offsets=True)
    prior.base.log_tau.data.fill_(0.0)
    torch.manual_seed(5)
    feats = prior.sample_features(3, 7, 0.0, temperature=0.5)
    torch.manual_seed(5)
    z = prior.base.sample(3, 4, 0.5)
    torch.testing.assert_close(feats, prior.flow.reverse(z, prior._cond(3, "cpu", 0.0))[..., :7])


def test_marginal_fit_gaussianises_each_bin_once_then_freezes_the_map(tmp_path):
    """marginal_fit_steps: the first training batch fits the per-bin map alone (probit link: each
    bin of that batch becomes ≈ N(0, 1)); the map is frozen from then on, and a saved, fitted
    prior is not fitted again."""
    torch.manual_seed(0)
    kw = dict(sample_rate=SR, n_fft=256, hop=64, n_mels=8, n_flows=2, channels=8, n_layers=2,
              marginal_link="probit", marginal_fit_steps=200, feature_noise=0.0)
    prior = FrameFlowPrior(**kw).train()
    x = torch.randn(16, 4096) * torch.logspace(-3, 0, 16).unsqueeze(1)  # a continuous spread of levels
    prior.log_prob(x, torch.zeros(16)).mean().backward()
    assert prior.marginals_fitted.item() == 1.0
    head = list(prior.flow[0].parameters()) + list(prior.flow[1].parameters())
    assert all(not p.requires_grad and p.grad is None for p in head)
    assert all(p.grad is not None for p in prior.flow[3].parameters())  # the ActNorm after the squeeze trains
    with torch.no_grad():
        y, _ = prior.flow[1](prior.flow[0](prior.features(x))[0])
    assert y.mean((0, 2)).abs().max() < 0.25 and (y.std((0, 2)) - 1).abs().max() < 0.25
    save_prior(tmp_path / "a.pt", prior, describe_prior(prior, "a", SR))
    loaded, _ = load_prior(tmp_path / "a.pt")
    before = [p.clone() for p in loaded.flow[1].parameters()]
    loaded.train().log_prob(x[:4] * 0.1, torch.zeros(4))
    assert all(torch.equal(a, b) for a, b in zip(before, loaded.flow[1].parameters()))
    with pytest.raises(ValueError, match="marginal_components"):
        FrameFlowPrior(marginal_components=0, marginal_fit_steps=10)


def test_drawn_features_are_the_samples_and_train_every_layer():
    """draw_features is sample_features with autograd: same values for the same stream, and a
    loss on the drawn frames reaches the marginal map, the couplings and the crop offsets."""
    prior = tiny(crop_offsets=True)
    torch.manual_seed(3)
    sampled = prior.sample_features(2, 6, 0.0, temperature=0.7)
    torch.manual_seed(3)
    drawn = prior.draw_features(2, 6, 0.0, temperature=0.7)
    torch.testing.assert_close(drawn, sampled)
    drawn.exp().mean().backward()
    marginal, coupling = prior.flow[1], prior.flow[-1]
    for name, param in [("marginal mean", marginal.mean), ("coupling", next(coupling.parameters())),
                        ("crop offsets", prior.base.log_tau)]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_spectrum_match_measures_the_band_power_ratio_and_trains_the_level():
    """SourcePrior.spectrum_match: 0 when the drawn crops have the batch's spectrum, 2·(log 4)² when
    they are twice as loud (bands and total; white noise: every band far above the floor), the
    band term and the total's share when one band falls silent; minimising it alone
    moves a tiny flow's dreams to a louder target; models without draw_features are refused."""
    from priors.module import SourcePrior

    torch.manual_seed(0)
    prior = FrameFlowPrior(sample_rate=SR, n_fft=256, hop=64, n_mels=16, n_flows=2, channels=8, n_layers=2)
    job = SourcePrior(prior, "a", sample_rate=SR, warmup_steps=1, media_seconds=0, spectrum_match_weight=1.0,
                      spectrum_match_samples=4)
    batch = torch.randn(4, 1024)
    feats = prior.features(batch)
    original = prior.draw_features
    prior.draw_features = lambda n, frames, *a: feats
    assert job.spectrum_match(batch).item() == pytest.approx(0.0, abs=1e-10)
    prior.draw_features = lambda n, frames, *a: prior.features(2 * batch)
    assert prior.features.long_term_power(feats).min() > 1e3 * prior.features.floor ** 2
    assert job.spectrum_match(batch).item() == pytest.approx(2 * math.log(4) ** 2, rel=1e-3)  # bands + total
    quiet_top = feats.clone()
    quiet_top[:, -1] = math.log(prior.features.floor)  # the top band silent: shape changes, level hardly
    prior.draw_features = lambda n, frames, *a: quiet_top
    top_share = prior.features.long_term_power(feats)[-1] / prior.features.long_term_power(feats).sum()
    expected = math.log(prior.features.long_term_power(feats)[-1].item() / prior.features.floor ** 2) ** 2 / 16
    assert job.spectrum_match(batch).item() == pytest.approx(expected + math.log(1 - top_share.item()) ** 2, rel=1e-2)
    prior.draw_features = original
    with torch.no_grad():
        prior.eval().log_prob(batch, 0.0)  # initialise the ActNorms on the data
    loud = 3.0 * batch
    opt = torch.optim.Adam(prior.parameters(), 1e-2)
    values = []
    for _ in range(30):
        loss = job.spectrum_match(loud)
        opt.zero_grad()
        loss.backward()
        opt.step()
        values.append(loss.item())
    assert values[-1] < 0.2 * values[0], values
    with pytest.raises(ValueError, match="draw_features"):
        SourcePrior(torch.nn.Identity(), "a", spectrum_match_weight=1.0)


def test_generate_snaps_the_dequantisation_noise_at_silence_back_to_the_floor():
    """snap_silence maps values within width·feature_noise above log(floor), and any below it, to
    log(floor) and leaves louder ones; generate renders snapped frames unless silence_width = 0."""
    prior = tiny(feature_noise=0.1)
    silence = math.log(prior.features.floor)
    feats = torch.tensor([silence - 0.5, silence, silence + 0.19, silence + 0.21, -2.0]).view(1, 1, 5)
    snapped = prior.snap_silence(feats, width=2.0)
    torch.testing.assert_close(snapped, torch.tensor([silence, silence, silence, silence + 0.21, -2.0]).view(1, 1, 5))
    g = torch.Generator().manual_seed(0)
    hiss = silence + prior.feature_noise * torch.randn(2, 8, 1000 // 64 + 1, generator=g).abs()
    frames = torch.where(torch.rand(hiss.shape, generator=g) < 0.3, torch.full_like(hiss, -3.0), hiss)
    prior.sample_features = lambda *args, **kwargs: frames  # generate's frames: loud bins above a hiss
    waves = {}
    for width in (0.0, 2.0):
        torch.manual_seed(7)  # Griffin-Lim's random phases
        waves[width] = prior.generate(2, 1000, sigma=0.0, silence_width=width)
        torch.manual_seed(7)
        rendered = frames if width == 0 else prior.snap_silence(frames, width)
        torch.testing.assert_close(waves[width], prior.features.to_waveform(rendered, 1000))
    assert waves[2.0].pow(2).mean() < waves[0.0].pow(2).mean()  # the hiss is gone, the loud bins stay
