"""FramePrior and LogMel: causality across frames, receptive field, exact Gaussian density,
sampling consistent with teacher forcing, σ conditioning, and the SourcePrior training path."""
import math

import pytest
import torch

from priors.frame_prior import FramePrior
from priors.spectral import LogMel, istft, stft

SR = 8000


def tiny(**kw):
    torch.manual_seed(0)
    args = dict(sample_rate=SR, n_fft=256, hop=64, n_mels=16, channels=8, n_layers=3, **kw)
    return FramePrior(**args)


def test_prediction_is_causal_and_sees_exactly_its_receptive_field():
    prior = tiny()
    rf = prior.receptive_field
    assert rf == 1 + 2 * (1 + 2 + 4)
    feats = torch.randn(1, 16, 40, requires_grad=True)
    mean, log_std, _ = prior.predict(feats)
    n = 30
    (mean[0, :, :, n].sum() + log_std[0, :, :, n].sum()).backward()
    g = feats.grad[0].abs().sum(0)
    assert torch.all(g[n:] == 0), "frame n must not see frames >= n"
    assert g[n - 1] > 0 and g[n - rf] > 0
    assert torch.all(g[: n - rf] == 0)


def test_log_prob_is_the_gaussian_density_per_bin():
    prior = tiny()
    feats = torch.randn(2, 16, 12)
    mean, log_std, log_weights = prior.predict(feats)
    assert mean.shape == log_std.shape == (2, 1, 16, 12) and torch.all(log_weights == 0)
    expected = torch.distributions.Normal(mean[:, 0], log_std[:, 0].exp()).log_prob(feats).mean(1)
    torch.testing.assert_close(prior.log_prob_features(feats), expected)


def test_frame_mixture_head_is_a_normalised_mixture_over_whole_frames():
    prior = tiny(n_components=3)
    feats = torch.randn(2, 16, 12)
    mean, log_std, log_weights = prior.predict(feats)
    assert mean.shape == (2, 3, 16, 12) and log_weights.shape == (2, 3, 12)
    torch.testing.assert_close(log_weights.exp().sum(1), torch.ones(2, 12))
    # the density of a frame: Σ_j w_j Π_bins N(x_b; μ_jb, s_jb), reported per mel bin
    normal = torch.distributions.Normal(mean.permute(0, 3, 1, 2), log_std.permute(0, 3, 1, 2).exp())
    frame = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(logits=log_weights.permute(0, 2, 1)),
                                                  torch.distributions.Independent(normal, 1))
    expected = frame.log_prob(feats.permute(0, 2, 1)) / 16
    torch.testing.assert_close(prior.log_prob_features(feats), expected)
    # a one-bin, one-frame model integrates to 1 over a grid of values of its only frame
    one = FramePrior(sample_rate=SR, n_fft=256, hop=64, n_mels=1, channels=4, n_layers=1, n_components=3)
    grid = torch.linspace(-40, 30, 20_001)
    density = one.log_prob_features(grid.view(-1, 1, 1)).exp().squeeze()
    assert abs(torch.trapezoid(density, grid).item() - 1) < 1e-3


def test_waveform_log_prob_shape_and_gradient():
    prior = tiny()
    x = (0.1 * torch.randn(3, 1024)).requires_grad_()
    lp = prior.log_prob(x)
    assert lp.shape == (3, 1024 // 64 + 1)
    lp.mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_zero_temperature_samples_equal_teacher_forced_means():
    prior = tiny()
    s = prior.sample_features(2, 3 * prior.receptive_field, temperature=0.0)
    mean, _, _ = prior.predict(s)
    torch.testing.assert_close(mean[:, 0], s, atol=1e-5, rtol=0)


def test_zero_temperature_mixture_samples_follow_the_most_likely_component():
    prior = tiny(n_components=4)
    s = prior.sample_features(2, 2 * prior.receptive_field, temperature=0.0)
    mean, _, log_weights = prior.predict(s)
    best = log_weights.argmax(1)  # (batch, frames)
    chosen = mean.gather(1, best[:, None, None, :].expand(-1, 1, 16, -1))[:, 0]
    torch.testing.assert_close(chosen, s, atol=1e-5, rtol=0)


def test_sigma_conditioning_changes_the_density():
    prior = tiny(sigma_conditioning=True)
    for p in prior.conditioning.parameters():
        torch.nn.init.normal_(p)
    x = 0.1 * torch.randn(2, 1024)
    a = prior.log_prob(x, torch.zeros(2))
    b = prior.log_prob(x, torch.full((2,), 0.1))
    assert not torch.allclose(a, b)


def test_logmel_centroid_follows_a_sine_and_stft_inverts():
    mel = LogMel(SR, 256, 64, 32)
    t = torch.arange(SR) / SR
    for f0 in (300.0, 1200.0):
        x = torch.sin(2 * math.pi * f0 * t)[None]
        c = mel.centroid_hz(mel(x), SR).item()
        assert abs(c - f0) / f0 < 0.15
    x = torch.randn(2, 1000)
    torch.testing.assert_close(istft(stft(x, 256, 64), 256, 64, 1000), x, atol=1e-5, rtol=0)


def test_source_prior_trains_a_frame_prior():
    from priors.module import SourcePrior

    prior = tiny(sigma_conditioning=True)
    job = SourcePrior(prior, "a", sample_rate=SR, sigma_min=0.001, sigma_max=0.03, warmup_steps=1, media_seconds=0)
    opt = torch.optim.Adam(prior.parameters(), 3e-3)
    torch.manual_seed(1)
    t = torch.arange(2048) / SR
    batch = torch.stack([0.5 * torch.sin(2 * math.pi * 440 * t + p) for p in torch.rand(8) * 6])
    first = last = None
    for step in range(40):
        loss = job.nll(batch, torch.zeros(8))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
    assert last < first - 0.5
    meta = job.describe()
    assert meta["class_path"] == "priors.frame_prior.FramePrior" and meta["noise"]["sigma_max"] == 0.03


def test_magnitude_round_trip_and_generated_waveforms():
    mel = LogMel(SR, 256, 64, 64)
    t = torch.arange(4096) / SR
    x = 0.5 * torch.sin(2 * math.pi * 500 * t)[None]
    back = mel.from_magnitude(mel.to_magnitude(mel(x)) * mel.scale)
    rms = lambda a: a.pow(2).mean().sqrt()  # noqa: E731
    assert abs(rms(back.exp()) / rms(mel(x).exp()) - 1) < 0.2
    prior = tiny()
    wav = prior.generate(2, 2048)
    assert wav.shape == (2, 2048) and torch.isfinite(wav).all()


def test_cached_sampling_draws_exactly_what_teacher_forced_prediction_would():
    # reference: re-run the whole causal stack on the frames drawn so far, draw the next frame
    # from its last position, with the same random stream as the cached sampler
    prior = tiny(n_components=3, sigma_conditioning=True)
    for p in prior.conditioning.parameters():
        torch.nn.init.normal_(p)
    sigma, frames = torch.full((2,), 0.05), 2 * prior.receptive_field
    torch.manual_seed(7)
    cached = prior.sample_features(2, frames, sigma, temperature=0.7)
    torch.manual_seed(7)
    feats = torch.zeros(2, 16, 0)
    for _ in range(frames):
        ctx = torch.cat([feats, torch.zeros(2, 16, 1)], -1)
        last = [t[..., -1:] for t in prior.predict(ctx, sigma)]
        feats = torch.cat([feats, prior.choose(*last, temperature=0.7)], -1)
    torch.testing.assert_close(cached, feats, atol=1e-4, rtol=0)
