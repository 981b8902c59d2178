"""The statistics behind ``priorsep diagnose``: they must tell periodic from aperiodic signals
and a prior that knows its source's long-range structure from one that does not."""
import math

import torch

from priors.diagnose import autocorrelation_peak, continuation_statistics, snr_db, spectral_centroid


def test_autocorrelation_peak_tells_periodic_from_noise():
    t = torch.arange(4096, dtype=torch.float32)
    periodic = torch.stack([torch.sin(2 * math.pi * t / 50), torch.sign(torch.sin(2 * math.pi * t / 300))])
    noise = torch.randn(2, 4096, generator=torch.Generator().manual_seed(0))
    assert (autocorrelation_peak(periodic) > 0.9).all()
    assert (autocorrelation_peak(noise) < 0.2).all()


def test_spectral_centroid_of_a_sine_is_its_frequency():
    t = torch.arange(8192, dtype=torch.float32) / 8000
    c = spectral_centroid(torch.sin(2 * math.pi * 1000 * t)[None], 8000)
    assert abs(c.item() - 1000) < 30


def test_snr_db():
    ref = torch.ones(2, 10)
    assert torch.allclose(snr_db(ref * 0.9, ref), torch.full((2,), 20.0))
    assert torch.allclose(snr_db(torch.zeros(2, 10), ref), torch.zeros(2))


class _CopyPrior:
    """An 'autoregressive prior' that continues by repeating the last ``period`` samples."""

    def __init__(self, period):
        self.period = period

    def continue_from(self, prefix, length, sigma=None, temperature=1.0):
        reps = math.ceil(length / self.period)
        return prefix[:, -self.period:].repeat(1, reps)[:, :length]


def test_continuation_scores_a_prior_that_knows_the_period_above_one_that_does_not():
    t = torch.arange(1024, dtype=torch.float32)
    crops = torch.stack([torch.sin(2 * math.pi * (t + phase) / 64) for phase in (0, 7, 21)])
    right = continuation_statistics(_CopyPrior(64), crops, 512)
    wrong = continuation_statistics(_CopyPrior(48), crops, 512)
    assert right["length"] == 512 and right["prefix"] == 512
    assert right["snr_db"] > 60 and right["snr_db_first_64"] > 60
    assert wrong["snr_db"] < 0 < right["snr_db"]


class _RecordingPrior:
    """Scores every sample 0 nats and records what it was asked to score."""

    def __init__(self):
        self.seen = []

    def log_prob(self, x, sigma):
        self.seen.append((x.clone(), sigma.clone()))
        return torch.zeros_like(x)


def test_mean_loglik_adds_the_noise_it_conditions_on_unless_the_crops_already_carry_it():
    from priors.diagnose import mean_loglik

    x = torch.randn(4, 2048, generator=torch.Generator().manual_seed(0))
    prior = _RecordingPrior()
    mean_loglik(prior, x, 0.05, batch_size=4, generator=torch.Generator().manual_seed(1))
    noisy, sigma = prior.seen[-1]
    assert torch.allclose(sigma, torch.full((4,), 0.05))
    assert abs((noisy - x).std().item() - 0.05) < 0.005
    mean_loglik(prior, x, 0.05, batch_size=4, add_noise=False)
    as_is, sigma = prior.seen[-1]
    assert torch.equal(as_is, x) and torch.allclose(sigma, torch.full((4,), 0.05))
