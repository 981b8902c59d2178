"""Audio files: load (libsndfile, ffmpeg fallback), float WAV round trip, resampling, output folders."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from separation.audio import fix_length, load_audio, prepare_output_dir, resample, save_audio
from separation.errors import PriorsepError


def test_float_wav_round_trip_stereo_and_mono(tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(0)
    stereo = (rng.standard_normal((2, 12_345)) * 0.5).astype(np.float32)
    stereo[0, 10] = 1.75  # beyond full scale: kept, float WAV does not clip
    save_audio(tmp_path / "s.wav", stereo, 44_100)
    got, sr = load_audio(tmp_path / "s.wav")
    assert sr == 44_100 and got.dtype == np.float32 and got.shape == (2, 12_345)
    assert np.array_equal(got, stereo)
    assert sf.info(str(tmp_path / "s.wav")).subtype == "FLOAT"

    mono = stereo[1]
    save_audio(tmp_path / "sub" / "m.wav", mono, 22_050)  # (time,) and a folder that does not exist yet
    got, sr = load_audio(tmp_path / "sub" / "m.wav")
    assert sr == 22_050 and got.shape == (1, 12_345) and np.array_equal(got[0], mono)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["m.wav"]  # no temporary left behind

    save_audio(tmp_path / "s.wav", stereo[:, :100], 8_000)  # overwrite in place
    assert load_audio(tmp_path / "s.wav")[0].shape == (2, 100)


def test_save_writes_long_files_in_blocks(tmp_path, monkeypatch):
    import separation.audio as audio_module

    monkeypatch.setattr(audio_module, "_WRITE_BLOCK", 1000)
    x = np.random.default_rng(1).standard_normal((3, 4321)).astype(np.float32)
    save_audio(tmp_path / "b.wav", x, 16_000)
    assert np.array_equal(load_audio(tmp_path / "b.wav")[0], x)


def test_reads_pcm_flac_and_ogg(tmp_path):
    import soundfile as sf

    t = np.arange(8000) / 16_000
    x = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t)], axis=1) * 0.5
    for name, subtype in [("a.wav", "PCM_16"), ("a.flac", "PCM_24"), ("a.ogg", "VORBIS")]:
        sf.write(tmp_path / name, x, 16_000, subtype=subtype)
        got, sr = load_audio(tmp_path / name)
        assert sr == 16_000 and got.shape[0] == 2 and got.dtype == np.float32
        assert abs(got.shape[1] - 8000) <= 64
        assert np.abs(got[:, :8000].T[: got.shape[1]] - x[: got.shape[1]]).max() < (1e-3 if name != "a.ogg" else 0.1)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_falls_back_to_ffmpeg_for_formats_libsndfile_cannot_read(tmp_path):
    import soundfile as sf

    sr = 22_050
    t = np.arange(sr // 2) / sr
    sf.write(tmp_path / "src.wav", 0.3 * np.stack([np.sin(2 * np.pi * 300 * t)] * 2, axis=1), sr)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "src.wav"), "-c:a", "aac",
                    str(tmp_path / "x.m4a")], check=True)
    got, rate = load_audio(tmp_path / "x.m4a")
    assert rate == sr and got.shape[0] == 2 and abs(got.shape[1] - sr // 2) < 3000 and got.dtype == np.float32
    assert 0.1 < np.abs(got).max() < 0.5


def test_user_errors_are_one_line(tmp_path):
    with pytest.raises(PriorsepError, match="file not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 10)
    with pytest.raises(PriorsepError, match="not a readable audio file") as err:
        load_audio(tmp_path / "bad.wav")
    assert "\n" not in str(err.value)


def test_prepare_output_dir_refuses_to_overwrite_unless_forced(tmp_path):
    out = prepare_output_dir(tmp_path / "a" / "b", ["x.wav", "y.wav"], force=False)
    assert out.is_dir()
    (out / "y.wav").write_bytes(b"")
    with pytest.raises(PriorsepError, match="y.wav already exist") as err:
        prepare_output_dir(out, ["x.wav", "y.wav"], force=False)
    assert "\n" not in str(err.value) and "--force" in str(err.value)
    assert prepare_output_dir(out, ["x.wav", "y.wav"], force=True) == out
    (tmp_path / "file").write_text("")
    with pytest.raises(PriorsepError, match="not a folder"):
        prepare_output_dir(tmp_path / "file", ["x.wav"], force=True)


def test_resample_lengths_band_limit_and_librosa_equivalence():
    import librosa

    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 10_001)).astype(np.float32)
    assert resample(x, 44_100, 44_100) is x
    for sr_in, sr_out in [(44_100, 22_050), (22_050, 44_100), (44_100, 16_000)]:
        y = resample(x, sr_in, sr_out)
        assert y.shape == (2, int(np.ceil(10_001 * sr_out / sr_in))) and y.dtype == np.float32
        assert np.array_equal(y, librosa.resample(x, orig_sr=sr_in, target_sr=sr_out, res_type="soxr_hq"))
    # a tone well inside both bands comes through unchanged (away from the edges)
    t_in, t_out = np.arange(44_100) / 44_100, np.arange(22_050) / 22_050
    y = resample(np.sin(2 * np.pi * 1000 * t_in).astype(np.float32), 44_100, 22_050)
    assert y.shape == (22_050,) and np.abs(y[500:-500] - np.sin(2 * np.pi * 1000 * t_out)[500:-500]).max() < 1e-3
    assert fix_length(np.ones((2, 5)), 7).shape == (2, 7) and fix_length(np.ones(5), 3).shape == (3,)
