"""The Bach-chorale stem set: split, levels, and a tiny render read back by the stem loader."""
from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
import torch

from priors import chorales
from separation.errors import PriorsepError

STEMS = ["violin", "clarinet", "saxophone", "bassoon"]
SR = 16_000  # not the default: checks that --sample-rate reaches the files


# ----------------------------------------------------------------------------- pure Python
def test_split_is_deterministic_about_20_percent_and_order_free():
    ids = [f"bach/bwv{i}.{j}" for i in range(300) for j in range(1, 4)]
    split = chorales.split_chorales(ids)
    assert split == chorales.split_chorales(ids)
    assert split == chorales.split_chorales(reversed(ids))
    frac = sum(s == "test" for s in split.values()) / len(ids)
    assert 0.16 < frac < 0.24
    # a chorale keeps its split in any subset large enough to need no fix-up
    sub = chorales.split_chorales(ids[::7])
    assert all(sub[c] == split[c] for c in sub)


@pytest.mark.parametrize("n", range(1, 16))
def test_split_small_sets_have_both_splits(n):
    ids = [f"bach/bwv{260 + i}" for i in range(n)]
    split = chorales.split_chorales(ids)
    assert set(split) == set(ids)
    n_test = sum(s == "test" for s in split.values())
    if n == 1:
        assert n_test == 0
    else:
        assert 1 <= n_test <= n - 1


def test_tempo_map_and_gains():
    tm = chorales.TempoMap([], default_bpm=100)
    assert tm.seconds(10) == pytest.approx(6.0)
    tm = chorales.TempoMap([(0.0, 60.0), (4.0, 120.0)])
    assert tm.seconds(4) == pytest.approx(4.0) and tm.seconds(8) == pytest.approx(6.0)
    tm = chorales.TempoMap([(2.0, 120.0)], default_bpm=60)  # default until the first mark
    assert tm.seconds(2) == pytest.approx(2.0) and tm.seconds(4) == pytest.approx(3.0)
    g = chorales.stem_gains("bach/bwv269", seed=0)
    assert g == chorales.stem_gains("bach/bwv269", seed=0) != chorales.stem_gains("bach/bwv269", seed=1)
    assert list(g) == STEMS and all(0.7 <= v <= 1.0 for v in g.values())


def test_mix_stems_sum_and_peak():
    rng = np.random.default_rng(0)
    parts = {s: rng.normal(0, 0.01 * (i + 1), 1000 + 10 * i).astype(np.float32) for i, s in enumerate(STEMS)}
    audio, scale = chorales.mix_stems(parts, {s: 0.8 for s in STEMS})
    assert {len(a) for a in audio.values()} == {1030}
    assert np.abs(audio["mixture"]).max() == pytest.approx(0.99, abs=1e-6)
    np.testing.assert_allclose(sum(audio[s] for s in STEMS), audio["mixture"], atol=1e-6)
    assert all(a.dtype == np.float32 for a in audio.values()) and scale > 0


def test_missing_soundfont_is_a_user_error(tmp_path):
    with pytest.raises(chorales.ChoraleError, match="not found"):
        chorales.find_soundfont(tmp_path / "none.sf2")
    args = _args(tmp_path / "out", soundfont=str(tmp_path / "none.sf2"))
    pytest.importorskip("music21")
    pytest.importorskip("pretty_midi")
    with pytest.raises(PriorsepError, match="soundfont"):
        _run(args)


# ----------------------------------------------------------------------------- a tiny render
def _args(out, **kw):
    from separation.commands import make_chorales

    parser = argparse.ArgumentParser()
    make_chorales.add_arguments(parser)
    argv = ["--out", str(out), "--n", "2", "--max-seconds", "3", "--sample-rate", str(SR), "--quiet"]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return parser.parse_args(argv)


def _run(args):
    from separation.commands import make_chorales

    return make_chorales.run(args)


def _need_renderer():
    pytest.importorskip("music21", reason="music21 is not installed (pip install music21)")
    pytest.importorskip("pretty_midi", reason="pretty_midi is not installed (pip install pretty_midi)")
    if shutil.which("fluidsynth") is None:
        pytest.skip("the fluidsynth program is not installed (apt-get install fluidsynth)")
    try:
        chorales.find_soundfont()
    except chorales.ChoraleError:
        pytest.skip("no GM soundfont installed (apt-get install timgm6mb-soundfont)")


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    _need_renderer()
    out = tmp_path_factory.mktemp("chorales")
    assert _run(_args(out)) == 0
    return out


def _read(track):
    import soundfile as sf

    audio = {}
    for name in ["mixture", *STEMS]:
        x, sr = sf.read(track / f"{name}.wav", dtype="float32", always_2d=True)
        assert sr == SR and x.shape[1] == 1 and sf.info(str(track / f"{name}.wav")).subtype == "FLOAT"
        audio[name] = x[:, 0]
    return audio


