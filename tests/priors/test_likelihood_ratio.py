"""Background priors: the likelihood-ratio score, its loading from a manifest, and the data of
a background prior (one random instrument per crop)."""
import math

import numpy as np
import pytest
import torch

from priors.checkpoint import CheckpointError, describe_prior, load_priors, save_prior, write_manifest
from priors.frame_prior import FramePrior
from priors.likelihood_ratio import LikelihoodRatio

SR = 8000
SOURCES = ["low", "high"]


def tiny(seed):
    torch.manual_seed(seed)
    return FramePrior(sample_rate=SR, n_fft=256, hop=64, n_mels=16, channels=8, n_layers=2, n_components=2)


@pytest.fixture
def ratio_dir(tmp_path):
    for i, name in enumerate(SOURCES + ["background"]):
        m = tiny(i)
        save_prior(tmp_path / f"{name}.pt", m, describe_prior(m, name, SR))
    write_manifest(tmp_path, SOURCES, SR, background="background.pt")
    return tmp_path


def test_ratio_is_the_source_prior_minus_the_background_and_samples_are_the_source_priors():
    prior, background = tiny(0), tiny(1)
    ratio = LikelihoodRatio(prior, background)
    x = 0.1 * torch.randn(2, 1024)
    torch.testing.assert_close(ratio.log_prob(x), prior.log_prob(x) - background.log_prob(x))
    assert ratio.receptive_field == prior.receptive_field and ratio.features is prior.features
    torch.manual_seed(3)
    a = ratio.sample_features(1, 5, temperature=1.0)
    torch.manual_seed(3)
    torch.testing.assert_close(a, prior.sample_features(1, 5, temperature=1.0))
    # differentiable in the waveform (the ELBO scores estimates through it)
    y = x.clone().requires_grad_()
    ratio.log_prob(y).sum().backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_bounded_ratio_is_the_score_against_the_half_half_mixture_and_at_most_log_2_per_frame():
    prior, background = tiny(0), tiny(1)
    bounded = LikelihoodRatio(prior, background, bounded=True)
    x = 0.1 * torch.randn(2, 1024)
    lp, lb = prior.log_prob(x) * 16, background.log_prob(x) * 16  # whole-frame log-densities (16 bins)
    expected = (lp - torch.logaddexp(lp, lb) + math.log(2)) / 16
    torch.testing.assert_close(bounded.log_prob(x), expected)
    assert torch.all(bounded.log_prob(x) <= math.log(2) / 16 + 1e-6)
    # far from the data the plain ratio can grow without bound; the bounded one cannot
    loud = 50 * torch.randn(2, 1024)
    assert bounded.log_prob(loud).max() <= math.log(2) / 16 + 1e-6


def test_a_manifest_background_wraps_every_prior_and_is_recorded(ratio_dir):
    models, metas = load_priors(ratio_dir, sources=SOURCES)
    assert [m["source"] for m in metas] == SOURCES and all(isinstance(m, LikelihoodRatio) for m in models)
    assert len({m["background_hash"] for m in metas}) == 1 and models[0].background is models[1].background
    plain, plain_metas = load_priors(ratio_dir, ratio=False)
    assert not any(isinstance(m, LikelihoodRatio) for m in plain) and "background_hash" not in plain_metas[0]
    x = 0.1 * torch.randn(1, 512)
    torch.testing.assert_close(models[1].log_prob(x), plain[1].log_prob(x) - models[1].background.log_prob(x))
    write_manifest(ratio_dir, SOURCES, SR, background="background.pt", bounded=True)
    assert all(m.bounded for m in load_priors(ratio_dir)[0]) and not models[0].bounded
    (ratio_dir / "background.pt").unlink()
    with pytest.raises(CheckpointError, match="background"):
        load_priors(ratio_dir)


