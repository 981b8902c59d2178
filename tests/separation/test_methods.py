"""The one registry of separation methods (``separation.methods``) behind ``priorsep
benchmark`` and ``priorsep evaluate``."""
from __future__ import annotations

import pytest
import torch

from separation import methods
from separation.errors import PriorsepError
from separation.interface import needs_references
from separation.methods import MethodContext, build_separator

TOY = ["sin", "square", "saw", "triangle"]


def test_the_benchmark_lists_and_checkpoint_files_are_unchanged():
    assert methods.benchmark_methods() == ["mixture", "nmf", "langevin", "variational", "variational-fast", "sleep",
                                           "wake-sleep", "remix", "supervised", "irm"]
    assert methods.default_methods() == ["mixture", "nmf", "langevin", "variational", "sleep", "wake-sleep", "remix",
                                         "supervised"]
    assert methods.checkpoint_files() == {
        "variational": "separator_elbo.pt", "variational-fast": "separator_elbo_fast.pt",
        "sleep": "separator_sleep.pt", "wake-sleep": "separator_wake_sleep.pt", "remix": "separator_remix.pt",
        "supervised": "separator_supervised.pt"}
    assert "model" in methods.METHODS and "model" not in methods.benchmark_methods()


def test_mixture_and_oracle_mask():
    ctx = MethodContext(sources=TOY, sample_rate=14_700, mix_scale=0.25)
    refs = torch.randn(2, 4, 4096)
    mix = 0.25 * refs.sum(1)
    mixture = build_separator("mixture", ctx)
    assert not needs_references(mixture) and mixture.sample_rate is None
    assert torch.equal(mixture(mix), mix.unsqueeze(1).repeat(1, 4, 1) / (4 * 0.25))
    irm = build_separator("irm", ctx)
    assert needs_references(irm) and irm.sources == TOY
    est = irm(mix, refs)
    assert est.shape == refs.shape and torch.allclose(0.25 * est.sum(1), mix, atol=1e-5)


def test_a_registered_method_and_a_named_checkpoint(tmp_path, monkeypatch):
    from separation.baselines import MixtureSeparator
    from separation.benchmark import run_benchmark
    from separation.checkpoints import EncoderSeparator, save_separator
    from separation.encoder import WaveNetEncoder

    monkeypatch.setattr(methods, "METHODS", dict(methods.METHODS))  # registrations stay in this test

    @methods.register("half", help="half the mixture for every source", default=False)
    def _half(ctx):
        return MixtureSeparator(ctx.sources, 2 * ctx.mix_scale)

    methods.register_checkpoint("tiny", "separator_tiny.pt", default=False)
    assert "half" in methods.benchmark_methods() and "half" not in methods.default_methods()
    assert methods.checkpoint_files()["tiny"] == "separator_tiny.pt"
    enc = WaveNetEncoder(n_sources=4, n_layers=2, channels=8, gate_channels=4)
    meta = {"format": "priorsep-separator/1", "objective": "sleep", "sources": TOY, "sample_rate": 14_700,
            "mix_scale": 0.25, "project": True, "class_path": enc.class_path, "init_args": dict(enc.init_args),
            "priors": [], "version": "test"}
    save_separator(tmp_path / "separator_tiny.pt", enc, meta)
    sep = build_separator("tiny", MethodContext(sources=TOY, sample_rate=14_700, checkpoints=tmp_path))
    assert isinstance(sep, EncoderSeparator) and sep.sources == TOY
    result = run_benchmark(["half", "tiny"], torch.randn(2, 4, 256), 0.25, TOY, 14_700, tmp_path, progress=False)
    assert set(result["methods"]) == {"half", "tiny"}


def test_missing_checkpoints_and_unknown_methods_are_one_line_errors(tmp_path, monkeypatch):
    from separation import benchmark

    monkeypatch.chdir(tmp_path)
    built = []
    monkeypatch.setattr(benchmark, "build_separator", lambda *a: built.append(a))
    with pytest.raises(PriorsepError, match="checkpoints/toy: folder not found"):  # before any method runs
        benchmark.run_benchmark(["mixture", "sleep"], torch.zeros(1, 4, 64), 0.25, TOY, 14_700, "checkpoints/toy", progress=False)
    assert built == []
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    ctx = MethodContext(sources=TOY, sample_rate=14_700, checkpoints="checkpoints/toy")
    for name in ("sleep", "langevin"):
        with pytest.raises(PriorsepError, match="checkpoints/toy: folder not found") as err:
            build_separator(name, ctx)
        assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "checkpoints" / "toy").mkdir(parents=True)
    with pytest.raises(PriorsepError, match="no checkpoint for method 'remix'"):
        build_separator("remix", ctx)
    with pytest.raises(PriorsepError, match="unknown method 'nope'"):
        build_separator("nope", ctx)


def test_nmf_templates_are_fitted_once_and_stored(tmp_path):
    g = torch.Generator().manual_seed(0)
    train = [torch.randn(1, 4096, generator=g) for _ in TOY]
    calls = []
    ctx = MethodContext(sources=TOY, sample_rate=14_700, mix_scale=0.25, nmf_rank=2, nmf_store=tmp_path / "nmf.pt",
                        nmf_train=lambda: calls.append(1) or train)
    fitted = build_separator("nmf", ctx)
    again = build_separator("nmf", ctx)  # read back from the store
    assert calls == [1] and (tmp_path / "nmf.pt").is_file()
    assert torch.equal(fitted.templates, again.templates) and again.mix_scale == 0.25 and again.rank == 2
    mix = torch.randn(1, 2048, generator=g)
    assert torch.equal(fitted(mix), again(mix))
    with pytest.raises(PriorsepError, match="no stored templates"):
        build_separator("nmf", MethodContext(sources=TOY, sample_rate=14_700, nmf_store=tmp_path / "none.pt"))


def test_langevin_sigmas_are_checked_against_the_priors(tmp_path):
    from conftest import tiny_wavenet
    from priors.checkpoint import CheckpointError, describe_prior, save_prior, write_manifest
    from priors.noise import NoiseSchedule

    torch.manual_seed(0)
    for s in TOY:
        m = tiny_wavenet()
        save_prior(tmp_path / f"{s}.pt", m, describe_prior(m, s, 14_700, NoiseSchedule(0.01, 0.1, p_clean=0.0)))
    write_manifest(tmp_path, TOY, 14_700)
    ctx = MethodContext(sources=TOY, sample_rate=14_700, checkpoints=tmp_path, langevin={"n_levels": 2})
    with pytest.raises(CheckpointError, match=r"Langevin sigma_max 0.3 is outside the range the priors were trained "
                                              r"on \[0.01, 0.1\]"):
        build_separator("langevin", ctx)
    sep = build_separator("langevin", MethodContext(**{**ctx.__dict__, "langevin": {"n_levels": 2, "sigma_max": 0.1}}))
    assert sep.sigmas == pytest.approx([0.1, 0.01]) and sep.sources == TOY
    with pytest.raises(PriorsepError, match="priors work at 14700 Hz, the data is at 8000 Hz"):
        build_separator("langevin", MethodContext(**{**ctx.__dict__, "sample_rate": 8000}))
