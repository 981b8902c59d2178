"""End-to-end smoke tests of the console script on tiny models."""
import json
import math

import pytest
import torch

from separation.cli import main

TINY_PRIOR = ["--model.model.init_args.n_layers=3", "--model.model.init_args.residual_channels=8",
              "--model.model.init_args.skip_channels=8", "--data.init_args.crop_length=256",
              "--data.init_args.batch_size=2", "--data.init_args.val_crops=2", "--trainer.max_steps=3",
              "--trainer.val_check_interval=3", "--trainer.limit_val_batches=1", "--trainer.logger=false",
              "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def test_train_prior_export_reload_sample_and_diagnose(tmp_path, capsys):
    from priors.checkpoint import load_prior, write_manifest

    priors = tmp_path / "priors"
    for src in ["sin", "square", "saw", "triangle"]:
        rc = main(["train-prior", "--config", "configs/priors/toy_sin.yaml", *TINY_PRIOR,
                   f"--model.source={src}", f"--data.init_args.source={src}",
                   f"--trainer.default_root_dir={tmp_path / src}", "--trainer.callbacks=[]",
                   "--trainer.enable_checkpointing=false", f"--export={priors / (src + '.pt')}"])
        assert rc == 0
    model, meta = load_prior(priors / "saw.pt")
    assert meta["source"] == "saw" and meta["init_args"]["n_layers"] == 3
    write_manifest(priors, ["sin", "square", "saw", "triangle"], 14_700)

    assert main(["sample", "--prior", str(priors / "sin.pt"), "-n", "2", "--length", "64", "-o",
                 str(tmp_path / "wavs"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "wavs").iterdir()) == ["sin_000.wav", "sin_001.wav"]
    assert main(["sample", "--prior", str(priors / "sin.pt"), "-n", "2", "--length", "64", "-o",
                 str(tmp_path / "wavs"), "--quiet"]) == 2  # refuses to overwrite

    out = tmp_path / "diag.json"
    assert main(["diagnose", "--priors", str(priors), "--n", "2", "--length", "128", "--sigma", "0", "0.1",
                 "--json", str(out), "--plot", str(tmp_path / "diag.png"), "--samples", "2", "--continuation", "96",
                 "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["sources"] == ["sin", "square", "saw", "triangle"] and res["sigmas"] == [0, 0.1]
    assert len(res["loglik"]) == 2 and all(len(r) == 4 and len(r[0]) == 4 for r in res["loglik"])
    assert set(res["samples"]["sin"]) == {"generated", "real"}
    assert set(res["continuation"]) == set(res["sources"])
    assert res["continuation"]["saw"]["length"] == 32 and math.isfinite(res["continuation"]["saw"]["snr_db"])
    assert (tmp_path / "diag.png").stat().st_size > 0 and (tmp_path / "diag_samples.png").is_file()
    assert (tmp_path / "diag_samples_spectrograms.png").stat().st_size > 0
    assert "σ = 0.1" in capsys.readouterr().out


def test_diagnose_draws_samples_at_a_noise_level_and_compares_them_with_equally_noisy_real_crops(
        tiny_priors_dir, tmp_path, monkeypatch):
    from separation.commands import sample

    drawn_at, real_draw = [], sample.draw

    def recording_draw(prior, n, length, temperature, sigma, *rest):
        drawn_at.append(sigma)
        return real_draw(prior, n, length, temperature, sigma, *rest)

    monkeypatch.setattr(sample, "draw", recording_draw)
    results = {}
    for sigma in (0.0, 0.3):
        out = tmp_path / f"diag_{sigma}.json"
        assert main(["diagnose", "--priors", str(tiny_priors_dir), "--split", "valid", "--n", "4", "--length", "256",
                     "--sigma", "0", "--samples", "4", "--sample-sigma", str(sigma), "--json", str(out),
                     "--quiet"]) == 0
        results[sigma] = json.loads(out.read_text())
    assert drawn_at == [0.0] * 4 + [0.3] * 4
    assert results[0.3]["sample_sigma"] == 0.3 and results[0.3]["split"] == "valid"
    for s in results[0.0]["sources"]:
        clean, noisy = results[0.0]["samples"][s]["real"]["rms"], results[0.3]["samples"][s]["real"]["rms"]
        assert abs(noisy ** 2 - clean ** 2 - 0.09) < 0.03  # the real crops carry σ·ε too


def test_user_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_text("garbage")
    assert main(["sample", "--prior", str(bad), "-n", "1", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("priorsep: error:") and "\n" not in err
    assert main(["diagnose", "--priors", str(tmp_path / "nowhere")]) == 2


def test_make_toy_writes_musdb_layout(tmp_path):
    import soundfile as sf

    assert main(["make-toy", "--out", str(tmp_path / "toy"), "--n-train", "2", "--n-test", "1", "--length", "1000",
                 "--quiet"]) == 0
    track = tmp_path / "toy" / "test" / "toy_test_00000"
    stems = {p.stem: sf.read(p)[0] for p in track.glob("*.wav")}
    assert set(stems) == {"mixture", "sin", "square", "saw", "triangle"}
    mean = sum(stems[s] for s in ["sin", "square", "saw", "triangle"]) / 4
    assert abs(stems["mixture"] - mean).max() < 1e-3  # 16-bit PCM
    assert main(["make-toy", "--out", str(tmp_path / "toy"), "--n-train", "1", "--n-test", "1", "--quiet"]) == 2


def test_diagnose_continuation_longer_than_the_crop_is_a_one_line_error(tiny_priors_dir, capsys):
    assert main(["diagnose", "--priors", str(tiny_priors_dir), "--n", "1", "--length", "64", "--sigma", "0",
                 "--continuation", "64", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("priorsep: error: --continuation 64") and "\n" not in err


def test_diagnose_of_a_folder_with_a_background_prints_ratio_and_raw_matrices(tiny_priors_dir, tmp_path, capsys):
    from priors.checkpoint import describe_prior, save_prior, write_manifest
    from tests.conftest import TOY, tiny_wavenet

    bg = tiny_wavenet()
    save_prior(tiny_priors_dir / "background.pt", bg, describe_prior(bg, "background", 14_700))
    write_manifest(tiny_priors_dir, TOY, 14_700, background="background.pt")
    out = tmp_path / "ratio.json"
    assert main(["diagnose", "--priors", str(tiny_priors_dir), "--n", "2", "--length", "128", "--sigma", "0", "0.1",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["score"] == "likelihood_ratio" and len(res["background_hash"]) == 16
    printed = capsys.readouterr().out
    assert "log-likelihood ratio against the background prior" in printed and "source prior alone" in printed
    for ratio, raw in zip(res["loglik"], res["raw_loglik"]):
        # raw − ratio is the background's score of each column: the same for every prior
        for c in range(4):
            background = [raw[p][c] - ratio[p][c] for p in range(4)]
            assert max(background) - min(background) < 1e-4


def test_diagnose_of_frame_flow_priors_with_a_background_scores_and_dreams(tmp_path, capsys):
    """A folder of (tiny, untrained) log-mel flow priors with a background: ratio matrices,
    samples drawn in one inverse pass and compared with real crops, in nats per mel bin."""
    from priors.checkpoint import describe_prior, save_prior, write_manifest
    from priors.frame_flow import FrameFlowPrior
    from tests.conftest import TOY

    torch.manual_seed(0)
    d = tmp_path / "flows"
    for name in [*TOY, "background"]:
        m = FrameFlowPrior(sample_rate=14_700, n_fft=256, hop=64, n_mels=8, n_flows=1, channels=8, n_layers=2,
                           coupling_components=2)
        save_prior(d / f"{name}.pt", m, describe_prior(m, name, 14_700))
    write_manifest(d, TOY, 14_700, background="background.pt")
    out = tmp_path / "flows.json"
    assert main(["diagnose", "--priors", str(d), "--n", "2", "--length", "1024", "--sigma", "0", "--samples", "2",
                 "--temperature", "0.7", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["score"] == "likelihood_ratio" and "nats per mel bin per frame" in capsys.readouterr().out
    for s in TOY:
        generated = res["samples"][s]["generated"]
        assert generated["rms"] > 0 and set(generated["loglik_under"]) == set(TOY)
