"""priorsep teacher-bank: an NMF teacher's estimates of real training mixtures, stored as a bank
that the sleep objective re-mixes (remixing with an NMF teacher)."""
from __future__ import annotations

import json

import numpy as np
import pytest

SR = 8000


def _folder(root):
    import soundfile as sf

    rng = np.random.default_rng(0)
    for subset, track in [("train", "a"), ("train", "b"), ("test", "x")]:
        folder = root / subset / track
        folder.mkdir(parents=True)
        t = np.arange(2 * SR) / SR
        stems = {"high": 0.3 * np.sin(2 * np.pi * 2000 * t + rng.uniform(0, 6)),
                 "low": 0.3 * np.sin(2 * np.pi * 150 * t + rng.uniform(0, 6))}
        for n, a in stems.items():
            sf.write(folder / f"{n}.wav", a, SR, subtype="FLOAT")
        sf.write(folder / "mixture.wav", sum(stems.values()), SR, subtype="FLOAT")
    (root / "dataset.json").write_text(json.dumps({"sources": ["high", "low"], "sample_rate": SR, "mix_scale": 1.0}))


def test_nmf_teacher_bank_separates_real_mixtures_into_a_loadable_bank(tmp_path):
    from separation.cli import main
    from separation.data import BankMixtures

    _folder(tmp_path / "set")
    bank = tmp_path / "bank"
    args = ["teacher-bank", "--root", str(tmp_path / "set"), "--out", str(bank), "--n", "6", "--length", "4000",
            "--nmf-rank", "4", "--quiet"]
    assert main(args) == 0
    settings = json.loads((bank / "settings.json").read_text())
    assert settings["sources"] == ["high", "low"] and settings["n"] == 6 and (bank / "nmf.pt").is_file()
    high, low = np.load(bank / "high.npy"), np.load(bank / "low.npy")
    assert high.shape == low.shape == (6, 4000)
    spec = lambda x: np.abs(np.fft.rfft(x, axis=-1)).mean(0)  # noqa: E731
    f = np.fft.rfftfreq(4000, 1 / SR)
    # the teacher put the 2 kHz tone in "high" and the 150 Hz tone in "low"
    assert spec(high)[np.abs(f - 2000) < 20].max() > 10 * spec(high)[np.abs(f - 150) < 20].max()
    assert spec(low)[np.abs(f - 150) < 20].max() > 10 * spec(low)[np.abs(f - 2000) < 20].max()
    mix, sources = BankMixtures(bank, ["high", "low"], crop_length=2000, epoch_size=3, mix_scale=1.0)[0]
    assert sources.shape == (2, 2000) and np.allclose(mix.numpy(), sources.sum(0).numpy(), atol=1e-6)
    assert main(args) == 2  # refuses to overwrite without --force


def test_teacher_bank_needs_a_dataset_json(tmp_path, capsys):
    from separation.cli import main

    assert main(["teacher-bank", "--root", str(tmp_path), "--out", str(tmp_path / "b")]) == 2
    assert "dataset.json" in capsys.readouterr().err
