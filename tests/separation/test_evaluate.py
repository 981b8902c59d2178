"""MUSDB evaluation (``priorsep evaluate``) and the MUSDB data module on a tiny synthetic
MUSDB18-HQ folder: ``ROOT/<subset>/<track>/{mixture,vocals,drums,bass,other}.wav``, 44.1 kHz
stereo 16-bit PCM like the real set, mixture = sum of the stems. Two scored targets keep
museval's fixed cost (its 512-tap filter system grows with targets²) small."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

SR = 44_100
STEMS = ("vocals", "drums", "bass", "other")
TARGETS = ["vocals", "bass"]


def fake_stems(seconds: float, seed: int) -> dict[str, np.ndarray]:
    """Four spectrally distinct stereo stems (time, 2), peaks well below 1."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = rng.uniform(220, 440)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / SR
    vocals = 0.12 * sum(np.sin(h * phase) / h for h in range(1, 6))
    drums = np.zeros(n)
    for start in range(0, n, SR // 4):
        k = np.arange(min(n - start, SR // 8))
        drums[start:start + len(k)] = 0.2 * rng.standard_normal(len(k)) * np.exp(-k / 800)
    bass = 0.2 * np.sin(2 * np.pi * rng.uniform(50, 90) * t)
    other = 0.05 * np.convolve(rng.standard_normal(n), np.hanning(16), mode="same") * np.sin(2 * np.pi * 0.7 * t) ** 2
    gains = {"vocals": (1.0, 1.0), "drums": (0.8, 1.0), "bass": (1.0, 0.9), "other": (0.6, 1.0)}
    mono = {"vocals": vocals, "drums": drums, "bass": bass, "other": other}
    return {s: np.stack([mono[s] * gains[s][0], mono[s] * gains[s][1]], axis=1) for s in STEMS}


def write_fake_musdb(root: Path, tracks: dict[str, list[str]], seconds: float = 3.0,
                     silent: dict[str, tuple[str, float, float]] | None = None) -> Path:
    """Tracks ``{subset: [names]}``; ``silent[name] = (stem, start_s, end_s)`` zeroes a stem there."""
    import soundfile as sf

    silent = silent or {}
    for s_index, (subset, names) in enumerate(sorted(tracks.items())):
        for i, name in enumerate(names):
            stems = fake_stems(seconds, 100 * s_index + i)
            if name in silent:
                stem, a, b = silent[name]
                stems[stem][int(a * SR):int(b * SR)] = 0.0
            stems = {k: np.round(v * 32768) / 32768 for k, v in stems.items()}  # exact in PCM16
            folder = Path(root) / subset / name
            folder.mkdir(parents=True, exist_ok=True)
            for stem, audio in stems.items():
                sf.write(folder / f"{stem}.wav", audio, SR, subtype="PCM_16")
            sf.write(folder / "mixture.wav", sum(stems.values()), SR, subtype="PCM_16")
    return Path(root)


@pytest.fixture(scope="module")
def musdb_root(tmp_path_factory):
    return write_fake_musdb(tmp_path_factory.mktemp("musdb"), {"test": ["A - one", "B - two"],
                                                               "train": ["C - three", "D - four"]})


def evaluate_args(root, out, *extra):
    from separation.commands.evaluate import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--root", str(root), "--is-wav", "--out", str(out), "--quiet", *extra])


def run_evaluate(root, out, *extra) -> dict:
    from separation.commands.evaluate import run

    assert run(evaluate_args(root, out, *extra)) == 0
    return json.loads((Path(out) / "summary.json").read_text())


@pytest.fixture(scope="module")
def irm_run(musdb_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("irm")
    return out, run_evaluate(musdb_root, out, "--baseline", "irm", "--targets", *TARGETS)


# ---------------------------------------------------------------------------- end to end
def test_irm_beats_mix_and_summary_has_the_keys(musdb_root, irm_run, tmp_path, capsys):
    out, irm = irm_run
    mix = run_evaluate(musdb_root, tmp_path / "mix", "--baseline", "mix", "--targets", *TARGETS)
    for s in (irm, mix):
        assert {"targets", "n_tracks", "seconds"} <= set(s) and s["n_tracks"] == 2
        assert set(s["targets"]) == set(TARGETS) and s["seconds"] > 0
    for t in TARGETS:
        assert irm["targets"][t] > mix["targets"][t] + 3, (t, irm["targets"], mix["targets"])
    # museval's own per-track JSON, in its layout
    scores = json.loads((out / "test" / "A - one.json").read_text())
    assert {t["name"] for t in scores["targets"]} == set(TARGETS)
    assert len(scores["targets"][0]["frames"]) == 3 and "SIR" in scores["targets"][0]["frames"][0]["metrics"]
    assert "| vocals |" in capsys.readouterr().out


def test_workers_give_the_same_scores(musdb_root, irm_run, tmp_path):
    out1, one = irm_run
    two = run_evaluate(musdb_root, tmp_path, "--baseline", "irm", "--targets", *TARGETS, "--workers", "2")
    # scores are computed with one BLAS thread in every process: the same bytes
    for name in ("A - one", "B - two"):
        assert (tmp_path / "test" / f"{name}.json").read_text() == (out1 / "test" / f"{name}.json").read_text()
    assert two["targets"] == one["targets"] and two["tracks"] == one["tracks"]


def test_rerun_reads_scored_tracks_back(musdb_root, irm_run, monkeypatch):
    from separation import evaluate as ev

    out, first = irm_run
    files = sorted((out / "test").glob("*.json"))
    stamps = [f.stat().st_mtime_ns for f in files]
    calls = []
    monkeypatch.setattr(ev.TrackWorker, "__call__", lambda self, i: calls.append(i))
    again = run_evaluate(musdb_root, out, "--baseline", "irm", "--targets", *TARGETS)
    assert calls == [] and [f.stat().st_mtime_ns for f in files] == stamps
    assert again["targets"] == first["targets"]
    # a lost track is recomputed, and only that one
    (out / "test" / "B - two.json").unlink()
    monkeypatch.undo()
    run_evaluate(musdb_root, out, "--baseline", "irm", "--targets", *TARGETS)
    assert (out / "test" / "B - two.json").is_file() and files[0].stat().st_mtime_ns == stamps[0]


def test_results_of_another_method_are_not_mixed_in(musdb_root, irm_run):
    from separation.commands.evaluate import run
    from separation.errors import PriorsepError

    out, _ = irm_run
    with pytest.raises(PriorsepError, match="another evaluation"):
        run(evaluate_args(musdb_root, out, "--baseline", "mix", "--targets", *TARGETS))


def test_silent_stems_give_finite_or_null_medians(tmp_path):
    root = write_fake_musdb(tmp_path / "musdb", {"test": ["Silent - all", "Silent - half"]}, seconds=3.0,
                            silent={"Silent - all": ("vocals", 0, 3), "Silent - half": ("vocals", 0, 1.5)})
    summary = run_evaluate(root, tmp_path / "out", "--baseline", "irm", "--targets", *TARGETS)
    assert summary["tracks"]["Silent - all"]["vocals"] is None  # no finite frame: null, not NaN
    assert np.isfinite(summary["tracks"]["Silent - all"]["bass"])
    assert np.isfinite(summary["targets"]["vocals"]) and np.isfinite(summary["targets"]["bass"])
    # the fully silent track alone: its vocals median is null, nothing crashes
    only = write_fake_musdb(tmp_path / "only", {"test": ["Silent - all"]}, silent={"Silent - all": ("vocals", 0, 3)})
    summary = run_evaluate(only, tmp_path / "out_only", "--baseline", "mix", "--targets", *TARGETS, "--fast")
    assert summary["targets"]["vocals"] is None and np.isfinite(summary["targets"]["bass"])
    assert "null" in (tmp_path / "out_only" / "summary.json").read_text()


def test_fast_metric_reports_agreement_with_museval(musdb_root, irm_run, tmp_path):
    _, museval_run = irm_run
    fast = run_evaluate(musdb_root, tmp_path, "--baseline", "irm", "--targets", *TARGETS, "--fast")
    agreement = fast["fast_vs_museval"]
    assert agreement["track"] == "A - one"
    assert agreement["museval"] == pytest.approx(museval_run["tracks"]["A - one"], abs=1e-4)
    for t in TARGETS:
        assert agreement["difference_db"][t] == pytest.approx(agreement["fast"][t] - agreement["museval"][t], abs=1e-4)
        assert abs(agreement["difference_db"][t]) < 3  # good estimates: the two metrics agree roughly
    assert (tmp_path / "test" / "A - one.fast.json").is_file() and not (tmp_path / "test" / "A - one.json").exists()


def _tiny_separator_file(path, sources, mix_scale=1.0):
    from separation.checkpoints import FORMAT, save_separator
    from separation.encoder import WaveNetEncoder

    torch.manual_seed(0)
    args = dict(n_sources=len(sources), n_layers=2, n_stacks=1, channels=4)
    meta = {"format": FORMAT, "objective": "sleep", "sources": list(sources), "sample_rate": 22_050,
            "mix_scale": mix_scale, "project": True, "class_path": "separation.encoder.WaveNetEncoder",
            "init_args": args, "priors": [], "version": "test"}
    save_separator(path, WaveNetEncoder(**args), meta)
    return path


def test_model_sources_map_to_targets(musdb_root, tmp_path):
    import soundfile as sf

    from separation.commands.evaluate import run
    from separation.errors import PriorsepError
    from separation.scoring import framewise_sdr

    # an untrained encoder with projection returns every source = mixture / (K · mix_scale);
    # rescaled by mix_scale into mixture units that is mixture / 2, up to the 22.05 kHz band limit
    model = _tiny_separator_file(tmp_path / "sep.pt", ["vocals", "bass"], mix_scale=0.5)
    got = run_evaluate(musdb_root, tmp_path / "model", "--model", str(model), "--fast", "--chunk-seconds", "1")
    track = musdb_root / "test" / "A - one"
    refs = np.stack([sf.read(track / f"{t}.wav")[0] for t in ("vocals", "bass")])
    half = np.stack([sf.read(track / "mixture.wav")[0] / 2] * 2)
    want = np.median(framewise_sdr(refs, half, SR), axis=1)
    assert [got["tracks"]["A - one"][t] for t in ("vocals", "bass")] == pytest.approx(want, abs=0.2)
    toy = _tiny_separator_file(tmp_path / "toy.pt", ["sin", "square"])
    with pytest.raises(PriorsepError, match="not MUSDB targets") as err:
        run(evaluate_args(musdb_root, tmp_path / "toy", "--model", str(toy)))
    assert "\n" not in str(err.value)
    with pytest.raises(PriorsepError, match="not among"):
        run(evaluate_args(musdb_root, tmp_path / "t", "--model", str(model), "--targets", "drums"))
    with pytest.raises(PriorsepError, match="no MUSDB tracks"):
        run(evaluate_args(tmp_path, tmp_path / "none", "--baseline", "mix"))


# ---------------------------------------------------------------------------- pieces
def test_framewise_sdr_matches_the_definition_and_museval_framing():
    from separation.scoring import frame_slices, framewise_sdr

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 2500, 2))
    est = ref + 0.1 * rng.standard_normal(ref.shape)  # ≈ 20 dB
    sdr = framewise_sdr(ref, est, 1000)
    assert sdr.shape == (2, 2) and np.allclose(sdr, 20, atol=1)  # trailing 500 samples dropped, as museval
    ref[0, 1000:2000] = 0
    sdr = framewise_sdr(ref, est, 1000)
    assert np.isnan(sdr[:, 1]).all() and np.isfinite(sdr[:, 0]).all()  # a silent reference blanks the frame
    assert frame_slices(10, 20, 20) == [slice(0, 10)]


def test_medians_skip_nan_frames_and_tracks():
    from separation.result_store import aggregate, store_medians

    store = {"targets": [{"name": "vocals", "frames": [{"metrics": {"SDR": v}} for v in (1.0, float("nan"), 3.0, None)]},
                         {"name": "bass", "frames": [{"metrics": {"SDR": float("nan")}}]}]}
    m = store_medians(store)
    assert m["vocals"] == 2.0 and np.isnan(m["bass"])
    agg = aggregate({"a": m, "b": {"vocals": 4.0, "bass": float("nan")}}, ["vocals", "bass"])
    assert agg == {"vocals": 3.0, "bass": None}


def test_ideal_ratio_mask_on_whole_stereo_tracks():
    """evaluate's IRM is the benchmark's (one implementation): float64 (time, channels) musdb
    arrays, channels as the batch, float32 out, the same numbers as one channel at a time."""
    from separation.baselines import oracle_ratio_mask

    rng = np.random.default_rng(1)
    sources = rng.standard_normal((3, 2, 8000))  # (stems, channels, time) float64
    mix = sources.sum(0)
    got = oracle_ratio_mask(torch.from_numpy(mix), torch.from_numpy(sources).transpose(0, 1)).transpose(0, 1)
    assert got.shape == (3, 2, 8000) and got.dtype == torch.float32
    assert np.allclose(got.sum(0).numpy(), mix, atol=1e-4)  # masks sum to one
    one = oracle_ratio_mask(torch.from_numpy(mix[1:]).float(), torch.from_numpy(sources[:, 1:]).float().transpose(0, 1))
    assert torch.equal(got[:, 1:], one.transpose(0, 1))


def test_separators_come_from_the_methods_registry(musdb_root, tmp_path):
    from dataclasses import replace

    from separation.baselines import MixtureSeparator, NMFSeparator, OracleRatioMask
    from separation.evaluate import EvalConfig, build_separator
    from separation.interface import needs_references

    cfg = EvalConfig(root=str(musdb_root), out=str(tmp_path), targets=list(TARGETS), baseline="mix", is_wav=True)
    mix = build_separator(cfg)
    assert isinstance(mix, MixtureSeparator) and mix.sources == TARGETS and mix.sample_rate is None
    irm = build_separator(replace(cfg, baseline="irm"), stems=list(STEMS))
    assert isinstance(irm, OracleRatioMask) and needs_references(irm) and irm.sources == list(STEMS)
    NMFSeparator(list(STEMS), SR, rank=2).fit([torch.randn(1, 4096) for _ in STEMS]).save(tmp_path / "nmf.pt")
    nmf = build_separator(replace(cfg, baseline="nmf", seed=3))
    assert isinstance(nmf, NMFSeparator) and nmf.sample_rate == SR and nmf.seed == 3 and nmf.templates.shape[1] == 8


def test_nmf_stft_size_and_mask_power_reach_the_fit_and_the_stored_settings(musdb_root, tmp_path):
    from dataclasses import replace

    from separation.evaluate import EvalConfig, fit_nmf, run_settings

    cfg = EvalConfig(root=str(musdb_root), out=str(tmp_path), targets=list(TARGETS), baseline="nmf", is_wav=True,
                     nmf_rank=2, nmf_fft=512, nmf_power=2.0)
    sep = fit_nmf(cfg, list(STEMS), crops_per_source=2, crop_seconds=0.5)
    assert (sep.n_fft, sep.hop, sep.power, sep.templates.shape) == (512, 128, 2.0, (257, 2 * len(STEMS)))
    assert run_settings(cfg)["nmf"] == {"rank": 2, "seed": 0, "n_fft": 512, "power": 2.0}
    assert run_settings(replace(cfg, nmf_fft=1024, nmf_power=1.0))["nmf"] == {"rank": 2, "seed": 0}  # as before


# ---------------------------------------------------------------------------- data module
def test_musdb_data_module_shapes(musdb_root):
    from priors.musdb import MusdbDataModule

    dm = MusdbDataModule(root=str(musdb_root), is_wav=True, mode="source", source="bass", sample_rate=22_050,
                         crop_length=4096, batch_size=3, train_crops=6, val_crops=4, validation="test")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (3, 4096) and batch.dtype == torch.float32 and batch.abs().max() > 0
    val = dm.val_dataset()
    assert len(val) == 4 and val[0].shape == (4096,)
    assert torch.equal(val[1], val[1]) and not torch.equal(val[0], val[1])  # fixed crops per index

    dm = MusdbDataModule(root=str(musdb_root), mode="mixture", crop_length=2048, batch_size=2, train_crops=4,
                         val_crops=2, validation="test")
    assert next(iter(dm.train_dataloader())).shape == (2, 2048)
    mix, sources = next(iter(dm.val_dataloader()))  # validation pairs for metrics
    assert mix.shape == (2, 2048) and sources.shape == (2, 4, 2048)
    assert torch.allclose(sources.sum(1), mix, atol=1e-6)
    # the recorded mixture (mean of channels at 22.05 kHz) equals the sum of the stems
    ds = dm.train_dataset()
    assert len(ds.tracks) == 2 and ds.tracks[0].shape == (1, int(3 * 22_050))

    with pytest.raises(FileNotFoundError, match="split valid"):
        MusdbDataModule(root=str(musdb_root), mode="source", source="vocals", crop_length=2048).val_dataset()
    with pytest.raises(ValueError):
        MusdbDataModule(root=str(musdb_root), mode="source", source="piano")


def test_a_stem_folder_with_other_instruments_is_scored_with_its_own_targets(tmp_path, monkeypatch):
    """The chorale (or any make-* ) folder names its stems in dataset.json: evaluate scores those."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    names = ["violin", "bassoon"]
    for subset, track in [("train", "t0"), ("test", "x"), ("test", "y")]:
        folder = tmp_path / "ch" / subset / track
        folder.mkdir(parents=True)
        t = np.arange(3 * SR)[:, None] / SR
        stems = {"violin": 0.3 * np.sin(2 * np.pi * 3000 * t) + 0.01 * rng.standard_normal(t.shape),
                 "bassoon": 0.3 * np.sin(2 * np.pi * 110 * t) + 0.01 * rng.standard_normal(t.shape)}
        for n, a in stems.items():
            sf.write(folder / f"{n}.wav", a, SR, subtype="FLOAT")
        sf.write(folder / "mixture.wav", sum(stems.values()), SR, subtype="FLOAT")
    (tmp_path / "ch" / "dataset.json").write_text(json.dumps({"sources": names, "sample_rate": SR, "mix_scale": 1.0}))
    irm = run_evaluate(tmp_path / "ch", tmp_path / "irm", "--baseline", "irm", "--fast")
    monkeypatch.chdir(tmp_path)  # relative folders, as a user types them
    mix = run_evaluate("ch", "mix", "--baseline", "mix", "--fast")
    assert (tmp_path / "mix" / "musdb_setup.yaml").is_file()
    assert list(irm["targets"]) == names and irm["n_tracks"] == 2
    assert all(irm["targets"][n] > mix["targets"][n] + 3 for n in names)


# ---------------------------------------------------------------------------- nmf, langevin, subsets
def test_nmf_baseline_learns_from_train_stems_and_beats_mix(musdb_root, tmp_path, monkeypatch):
    from separation import evaluate as ev

    read = []
    real_load = ev.load_track
    monkeypatch.setattr(ev, "load_track", lambda track, *a: (read.append(track.subset), real_load(track, *a))[1])
    out = tmp_path / "nmf"
    nmf = run_evaluate(musdb_root, out, "--baseline", "nmf", "--nmf-rank", "8", "--fast", "--targets", *TARGETS)
    mix = run_evaluate(musdb_root, tmp_path / "mix", "--baseline", "mix", "--fast", "--targets", *TARGETS)
    stored = torch.load(out / "nmf.pt")
    assert stored["sources"] == list(STEMS) and stored["templates"].shape[1] == 8 * len(STEMS)
    assert stored["crops"] == {s: 2 for s in STEMS}  # one crop from each of the 2 train tracks
    assert read.count("train") == 2 and read.count("test") == 4  # templates from train only
    for t in TARGETS:
        assert nmf["targets"][t] > mix["targets"][t], (t, nmf["targets"], mix["targets"])
    assert np.mean(list(nmf["targets"].values())) > np.mean(list(mix["targets"].values())) + 3
    assert nmf["method"] == "baseline nmf"


def test_max_tracks_and_max_seconds_limit_the_work(musdb_root, tmp_path):
    s = run_evaluate(musdb_root, tmp_path / "cut", "--baseline", "irm", "--targets", *TARGETS,
                     "--max-tracks", "1", "--max-seconds", "2")
    assert s["n_tracks"] == 1 and list(s["tracks"]) == ["A - one"]
    scores = json.loads((tmp_path / "cut" / "test" / "A - one.json").read_text())
    assert len(scores["targets"][0]["frames"]) == 2  # 2 s of a 3 s track, 1 s frames
    from separation.commands.evaluate import run
    from separation.errors import PriorsepError

    with pytest.raises(PriorsepError, match="another evaluation"):  # other length: other scores
        run(evaluate_args(musdb_root, tmp_path / "cut", "--baseline", "irm", "--targets", *TARGETS,
                          "--max-seconds", "1"))
    with pytest.raises(PriorsepError, match="must be positive"):
        run(evaluate_args(musdb_root, tmp_path / "x", "--baseline", "irm", "--max-tracks", "0"))


def test_langevin_with_a_priors_folder(musdb_root, tmp_path):
    from conftest import tiny_wavenet
    from priors.checkpoint import describe_prior, save_prior, write_manifest
    from priors.noise import NoiseSchedule

    torch.manual_seed(0)
    priors = tmp_path / "priors"
    for s in STEMS:
        m = tiny_wavenet()
        save_prior(priors / f"{s}.pt", m, describe_prior(m, s, SR, NoiseSchedule()))
    write_manifest(priors, list(STEMS), SR)
    args = ("--langevin", str(priors), "--langevin-levels", "2", "--langevin-steps", "1",
            "--max-tracks", "1", "--max-seconds", "1", "--fast", "--targets", *TARGETS)
    s = run_evaluate(musdb_root, tmp_path / "lv", *args)
    assert s["n_tracks"] == 1 and s["method"].startswith("langevin") and "2 levels x 1 steps" in s["method"]
    assert all(np.isfinite(v) for v in s["targets"].values())
    settings = json.loads((tmp_path / "lv" / "settings.json").read_text())
    assert settings["method"] == "langevin" and set(settings["priors"]) == set(STEMS)
    again = run_evaluate(musdb_root, tmp_path / "lv", *args)  # same seed: read back, same numbers
    assert again["targets"] == s["targets"]


def test_a_model_evaluated_in_bfloat16_scores_alike_and_is_kept_apart(musdb_root, tmp_path):
    from separation.commands.evaluate import run
    from separation.errors import PriorsepError

    model = _tiny_separator_file(tmp_path / "sep.pt", ["vocals", "bass"], mix_scale=0.5)
    full = run_evaluate(musdb_root, tmp_path / "fp32", "--model", str(model), "--fast", "--chunk-seconds", "1")
    half = run_evaluate(musdb_root, tmp_path / "bf16", "--model", str(model), "--fast", "--chunk-seconds", "1",
                        "--precision", "bf16")
    assert half["method"].endswith("(bf16)") and not full["method"].endswith(")")
    for t in ("vocals", "bass"):
        assert half["tracks"]["A - one"][t] == pytest.approx(full["tracks"]["A - one"][t], abs=0.05)
    with pytest.raises(PriorsepError, match="another evaluation"):  # stored fp32 scores are not mixed in
        run(evaluate_args(musdb_root, tmp_path / "fp32", "--model", str(model), "--fast", "--chunk-seconds", "1",
                          "--precision", "bf16"))