def test_any_mode_yields_one_whole_stem_of_a_random_source_per_crop(tmp_path):
    import soundfile as sf

    from priors.data import StemDataModule, StemFolderDataset

    t = np.arange(SR * 2) / SR
    tones = {"low": 0.5 * np.sin(2 * np.pi * 200 * t), "high": 0.3 * np.sin(2 * np.pi * 2000 * t)}
    for split in ("train", "test"):
        track = tmp_path / split / "a"
        track.mkdir(parents=True)
        for name, x in tones.items():
            sf.write(track / f"{name}.wav", x.astype(np.float32), SR)
        sf.write(track / "mixture.wav", sum(tones.values()).astype(np.float32), SR)
    ds = StemFolderDataset(tmp_path, "train", SOURCES, mode="any", crop_length=1024, epoch_size=40, seed=1)
    seen = []
    for j in range(len(ds)):
        crop = ds[j]
        assert crop.shape == (1024,)
        spectrum = np.abs(np.fft.rfft(crop.numpy()))
        peak_hz = np.argmax(spectrum) * SR / 1024
        seen.append("low" if abs(peak_hz - 200) < 20 else "high" if abs(peak_hz - 2000) < 20 else "mixed")
        assert abs(float(crop.pow(2).mean().sqrt()) - (0.5 if seen[-1] == "low" else 0.3) / np.sqrt(2)) < 0.02
    assert set(seen) == {"low", "high"}  # both sources are drawn, never their sum
    # mixture_share: that fraction of the crops is the sum of the stems (both tones at once)
    mixed = StemFolderDataset(tmp_path, "train", SOURCES, mode="any", crop_length=1024, epoch_size=200, seed=2,
                              mixture_share=0.3)
    both = 0
    for j in range(len(mixed)):
        spectrum = np.abs(np.fft.rfft(mixed[j].numpy()))
        low, high = spectrum[int(200 * 1024 / SR)], spectrum[int(2000 * 1024 / SR)]
        both += bool(min(low, high) > 0.3 * max(low, high))
    assert 0.2 < both / len(mixed) < 0.4
    fixed = StemFolderDataset(tmp_path, "test", SOURCES, mode="any", crop_length=1024, epoch_size=4, random_crops=False)
    assert all(torch.equal(fixed[j], fixed[j]) for j in range(4))
    dm = StemDataModule(str(tmp_path), SOURCES, mode="any", sample_rate=SR, crop_length=1024, batch_size=2,
                        train_crops=4, val_crops=2)
    assert next(iter(dm.val_dataloader())).shape == (2, 1024)
    with pytest.raises(ValueError, match="mode"):
        StemFolderDataset(tmp_path, "train", SOURCES, mode="sum", crop_length=1024)
    with pytest.raises(ValueError, match="mixture_share"):
        StemFolderDataset(tmp_path, "train", SOURCES, mode="source", source="low", crop_length=1024, mixture_share=0.2)


@pytest.mark.parametrize("bounded", [False, True])
def test_ratio_cross_likelihood_scores_the_background_once_and_matches_the_ratio_priors(bounded):
    """diagnose's fast path (the background scored once per column) gives the matrices of the
    ratio priors themselves, noise draws included; bounded ratios are scored as they are."""
    from priors.diagnose import cross_likelihood, ratio_cross_likelihood

    background = tiny(2)
    priors = [LikelihoodRatio(tiny(i), background, bounded) for i in range(2)]
    g = torch.Generator().manual_seed(0)
    data = {"a": 0.1 * torch.randn(3, 1024, generator=g), "b": 0.3 * torch.randn(3, 1024, generator=g)}
    calls = []
    background.log_prob = lambda x, sigma=None, f=background.log_prob: calls.append(1) or f(x, sigma)
    ratio, raw = ratio_cross_likelihood(priors, data, [0.0, 0.05], seed=3, batch_size=2)
    calls_fast = len(calls)
    want = cross_likelihood(priors, data, [0.0, 0.05], seed=3, batch_size=2)
    want_raw = cross_likelihood([p.prior for p in priors], data, [0.0, 0.05], seed=3, batch_size=2)
    np.testing.assert_allclose(np.array(ratio), np.array(want), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.array(raw), np.array(want_raw), rtol=1e-6, atol=1e-6)
    # 2 σ × 2 columns × 2 batches: once per column without a bound, once per prior and column with one
    assert calls_fast == (16 if bounded else 8)
