"""priorsep teacher-bank: an NMF teacher's estimates of real training mixtures, stored as a bank
that the sleep objective re-mixes (remixing with an NMF teacher)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

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


def test_several_teachers_make_a_bank_of_their_mean_estimates(tmp_path):
    """--teacher nmf SEP: the bank is the mean of the NMF and the separator estimates of the
    same crops (checked against each teacher's own bank); it still adds up to the crops."""
    from separation.checkpoints import FORMAT, save_separator
    from separation.cli import main
    from separation.mask_encoder import MaskEncoder

    _folder(tmp_path / "set")
    args = dict(n_sources=2, n_fft=256, hop=64, hidden=8, lstm_hidden=4, lstm_layers=1)
    meta = {"format": FORMAT, "objective": "sleep", "sources": ["high", "low"], "sample_rate": SR, "mix_scale": 1.0,
            "project": False, "class_path": "separation.mask_encoder.MaskEncoder", "init_args": args, "priors": [],
            "version": "test"}
    save_separator(tmp_path / "sep.pt", MaskEncoder(**args), meta)
    common = ["--root", str(tmp_path / "set"), "--n", "4", "--length", "4000", "--nmf-rank", "4", "--nmf-power", "2",
              "--quiet"]
    banks = {}
    for name, teachers in [("nmf", ["nmf"]), ("sep", [str(tmp_path / "sep.pt")]), ("both", ["nmf", str(tmp_path / "sep.pt")])]:
        assert main(["teacher-bank", "--out", str(tmp_path / name), "--teacher", *teachers, *common]) == 0
        banks[name] = np.stack([np.load(tmp_path / name / f"{s}.npy") for s in ("high", "low")])
    assert torch.load(tmp_path / "nmf" / "nmf.pt")["power"] == 2.0
    assert np.allclose(banks["both"], (banks["nmf"] + banks["sep"]) / 2, atol=1e-5)
    assert not np.allclose(banks["nmf"], banks["sep"], atol=1e-3)
    assert np.allclose(banks["both"].sum(0), banks["nmf"].sum(0), atol=1e-4)  # same crops, still their sum
    assert "nmf + " in json.loads((tmp_path / "both" / "settings.json").read_text())["generator"]
    # a stored bank of the same crops stands in for its teacher (the NMF is not run again) ...
    assert main(["teacher-bank", "--out", str(tmp_path / "reuse"), "--teacher", str(tmp_path / "nmf"),
                 str(tmp_path / "sep.pt"), *common]) == 0
    reused = np.stack([np.load(tmp_path / "reuse" / f"{s}.npy") for s in ("high", "low")])
    assert np.allclose(reused, banks["both"], atol=1e-6) and not (tmp_path / "reuse" / "nmf.pt").exists()
    # ... but a bank of other crops is refused
    assert main(["teacher-bank", "--out", str(tmp_path / "other"), "--teacher", str(tmp_path / "nmf"), *common,
                 "--seed", "1"]) == 2


def test_coherent_bank_items_take_every_source_from_one_example(tmp_path):
    """coherent 1: the sources of an item are (gain-scaled) slices of the same bank example at
    the same offset; coherent 0: independent examples; the mixture is always their sum."""
    from separation.data import BankMixtures

    n, length = 5, 64
    for k, s in enumerate(("a", "b")):  # example i of source k holds the value 10·i + k everywhere
        np.save(tmp_path / f"{s}.npy", (10 * np.arange(n)[:, None] + k + np.zeros((n, length))).astype(np.float32))
    (tmp_path / "settings.json").write_text(json.dumps({"sources": ["a", "b"], "n": n, "length": length}))

    def examples(coherent):
        ds = BankMixtures(tmp_path, ["a", "b"], crop_length=32, epoch_size=40, gain_min=1.0, gain_max=1.0,
                          mix_scale=1.0, coherent=coherent)
        out = []
        for j in range(len(ds)):
            mix, src = ds[j]
            assert torch.allclose(mix, src.sum(0))
            out.append(((src[0, 0] - 0) // 10, (src[1, 0] - 1) // 10))
        return out

    assert all(a == b for a, b in examples(1.0))
    assert sum(a != b for a, b in examples(0.0)) > 20


def test_pooled_banks_draw_from_every_folder_and_keep_items_coherent(tmp_path):
    """A list of bank folders pools their examples: row i runs through the first folder, then the
    next (BankRows); coherent items still take every source from one example of one folder, and
    the draws reach both folders (their examples hold disjoint values)."""
    from separation.data import BankMixtures, BankRows

    folders = []
    for f, (n, length) in enumerate([(3, 64), (4, 80)]):
        d = tmp_path / f"bank{f}"
        d.mkdir()
        for k, s in enumerate(("a", "b")):  # example i of folder f, source k: 100·f + 10·i + k
            np.save(d / f"{s}.npy", (100 * f + 10 * np.arange(n)[:, None] + k + np.zeros((n, length))).astype(np.float32))
        (d / "settings.json").write_text(json.dumps({"sources": ["a", "b"], "n": n, "length": length}))
        folders.append(d)

    rows = BankRows([np.load(f / "a.npy") for f in folders])
    assert len(rows) == 7 and rows.length == 64
    assert [float(rows.row(i)[0]) for i in range(7)] == [0, 10, 20, 100, 110, 120, 130]

    ds = BankMixtures([str(f) for f in folders], ["a", "b"], crop_length=32, epoch_size=200, gain_min=1.0,
                      gain_max=1.0, mix_scale=1.0, coherent=1.0)
    seen = set()
    for j in range(len(ds)):
        mix, src = ds[j]
        assert src.shape == (2, 32) and torch.allclose(mix, src.sum(0))
        assert float(src[1, 0]) - float(src[0, 0]) == 1.0  # same example for both sources
        seen.add(float(src[0, 0]))
    assert seen == {0, 10, 20, 100, 110, 120, 130}
    with pytest.raises(ValueError, match="expected"):
        BankMixtures([str(folders[0]), str(folders[1])], ["a", "c"], crop_length=32)
