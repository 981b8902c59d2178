"""Chunked overlap-add separation of long multi-channel audio (``separation.apply``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from separation.apply import chunk_offsets, separate_array, separate_long, triangular_window


class Gains:
    """A test separator: source k = gain_k · mixture (gains sum to 1), recording its batches."""

    def __init__(self, sample_rate=8_000, gains=(0.2, 0.3, 0.5)):
        self.sources = [f"s{k}" for k in range(len(gains))]
        self.sample_rate = sample_rate
        self.gains = torch.tensor(gains)
        self.calls = []

    def __call__(self, mix):
        self.calls.append(tuple(mix.shape))
        return self.gains[None, :, None] * mix[:, None, :]


class Ones(Gains):
    """Returns 1 everywhere, whatever the input: overlap-add must give exactly 1."""

    def __call__(self, mix):
        return torch.ones(mix.shape[0], len(self.sources), mix.shape[1])


@pytest.mark.parametrize("length", [1, 7, 3999, 4000, 4001, 10_007, 33_333])
def test_identity_like_separator_reproduces_the_mixture_at_the_model_rate(length):
    sep = Gains()
    x = np.random.default_rng(length).standard_normal((2, length)).astype(np.float32)
    est = separate_array(sep, x, 8_000, batch_size=3, progress=False, chunk_seconds=0.5)
    assert est.shape == (3, 2, length) and est.dtype == np.float32
    assert np.allclose(est.sum(0), x, atol=1e-6)
    for k, g in enumerate(sep.gains.tolist()):
        assert np.allclose(est[k], g * x, atol=1e-6)
    assert all(b <= 3 and t == min(4000, length) for b, t in sep.calls)  # bounded batches of fixed chunks


def test_weights_are_normalised():
    est = separate_array(Ones(), np.zeros((1, 12_345), np.float32), 8_000, progress=False, chunk_seconds=0.3)
    assert np.allclose(est, 1.0, atol=1e-6)


def test_resampled_path_keeps_rate_length_and_band_limited_content():
    sep = Gains(sample_rate=22_050)
    sr = 44_100
    for length in (44_101, 1_001, 3):
        t = np.arange(length) / sr
        x = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.cos(2 * np.pi * 1000 * t)]).astype(np.float32)
        est = separate_array(sep, x, sr, progress=False, chunk_seconds=0.25)
        assert est.shape == (3, 2, length)
        if length > 10_000:  # away from the ends a low tone survives the trip through 22.05 kHz
            assert np.abs(est.sum(0)[:, 1000:-1000] - x[:, 1000:-1000]).max() < 1e-3


def test_mono_input_batch_size_and_progress_do_not_change_the_result():
    sep = Gains()
    x = np.random.default_rng(0).standard_normal(9_999).astype(np.float32)
    a = separate_array(sep, x, 8_000, batch_size=1, progress=False, chunk_seconds=0.4)
    b = separate_array(sep, x, 8_000, batch_size=16, progress=True, chunk_seconds=0.4)
    assert a.shape == (3, 9_999) and np.array_equal(a, b)


def test_channels_share_batches_and_chunks_cover_the_signal():
    sep = Gains()
    separate_array(sep, np.ones((2, 10_000), np.float32), 8_000, batch_size=4, progress=False, chunk_seconds=0.5)
    assert sum(b for b, _ in sep.calls) == 2 * len(chunk_offsets(10_000, 4000, 3000))
    offs = chunk_offsets(10_000, 4000, 3000)
    assert offs == [0, 3000, 6000] and offs[-1] + 4000 == 10_000
    assert chunk_offsets(10_500, 4000, 3000)[-1] == 6500
    w = triangular_window(7)
    assert w.min() > 0 and w.max() == 1 and np.allclose(w, w[::-1])


def test_project_encoder_estimates_add_up_to_the_mixture():
    from separation.checkpoints import EncoderSeparator
    from separation.encoder import WaveNetEncoder

    torch.manual_seed(0)
    enc = WaveNetEncoder(n_sources=4, n_layers=3, channels=8)
    torch.nn.init.normal_(enc.out2.weight, std=0.1)  # not the identity: chunks really differ
    sep = EncoderSeparator(enc, {"sources": list("abcd"), "sample_rate": 8_000, "mix_scale": 0.25, "project": True})
    x = (0.3 * np.random.default_rng(3).standard_normal((2, 20_001))).astype(np.float32)
    est = separate_array(sep, x, 8_000, progress=False, chunk_seconds=0.5)
    assert np.allclose(0.25 * est.sum(0), x, atol=1e-5)  # source units: mix_scale · Σ_k est_k = mixture


def test_separate_long_matches_a_single_pass_for_a_pointwise_separator():
    sep = Gains()
    mix = torch.randn(12_345)
    est = separate_long(sep, mix, chunk=1000, overlap=0.25, batch_size=5)
    assert est.shape == (3, 12_345) and torch.allclose(est, sep(mix[None])[0], atol=1e-6)


def test_separate_command_writes_one_float_wav_per_source(tmp_path):
    import soundfile as sf

    from separation.checkpoints import FORMAT, save_separator
    from separation.cli import main
    from separation.encoder import WaveNetEncoder

    args = dict(n_sources=2, n_layers=2, channels=4)
    meta = {"format": FORMAT, "objective": "sleep", "sources": ["a", "b"], "sample_rate": 8_000, "mix_scale": 0.5,
            "project": True, "class_path": "separation.encoder.WaveNetEncoder", "init_args": args, "priors": [],
            "version": "test"}
    save_separator(tmp_path / "sep.pt", WaveNetEncoder(**args), meta)
    x = (0.2 * np.random.default_rng(0).standard_normal((3001, 2))).astype(np.float32)
    sf.write(tmp_path / "mix.wav", x, 11_025, subtype="FLOAT")
    argv = ["separate", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "sep.pt"),
            "--quiet", "--chunk-seconds", "0.1"]
    assert main(argv) == 0
    for name in ("a", "b"):
        info = sf.info(str(tmp_path / "out" / f"{name}.wav"))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (11_025, 2, 3001, "FLOAT")
    assert main(argv) == 2  # refuses to overwrite


def test_several_recordings_share_batches_and_match_one_by_one():
    from separation.apply import separate_arrays

    rng = np.random.default_rng(1)
    recordings = [(rng.standard_normal((2, 3000)).astype(np.float32), 8_000),  # 2 chunks of 0.25 s
                  (rng.standard_normal(5000).astype(np.float32), 16_000),  # mono, resampled
                  (rng.standard_normal((1, 1200)).astype(np.float32), 8_000),  # shorter than a chunk
                  (rng.standard_normal((1, 1200)).astype(np.float32), 8_000)]
    together = Gains()
    ests = separate_arrays(together, recordings, batch_size=64, progress=False, chunk_seconds=0.25)
    alone = Gains()
    for (audio, sr), est in zip(recordings, ests):
        one = separate_array(alone, audio, sr, batch_size=64, progress=False, chunk_seconds=0.25)
        assert est.shape == one.shape == (3, *audio.shape)
        assert np.allclose(est, one, atol=1e-6)
        if sr == 8_000:  # (white noise at 16 kHz loses its upper band in the round trip)
            assert np.allclose(est.sum(0), audio, atol=1e-6)
    # one forward pass per chunk length: 2000-sample chunks of all rows, then the two 1200-sample rows
    assert together.calls == [(2 * 2 + 2, 2000), (2, 1200)]
    assert len(alone.calls) == 4


def test_separate_command_batches_a_folder(tmp_path, monkeypatch):
    import argparse

    import soundfile as sf

    from separation.commands import separate

    rng = np.random.default_rng(2)
    for i in range(3):
        sf.write(tmp_path / f"clip{i}.wav", 0.1 * rng.standard_normal(4000), 8_000, subtype="FLOAT")
    sep = Gains()
    monkeypatch.setattr("separation.checkpoints.load_separator", lambda path, device, precision="fp32": sep)
    parser = argparse.ArgumentParser()
    separate.add_arguments(parser)
    args = parser.parse_args([str(tmp_path), "-o", str(tmp_path / "out"), "--chunk-seconds", "0.5",
                              "--batch-size", "16", "--quiet"])
    assert separate.run(args) == 0
    assert sep.calls == [(3, 4000)]  # one chunk per file, all three in one forward pass
    for i in range(3):
        x, _ = sf.read(tmp_path / f"clip{i}.wav", dtype="float32")
        est = np.stack([sf.read(tmp_path / "out" / f"clip{i}" / f"s{k}.wav", dtype="float32")[0] for k in range(3)])
        assert np.allclose(est.sum(0), x, atol=1e-6)
    assert separate.file_groups(sorted(tmp_path.glob("*.wav")), 1.0) == [sorted(tmp_path.glob("*.wav"))[:2],
                                                                         sorted(tmp_path.glob("*.wav"))[2:]]


TINY_META = {"sources": list("abc"), "sample_rate": 8_000, "mix_scale": 0.5, "project": True}


def _tiny_encoder():
    """A 3-source WaveNetEncoder with a non-zero output head (its estimates depend on the input)."""
    from separation.encoder import WaveNetEncoder

    torch.manual_seed(0)
    enc = WaveNetEncoder(n_sources=3, n_layers=4, channels=8)
    torch.nn.init.normal_(enc.out2.weight, std=0.1)
    return enc


def test_encoder_separator_runs_cpu_batches_item_by_item_with_the_same_result():
    from separation.checkpoints import EncoderSeparator
    from separation.encoder import project_to_mixture

    enc = _tiny_encoder()
    sep = EncoderSeparator(enc, TINY_META)
    mix = torch.randn(5, 700)
    calls = []
    enc.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    est = sep(mix)
    assert calls == [1] * 5 and est.shape == (5, 3, 700)
    with torch.no_grad():
        whole = project_to_mixture(enc(mix)[0], mix, 0.5)
    assert torch.allclose(est, whole, atol=1e-5)


def test_encoder_separator_in_bfloat16_stays_close_to_float32_and_returns_float32():
    from separation.checkpoints import EncoderSeparator

    enc, meta = _tiny_encoder(), TINY_META
    mix = torch.randn(2, 700) * 0.3
    full = EncoderSeparator(enc, meta)(mix)
    convs = []
    enc.blocks[0].conv.register_forward_hook(lambda mod, args, out: convs.append(out.dtype))
    half = EncoderSeparator(enc, meta, precision="bf16")(mix)
    assert convs == [torch.bfloat16] * 2 and half.dtype == torch.float32
    assert torch.allclose(0.5 * half.sum(1), mix, atol=1e-5)  # the projection still holds exactly
    snr = 10 * torch.log10(full.pow(2).sum() / (half - full).pow(2).sum())
    assert 25 < snr < 80, snr  # rounded (not bit-equal), but close
    with pytest.raises(ValueError, match="precision"):
        EncoderSeparator(enc, meta, precision="fp8")


def test_encoder_separator_spreads_a_cpu_batch_over_single_threaded_streams():
    import threading

    from separation.checkpoints import EncoderSeparator

    enc = _tiny_encoder()
    sep = EncoderSeparator(enc, TINY_META)
    mix = torch.randn(6, 700)
    threads = []
    enc.register_forward_hook(lambda mod, args, out: threads.append((threading.get_ident(), torch.get_num_threads())))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        est = sep(mix)
        assert torch.get_num_threads() == 2  # the caller's setting is left alone
    finally:
        torch.set_num_threads(before)
    assert len(threads) == 6 and all(n == 1 for _, n in threads)
    assert threading.get_ident() not in {t for t, _ in threads}
    serial = torch.cat([sep(m) for m in mix.split(1)])
    assert torch.equal(est, serial)
