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
    mean, log_std = prior.predict(feats)
    n = 30
    (mean[0, :, n].sum() + log_std[0, :, n].sum()).backward()
    g = feats.grad[0].abs().sum(0)
    assert torch.all(g[n:] == 0), "frame n must not see frames >= n"
    assert g[n - 1] > 0 and g[n - rf] > 0
    assert torch.all(g[: n - rf] == 0)


def test_log_prob_is_the_gaussian_density_per_bin():
    prior = tiny()
    feats = torch.randn(2, 16, 12)
    mean, log_std = prior.predict(feats)
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(feats).mean(1)
    torch.testing.assert_close(prior.log_prob_features(feats), expected)


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
    mean, _ = prior.predict(s)
    torch.testing.assert_close(mean, s, atol=1e-5, rtol=0)


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
