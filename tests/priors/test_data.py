import hashlib
import math

import numpy as np
import pytest
import torch

from priors.data import TOY_SOURCES, ToyConfig, ToyDataset, ToyGenerator, toy_waveform


def test_params_follow_the_spec():
    gen = ToyGenerator()
    for i in range(200):
        for name, p in gen.params("train", i).items():
            assert 0.1 <= p.key <= 64.9 and abs(p.key * 10 - round(p.key * 10)) < 1e-9
            assert math.isclose(p.frequency, 440 * 2 ** ((p.key - 49) / 12))
            assert p.period == math.floor(14_700 / p.frequency)
            assert 0 <= p.phase < p.period
            assert 0.8 <= p.amplitude <= 1.0


def test_waveforms_are_periodic_with_the_right_amplitude():
    gen = ToyGenerator()
    x = gen.crop("test", 3)
    p = gen.params("test", 3)
    assert x.shape == (4, 48_000) and x.dtype == np.float32
    for k, name in enumerate(TOY_SOURCES):
        nu = p[name].period
        assert np.allclose(x[k, nu:], x[k, :-nu], atol=1e-5), name
        peak, amp = np.abs(x[k]).max(), p[name].amplitude
        # sampled peaks lie within half a sample of the true one
        lower = {"sin": amp * math.cos(math.pi / nu), "square": amp}.get(name, amp * (1 - 2.0 / nu))
        assert lower - 1e-6 <= peak <= amp + 1e-6, name


def test_crop_equals_slice_of_full_example():
    gen = ToyGenerator()
    full = gen.crop("train", 11)
    assert np.array_equal(gen.crop("train", 11, 1234, 500), full[:, 1234:1734])


def test_mixture_is_the_mean():
    ds = ToyDataset("test", "both", crop_length=256, epoch_size=4, random_crops=False)
    mix, src = ds[2]
    assert torch.allclose(mix, src.mean(0))


def test_test_set_is_deterministic_and_pinned():
    gen = ToyGenerator()
    digest = hashlib.sha256(np.concatenate([gen.crop("test", i, 0, 4096) for i in range(4)]).round(5).tobytes()).hexdigest()
    again = hashlib.sha256(np.concatenate([ToyGenerator().crop("test", i, 0, 4096) for i in range(4)]).round(5).tobytes()).hexdigest()
    assert digest == again
    # the draws themselves are pinned (numpy's PCG64 stream is stable across machines)
    p = gen.params("test", 0)
    assert [(v.key, v.period, v.phase) for v in p.values()] == PINNED_TEST0
    assert not np.array_equal(gen.crop("train", 0, 0, 100), gen.crop("test", 0, 0, 100))


def test_source_mode_and_errors():
    ds = ToyDataset("train", "source", "saw", crop_length=128, epoch_size=3)
    assert ds[0].shape == (128,)
    with pytest.raises(ValueError):
        ToyDataset("train", "source", "violin")
    with pytest.raises(ValueError):
        toy_waveform("violin", 10, 0, np.arange(4))


# (key, period, phase) of every source of test example 0, recorded once: numpy's PCG64 stream is
# stable across machines and versions, so any change here means the test set changed.
PINNED_TEST0 = [(54.3, 24, 5), (35.4, 73, 7), (64.8, 13, 0), (10.3, 312, 99)]


def test_validation_crops_come_from_a_held_out_split_never_the_test_set():
    from priors.data import ToyDataModule
    from separation.data import SeparationDataModule

    gen = ToyGenerator()
    assert gen.size("valid") == 500
    keys = {split: {tuple(p.key for p in gen.params(split, i).values()) for i in range(200)}
            for split in ("train", "valid", "test")}
    assert not keys["valid"] & keys["test"] and not keys["valid"] & keys["train"]
    with pytest.raises(ValueError, match="split"):
        gen.size("dev")
    test_mixes = torch.stack([ToyDataset("test", "mixture", crop_length=256, epoch_size=64, random_crops=False, seed=1)[j]
                              for j in range(64)])
    for dm in (ToyDataModule("both", crop_length=256, batch_size=4, val_crops=4),
               SeparationDataModule("elbo", crop_length=256, batch_size=4, val_crops=4)):
        mix = next(iter(dm.val_dataloader()))[0]
        valid = torch.stack([ToyDataset("valid", "mixture", crop_length=256, epoch_size=4, random_crops=False,
                                        seed=1)[j] for j in range(4)])
        assert torch.allclose(mix, valid)
        assert not any(torch.allclose(m, t) for m in mix for t in test_mixes)
