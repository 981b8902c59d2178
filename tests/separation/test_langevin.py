"""Langevin's σ levels come from ``priors.noise.NoiseSchedule``; σ used at inference is
checked against the range recorded in the priors' metadata (``check_prior_sigma``)."""
from __future__ import annotations

import pytest

from priors.checkpoint import CheckpointError
from priors.noise import NoiseSchedule, check_prior_sigma
from separation.langevin import LangevinSeparator


def test_langevin_levels_are_the_noise_schedules_geometric_grid():
    sep = LangevinSeparator([], [], 14_700)  # defaults: 10 levels from 0.3 down to 0.01
    assert sep.sigmas == NoiseSchedule(0.01, 0.3).levels(10)
    r = (0.01 / 0.3) ** (1 / 9)
    assert sep.sigmas == [0.3 * r**i for i in range(10)]  # the grid as it was computed before, bit for bit
    assert sep.sigmas[0] == 0.3 and sep.sigmas[-1] == pytest.approx(0.01)
    assert LangevinSeparator([], [], 1, n_levels=1).sigmas == [0.3]  # one level: sigma_max
    custom = LangevinSeparator([], [], 1, n_levels=3, schedule=NoiseSchedule(0.02, 0.08))
    assert custom.sigmas == pytest.approx([0.08, 0.04, 0.02]) and custom.schedule.sigma_max == 0.08
    with pytest.raises(ValueError, match="sigma_min <= sigma_max"):
        LangevinSeparator([], [], 1, sigma_max=0.01, sigma_min=0.3)
    with pytest.raises(ValueError, match="at least one"):
        NoiseSchedule().levels(0)


def test_noise_schedule_round_trips_through_checkpoint_metadata():
    s = NoiseSchedule(0.01, 0.3, 0.5)
    back = NoiseSchedule.from_dict(s.as_dict())
    assert back.as_dict() == s.as_dict() and back.trained_range() == (0.0, 0.3)
    assert NoiseSchedule(0.01, 0.3, 0.0).trained_range() == (0.01, 0.3)


def test_check_prior_sigma():
    metas = [{"source": "sin", "noise": {"sigma_min": 0.01, "sigma_max": 0.1, "p_clean": 0.5}},
             {"source": "saw", "noise": None}]  # a prior without a recorded range is not checked
    for sigma in (0.0, 0.01, 0.05, 0.1):
        check_prior_sigma(sigma, metas)
    with pytest.raises(CheckpointError) as err:
        check_prior_sigma(0.3, metas, where="checkpoints/x")
    assert str(err.value) == "prior_sigma 0.3 is outside the range the priors were trained on [0, 0.1] (checkpoints/x: sin)"
    never_clean = [{"source": "sin", "noise": {"sigma_min": 0.01, "sigma_max": 0.1, "p_clean": 0.0}}]
    with pytest.raises(CheckpointError, match=r"prior_sigma 0 is outside .* \[0.01, 0.1\] \(sin\)"):
        check_prior_sigma(0.0, never_clean)
    assert issubclass(CheckpointError, ValueError)
