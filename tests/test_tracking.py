"""W&B offline runs: a few training steps leave a run with the documented keys and media."""
import math
from pathlib import Path

import pytest

from priors.wandb_reader import read_offline_run
from separation.cli import main

TINY = ["--data.init_args.val_crops=2", "--trainer.val_check_interval=2", "--trainer.limit_val_batches=1",
        "--trainer.log_every_n_steps=1", "--trainer.max_steps=2", "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false", "--trainer.callbacks=[]", "--trainer.enable_checkpointing=false"]


def _run_dir(root: Path) -> Path:
    (run,) = (root / "wandb").glob("offline-run-*")
    return run


def test_train_prior_leaves_an_offline_run_with_config_losses_and_audio(tmp_path):
    rc = main(["train-prior", "--config", "configs/priors/toy_sin.yaml", *TINY,
               "--model.model.init_args.n_layers=2", "--model.model.init_args.residual_channels=4",
               "--model.model.init_args.skip_channels=4", "--data.init_args.crop_length=128",
               "--data.init_args.batch_size=2", "--model.media_seconds=0.01",
               f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    assert rc == 0
    run = read_offline_run(_run_dir(tmp_path))
    assert run["complete"]
    assert run["config"]["config"]["model"]["source"] == "sin"  # the full resolved config
    assert run["config"]["config"]["trainer"]["max_steps"] == 2
    assert {"train/nll", "train/bits", "val/nll", "val/bits"} <= run["history_keys"]
    assert any(k.startswith("val/sample/audio") for k in run["history_keys"])
    nll = [row["train/nll"] for row in run["history"] if "train/nll" in row]
    assert nll and all(isinstance(v, float) and math.isfinite(v) for v in nll)  # values, not only keys
    assert any(m.endswith(".wav") for m in run["media"]) and any(m.endswith(".png") for m in run["media"])


def test_train_separator_logs_elbo_terms_si_sdr_and_example_audio(tmp_path, tiny_priors_dir):
    rc = main(["train-separator", "--config", "configs/separation/toy.yaml", *TINY,
               f"--model.priors_dir={tiny_priors_dir}", "--model.encoder.init_args.n_layers=2",
               "--model.encoder.init_args.channels=4", "--data.init_args.crop_length=128",
               "--data.init_args.batch_size=2",
               f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    assert rc == 0
    run = read_offline_run(_run_dir(tmp_path))
    assert run["complete"]
    assert {"train/prior", "train/mixture", "train/entropy", "train/loss", "val/si_sdr", "val/si_sdri"} <= run["history_keys"]
    assert any(k.startswith("val/example/audio") for k in run["history_keys"])
    assert any(k.startswith("val/example/spectrogram") for k in run["history_keys"])
    assert sum(m.endswith(".wav") for m in run["media"]) >= 9  # mixture + 4 estimates + 4 references


def test_wandb_off_writes_no_run(tmp_path):
    rc = main(["train-prior", "--config", "configs/priors/toy_sin.yaml", *TINY, "--wandb", "off",
               "--model.model.init_args.n_layers=2", "--model.model.init_args.residual_channels=4",
               "--model.model.init_args.skip_channels=4", "--data.init_args.crop_length=128",
               "--data.init_args.batch_size=2", f"--trainer.default_root_dir={tmp_path}",
               f"--trainer.logger.init_args.save_dir={tmp_path}"])
    assert rc == 0
    assert not (tmp_path / "wandb").exists()


def test_diagnose_logs_the_cross_likelihood_table(tmp_path, tiny_priors_dir):
    rc = main(["diagnose", "--priors", str(tiny_priors_dir), "--n", "2", "--length", "128", "--sigma", "0", "0.1",
               "--wandb", "offline", "--wandb-dir", str(tmp_path), "--quiet"])
    assert rc == 0
    run = read_offline_run(_run_dir(tmp_path))
    assert run["complete"]
    assert "diagnose/cross_likelihood" in {k.split("/_")[0] for k in run["history_keys"]} or any(
        k.startswith("diagnose/cross_likelihood") for k in run["history_keys"])
    assert any(m.endswith(".table.json") for m in run["media"])
    assert any("heatmap" in m and m.endswith(".png") for m in run["media"])
