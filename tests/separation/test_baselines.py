import math

import torch

from separation.baselines import NMFSeparator, oracle_ratio_mask
from separation.langevin import LangevinSeparator
from separation.metrics import si_sdr


def _tones(n, length, freq, sr=8000, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / sr
    phase = torch.rand(n, 1, generator=g) * 2 * math.pi
    amp = 0.5 + 0.5 * torch.rand(n, 1, generator=g)
    return amp * torch.sin(2 * math.pi * freq * t + phase)


def test_nmf_separates_spectrally_distinct_sources():
    train = [_tones(4, 8192, 220, seed=1), _tones(4, 8192, 1760, seed=2)]
    sep = NMFSeparator(["low", "high"], 8000, mix_scale=1.0, rank=4, n_fft=512, hop=128, n_iter=100).fit(train)
    refs = torch.stack([_tones(3, 8192, 220, seed=3), _tones(3, 8192, 1760, seed=4)], 1)
    mix = refs.sum(1)
    est = sep(mix)
    gain = si_sdr(est, refs) - si_sdr(mix.unsqueeze(1).expand_as(refs), refs)
    assert est.shape == refs.shape and gain.mean() > 10, gain


def test_oracle_mask_scores_high_and_masks_sum_to_one():
    refs = torch.stack([_tones(2, 8192, 300, seed=5), _tones(2, 8192, 2000, seed=6)], 1)
    mix = refs.sum(1)
    est = oracle_ratio_mask(mix, refs)
    assert torch.allclose(est.sum(1), mix, atol=1e-4)
    assert si_sdr(est, refs).mean() > 20


class _Gauss(torch.nn.Module):
    def __init__(self, var):
        super().__init__()
        self.var = var

    def log_prob(self, x, sigma):
        v = self.var + sigma.reshape(-1, 1) ** 2
        return -0.5 * x**2 / v - 0.5 * torch.log(2 * math.pi * v)


def test_langevin_recovers_the_posterior_mean_of_a_gaussian_model():
    """Two Gaussian priors (var 1 and 0.1): the average of many Langevin chains approaches
    the exact posterior mean v_k·m/Σv under the exact constraint Σ s = m."""
    torch.manual_seed(0)
    mix = torch.randn(1, 32).repeat(64, 1)  # 64 chains on one mixture
    sep = LangevinSeparator([_Gauss(1.0), _Gauss(0.1)], ["a", "b"], 8000, sigma_max=0.3, sigma_min=0.05,
                            n_levels=4, steps_per_level=100, step_size=0.5, mixture_weight=1.0, project=True)
    est = sep(mix)
    assert est.shape == (64, 2, 32)
    assert torch.allclose(est.sum(1), mix, atol=1e-5)
    exact = torch.stack([mix[0] * 1.0 / 1.1, mix[0] * 0.1 / 1.1])
    assert (est.mean(0) - exact).abs().mean() < 0.1, (est.mean(0) - exact).abs().mean()


def test_nmf_templates_save_and_load(tmp_path):
    train = [_tones(2, 4096, 220, seed=1), _tones(2, 4096, 1760, seed=2)]
    sep = NMFSeparator(["low", "high"], 8000, mix_scale=0.5, rank=3, n_fft=256, hop=64, n_iter=20, seed=1,
                       power=2.0).fit(train)
    sep.save(tmp_path / "nmf.pt", crops={"low": 2, "high": 2})
    back = NMFSeparator.load(tmp_path / "nmf.pt", mix_scale=0.5, seed=1)
    assert (back.sources, back.sample_rate, back.rank, back.n_fft, back.hop, back.n_iter, back.power) == \
        (["low", "high"], 8000, 3, 256, 64, 20, 2.0)
    assert torch.load(tmp_path / "nmf.pt")["crops"] == {"low": 2, "high": 2}
    mix = _tones(2, 2048, 220, seed=3) + _tones(2, 2048, 1760, seed=4)
    assert torch.equal(back(mix), sep(mix))


def test_mixture_separator_and_oracle_mask_object():
    from separation.baselines import MixtureSeparator, OracleRatioMask

    refs = torch.stack([_tones(2, 4096, 300, seed=5), _tones(2, 4096, 2000, seed=6)], 1)
    mix = refs.sum(1)
    assert torch.equal(MixtureSeparator(["a", "b"])(mix), torch.stack([mix / 2, mix / 2], 1))
    assert torch.equal(OracleRatioMask(["a", "b"], 0.5)(mix, refs), oracle_ratio_mask(mix, refs, 0.5))


def test_nmf_mask_power_keeps_the_sum_and_sharpens_the_masks():
    """power p: masks V_k^p / Σ V_j^p still sum to one (estimates add up to the mixture); on
    overlapping tones a larger p gives each bin more to its dominant source (sharper masks)."""
    train = [_tones(4, 8192, 220, seed=1), _tones(4, 8192, 330, seed=2)]
    ratio = NMFSeparator(["a", "b"], 8000, rank=4, n_fft=256, hop=64, n_iter=60).fit(train)
    wiener = NMFSeparator(["a", "b"], 8000, rank=4, n_fft=256, hop=64, n_iter=60, power=2.0)
    wiener.templates = ratio.templates
    refs = torch.stack([_tones(2, 8192, 220, seed=3), _tones(2, 8192, 330, seed=4)], 1)
    mix = refs.sum(1)
    e1, e2 = ratio(mix), wiener(mix)
    assert torch.allclose(e2.sum(1), mix, atol=1e-5) and torch.allclose(e1.sum(1), mix, atol=1e-5)
    assert not torch.allclose(e1, e2, atol=1e-3)
    assert si_sdr(e2, refs).mean() > si_sdr(e1, refs).mean()
