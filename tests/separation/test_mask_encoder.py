"""MaskEncoder: masks normalised across sources, estimates that add up to the mixture,
context of seconds (a bidirectional LSTM over frames), and the spectral pair loss."""
import torch

from separation.losses import waveform_spectral_l1
from separation.mask_encoder import MaskEncoder
from priors.spectral import stft


def tiny():
    torch.manual_seed(0)
    return MaskEncoder(n_sources=3, n_fft=256, hop=64, hidden=16, lstm_hidden=8, lstm_layers=1)


def test_masks_sum_to_one_and_estimates_add_up_to_the_mixture():
    enc = tiny()
    mix = torch.randn(2, 4000)
    masks = enc.masks(stft(mix, 256, 64))
    assert masks.shape == (2, 3, 129, 4000 // 64 + 1)
    assert masks.min() >= 0
    torch.testing.assert_close(masks.sum(1), torch.ones_like(masks[:, 0]))
    mu, log_std = enc(mix)
    assert mu.shape == log_std.shape == (2, 3, 4000)
    torch.testing.assert_close(mu.sum(1), mix, atol=1e-5, rtol=0)


def test_context_spans_the_whole_chunk():
    enc = tiny()
    mix = torch.randn(1, 8000, requires_grad=True)
    mu, _ = enc(mix)
    mu[0, 0, :256].pow(2).sum().backward()
    assert mix.grad[0, -1000:].abs().sum() > 0, "the first frames must hear the last ones"


def test_spectral_l1():
    a, b = torch.randn(2, 3, 2000), torch.randn(2, 3, 2000)
    assert waveform_spectral_l1(a, a).item() == 0
    assert waveform_spectral_l1(a, b) > waveform_spectral_l1(a, b, spectral_weight=0) > 0
    torch.testing.assert_close(waveform_spectral_l1(a, b, spectral_weight=0), (a - b).abs().mean((0, 2)).sum())


def test_supervised_training_reduces_the_loss():
    from separation.module import VariationalSeparator

    enc = tiny()
    job = VariationalSeparator(enc, objective="supervised", priors_dir=None, sources=["a", "b", "c"],
                               sample_rate=8000, mix_scale=1.0, project=False, pair_loss="l1_spectral")
    t = torch.arange(4000) / 8000
    g = torch.Generator().manual_seed(0)
    sources = torch.stack([torch.stack([torch.sin(2 * torch.pi * f * t + torch.rand(1, generator=g) * 6)
                                        for f in (220.0, 880.0, 2500.0)]) for _ in range(4)])
    opt = torch.optim.Adam(enc.parameters(), 3e-3)
    losses = []
    for _ in range(30):
        loss = job.pair_loss(sources.sum(1), sources)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_export_writes_a_compact_separator_from_a_lightning_checkpoint(tmp_path):
    from separation.checkpoints import load_separator
    from separation.cli import main
    from separation.module import VariationalSeparator

    job = VariationalSeparator(tiny(), objective="supervised", priors_dir=None, sources=["a", "b", "c"],
                               sample_rate=8000, mix_scale=1.0, project=False, pair_loss="l1_spectral")
    state = {f"encoder.{k}": v for k, v in job.encoder.state_dict().items()}
    torch.save({"priorsep": job.describe(), "state_dict": state}, tmp_path / "last.ckpt")
    assert main(["export", str(tmp_path / "last.ckpt"), str(tmp_path / "sep.pt")]) == 0
    mix = torch.randn(2, 3000)
    torch.testing.assert_close(load_separator(tmp_path / "sep.pt")(mix), load_separator(tmp_path / "last.ckpt")(mix))
    assert load_separator(tmp_path / "sep.pt").meta["objective"] == "supervised"
    assert main(["export", str(tmp_path / "sep.pt"), str(tmp_path / "half.pt"), "--half"]) == 0  # compact -> half
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (tmp_path / "sep.pt").stat().st_size
    torch.testing.assert_close(load_separator(tmp_path / "half.pt")(mix), load_separator(tmp_path / "sep.pt")(mix),
                               atol=1e-2, rtol=0)
