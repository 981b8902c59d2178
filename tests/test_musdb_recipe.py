"""The MUSDB18 time-frequency recipe end to end, through the console script, on a tiny generated
MUSDB18-HQ folder: the four frame priors (configs/priors/musdb_*_frame.yaml), the supervised and
the ELBO mask separators (configs/separation/musdb_mask_{supervised,elbo}.yaml) and ``evaluate``.

The configs run as shipped (data modules, sample rate, STFT sizes, σ range, objectives); only the
sizes (channels, layers, crops, steps) are shrunk, and every output goes to a temporary folder
(no W&B run, no Lightning checkpoint)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from priors.frame_prior import FramePrior
from separation.cli import main

ROOT = Path(__file__).resolve().parents[1]
SR = 44_100
STEMS = ("vocals", "drums", "bass", "other")
PRIOR_CONFIG = "configs/priors/musdb_{}_frame.yaml"
SEPARATOR_CONFIGS = ("configs/separation/musdb_mask_supervised.yaml", "configs/separation/musdb_mask_elbo.yaml")
#: train/: one of musdb's 14 validation tracks (musdb's split: the ELBO config validates on it) and
#: one training track; test/: one track
TRACKS = {"train": ["Actions - One Minute Smile", "Fake - Train Track"], "test": ["Fake - Test Track"]}

QUIET = ["--trainer.logger=false", "--trainer.callbacks=[]", "--trainer.enable_checkpointing=false",
         "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
         "--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.limit_val_batches=1",
         "--data.init_args.crop_length=8192", "--data.init_args.batch_size=2", "--data.init_args.train_crops=4",
         "--data.init_args.val_crops=2"]
TINY_PRIOR = ["--model.model.init_args.channels=8", "--model.model.init_args.n_mels=16",
              "--model.model.init_args.n_layers=2", "--model.model.init_args.n_stacks=1"]
TINY_ENCODER = ["--model.encoder.init_args.hidden=8", "--model.encoder.init_args.lstm_hidden=8",
                "--model.encoder.init_args.lstm_layers=1"]


def fake_stems(seconds: float, seed: int) -> dict[str, np.ndarray]:
    """Four distinct stereo stems (time, 2), audible throughout: a vibrato voice, noise bursts,
    a low sine, a band of filtered noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    phase = 2 * np.pi * np.cumsum(rng.uniform(220, 440) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / SR
    vocals = 0.1 * sum(np.sin(h * phase) / h for h in range(1, 6))
    drums = 0.01 * rng.standard_normal(n)
    for start in range(0, n, SR // 4):
        k = np.arange(min(n - start, SR // 8))
        drums[start:start + len(k)] += 0.2 * rng.standard_normal(len(k)) * np.exp(-k / 800)
    bass = 0.2 * np.sin(2 * np.pi * rng.uniform(50, 90) * t)
    other = 0.05 * np.convolve(rng.standard_normal(n), np.hanning(16), mode="same")
    mono = {"vocals": vocals, "drums": drums, "bass": bass, "other": other}
    return {s: np.stack([mono[s], (0.8 + 0.05 * i) * mono[s]], axis=1) for i, s in enumerate(STEMS)}


def write_tiny_musdb(root: Path, seconds: float = 3.0) -> Path:
    """``root/{train,test}/<track>/{vocals,drums,bass,other,mixture}.wav``, 44.1 kHz stereo PCM16
    like MUSDB18-HQ, mixture = sum of the stems."""
    import soundfile as sf

    for s_index, (subset, names) in enumerate(sorted(TRACKS.items())):
        for i, name in enumerate(names):
            stems = {k: np.round(v * 32768) / 32768 for k, v in fake_stems(seconds, 10 * s_index + i).items()}
            folder = root / subset / name
            folder.mkdir(parents=True)
            for stem, audio in stems.items():
                sf.write(folder / f"{stem}.wav", audio, SR, subtype="PCM_16")
            sf.write(folder / "mixture.wav", sum(stems.values()), SR, subtype="PCM_16")
    return root


def same_but_the_stem(s: str) -> str:
    return (ROOT / PRIOR_CONFIG.format(s)).read_text().replace("[vocals, drums, bass, other]", "ALL").replace(s, "SRC")


def test_separators_match_the_priors_they_are_scored_by():
    """The ELBO scores the mask separator's estimates with the frame priors: same rate and sources;
    the two separators share one encoder; every prior config differs only in its stem."""
    priors = {s: yaml.safe_load((ROOT / PRIOR_CONFIG.format(s)).read_text()) for s in STEMS}
    supervised, elbo = (yaml.safe_load((ROOT / c).read_text()) for c in SEPARATOR_CONFIGS)
    assert elbo["model"]["encoder"] == supervised["model"]["encoder"]
    stft = {k: elbo["model"]["encoder"]["init_args"][k] for k in ("n_fft", "hop")}
    for s, cfg in priors.items():
        assert cfg["model"]["source"] == s and cfg["model"]["model"]["class_path"] == "priors.frame_prior.FramePrior"
        assert {k: cfg["model"]["model"]["init_args"][k] for k in stft} == stft
        assert cfg["model"]["sample_rate"] == elbo["model"]["sample_rate"] == supervised["model"]["sample_rate"]
        assert cfg["data"]["init_args"]["sources"] == list(STEMS)
        assert same_but_the_stem(s) == same_but_the_stem("vocals")
    assert elbo["model"]["sources"] == supervised["model"]["sources"] == list(STEMS)
    frame = priors["vocals"]["model"]["model"]["init_args"]
    context = FramePrior(sample_rate=priors["vocals"]["model"]["sample_rate"], **frame).receptive_field * frame["hop"]
    crop = priors["vocals"]["data"]["init_args"]["crop_length"]
    assert context >= crop >= SR  # every frame of a crop (>= 1 s) sees the whole crop before it
    assert elbo["model"]["objective"] == "elbo" and elbo["model"]["priors_dir"] == "checkpoints/musdb_frame"
    assert supervised["model"]["objective"] == "supervised" and supervised["model"]["priors_dir"] is None


def test_musdb_recipe_runs_end_to_end(tmp_path):
    from priors.checkpoint import load_prior
    from separation.checkpoints import load_separator

    data = write_tiny_musdb(tmp_path / "musdb18hq")
    priors = tmp_path / "checkpoints" / "musdb_frame"
    for s in STEMS:
        assert main(["train-prior", "--config", str(ROOT / PRIOR_CONFIG.format(s)), f"--data.init_args.root={data}",
                     *QUIET, *TINY_PRIOR, f"--trainer.default_root_dir={tmp_path / 'runs' / s}",
                     f"--export={priors / (s + '.pt')}"]) == 0
        _, meta = load_prior(priors / f"{s}.pt")
        assert meta["source"] == s and meta["sample_rate"] == SR
        assert (meta["init_args"]["n_fft"], meta["init_args"]["hop"], meta["init_args"]["channels"]) == (2048, 512, 8)

    separators = {}
    for config, data_root in zip(SEPARATOR_CONFIGS, ("data_root", "root")):
        name = Path(config).stem
        separators[name] = tmp_path / "checkpoints" / f"{name}.pt"
        assert main(["train-separator", "--config", str(ROOT / config), f"--data.init_args.{data_root}={data}",
                     f"--model.priors_dir={priors}", *QUIET, *TINY_ENCODER,
                     f"--trainer.default_root_dir={tmp_path / 'runs' / name}",
                     f"--export={separators[name]}"]) == 0
        sep = load_separator(separators[name])
        assert list(sep.sources) == list(STEMS) and sep.sample_rate == SR

    for name, path in separators.items():
        out = tmp_path / "results" / name
        assert main(["evaluate", "--root", str(data), "--is-wav", "--fast", "--model", str(path),
                     "--out", str(out), "--quiet"]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["n_tracks"] == 1
        assert set(summary["targets"]) == set(STEMS)
        assert all(isinstance(v, float) and math.isfinite(v) for v in summary["targets"].values()), summary