def test_render_layout_levels_and_metadata(tiny_set):
    from priors.data import list_tracks

    train, test = list_tracks(tiny_set, "train"), list_tracks(tiny_set, "test")
    assert len(train) >= 1 and len(test) >= 1 and len(train) + len(test) == 2
    for track in train + test:
        a = _read(track)
        assert len({len(x) for x in a.values()}) == 1
        assert 3.0 * SR < len(a["mixture"]) < 6.0 * SR  # --max-seconds 3, plus the release tail
        np.testing.assert_allclose(sum(a[s] for s in STEMS), a["mixture"], atol=1e-5)
        assert np.abs(a["mixture"]).max() <= 0.99 + 1e-6
        for s in STEMS:
            assert np.sqrt(np.mean(a[s] ** 2)) > 1e-3, f"{track.name}/{s} is silent"
        assert not list(track.glob(".*"))  # no temporary files left
    meta = json.loads((tiny_set / "chorales.json").read_text())
    assert meta["sample_rate"] == SR and meta["sources"] == STEMS and meta["complete"]
    assert meta["n_train"] == len(train) and meta["n_test"] == len(test)
    by_track = {t["track"]: t for t in meta["tracks"]}
    assert set(by_track) == {p.name for p in train + test}
    for t in meta["tracks"]:
        assert t["chorale"].startswith("bach/") and (tiny_set / t["split"] / t["track"]).is_dir()
        assert set(t["gains"]) == set(STEMS)
    assert json.loads((tiny_set / "dataset.json").read_text())["mix_scale"] == 1.0


def test_rerun_skips_complete_tracks_and_refuses_other_settings(tiny_set, capsys):
    stamps = {p: p.stat().st_mtime_ns for p in tiny_set.glob("*/*/*.wav")}
    report = chorales.build(tiny_set, sample_rate=SR, n=2, max_seconds=3)
    assert report.rendered == 0 and report.skipped == 2
    assert {p: p.stat().st_mtime_ns for p in tiny_set.glob("*/*/*.wav")} == stamps
    with pytest.raises(PriorsepError, match="other settings"):
        _run(_args(tiny_set, sample_rate=22_050))


def test_stem_folder_dataset_reads_it_back(tiny_set):
    from priors.data import StemFolderDataset

    ds = StemFolderDataset(tiny_set, "test", STEMS, mode="both", crop_length=4096, epoch_size=4,
                           sample_rate=SR, random_crops=False, mix_scale=1.0)
    energy = 0.0
    for j in range(len(ds)):
        mix, src = ds[j]
        assert src.shape == (4, 4096) and mix.shape == (4096,)
        np.testing.assert_allclose(mix.numpy(), src.sum(0).numpy(), atol=1e-5)
        energy += float(mix.pow(2).mean())
    assert energy > 0  # (a crop may fall in the release tail, so not every one is loud)
    # the written mixture file is the same sum
    import soundfile as sf

    from priors.data import list_tracks
    track = list_tracks(tiny_set, "test")[0]
    mix_file, _ = sf.read(track / "mixture.wav", dtype="float32")
    np.testing.assert_allclose(mix_file, sum(sf.read(track / f"{s}.wav", dtype="float32")[0] for s in STEMS), atol=1e-5)


def test_only_split_renders_that_split_with_the_same_split_and_gains(tiny_set, tmp_path):
    from priors.data import StemFolderDataset

    meta = json.loads((tiny_set / "chorales.json").read_text())
    report = chorales.build(tmp_path, sample_rate=SR, n=2, max_seconds=3, only_split="test")
    assert {t["split"] for t in report.tracks} == {"test"}
    want = {t["track"]: t["gains"] for t in meta["tracks"] if t["split"] == "test"}
    assert {t["track"]: t["gains"] for t in report.tracks} == want
    assert not (tmp_path / "train").exists()
    # per-stem random gains of StemFolderDataset: the mixture stays the sum of the scaled stems
    ds = StemFolderDataset(tmp_path, "test", STEMS, mode="both", crop_length=4096, epoch_size=4, sample_rate=SR,
                           gain_min=0.5, gain_max=1.5)
    plain = StemFolderDataset(tmp_path, "test", STEMS, mode="both", crop_length=4096, epoch_size=4, sample_rate=SR)
    mix, src = ds[0]
    _, ref = plain[0]
    np.testing.assert_allclose(mix.numpy(), src.sum(0).numpy(), atol=1e-5)
    ratio = src.pow(2).sum(1).sqrt() / ref.pow(2).sum(1).sqrt().clamp_min(1e-9)
    assert ((ratio > 0.5 - 1e-4) & (ratio < 1.5 + 1e-4)).all() and not torch.allclose(src, ref)
    with pytest.raises(chorales.ChoraleError):
        chorales.build(tmp_path, sample_rate=SR, n=2, only_split="valid")
