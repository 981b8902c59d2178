"""Kill-and-resume: a prior's training job killed with SIGKILL and resumed with ``--ckpt_path last``
finishes at ``max_steps``, continues its loss curve where the checkpoint left it, and ends with the
same weights as an uninterrupted run of the same config (CPU, fixed seeds).

Exactness rests on three things restored on resume: Lightning's loop/optimizer/scheduler state,
the data position (``priors.data.ResumableLoader``: crops are a function of (seed, epoch, index)
and the checkpoint records how many batches of the epoch were trained) and the global RNG states
(``separation.commands.lightning_job.RNGStateCallback``: the σ draws and noise of ``training_step``).
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS = 90  # long enough (a few seconds) to be killed well before the end
KILL_AFTER = 3  # SIGKILL once a checkpoint of at least this many steps is on disk
TIMEOUT = 120

#: small data and a quiet trainer, shared by the prior and separator jobs
TINY_RUN = ["--data.init_args.crop_length=256", "--data.init_args.batch_size=2", "--data.init_args.val_crops=2",
            "--trainer.limit_val_batches=1", "--trainer.val_check_interval=3",  # kill test: right after each save
            "--trainer.num_sanity_val_steps=0", "--trainer.log_every_n_steps=1", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false"]
TINY = ["--model.model.init_args.n_layers=3", "--model.model.init_args.residual_channels=8",
        "--model.model.init_args.skip_channels=8", f"--trainer.max_steps={MAX_STEPS}", *TINY_RUN]


def _job(run_dir: Path, log_version: str, extra=()) -> list[str]:
    """The train-prior command of one run: tiny WaveNet, CSV logger, `last.ckpt` every 3 steps in
    ``run_dir/ckpt`` (a second --config: jsonargparse swaps the W&B logger for the CSV one and
    merges these arguments into the config's one ModelCheckpoint)."""
    overrides = run_dir / f"{log_version}.yaml"
    overrides.write_text(
        "trainer:\n"
        "  logger:\n"
        "    class_path: pytorch_lightning.loggers.CSVLogger\n"
        f"    init_args: {{save_dir: '{run_dir / 'logs'}', name: '', version: {log_version}}}\n"
        "  callbacks:\n"
        "    - class_path: pytorch_lightning.callbacks.ModelCheckpoint\n"
        f"      init_args: {{dirpath: '{run_dir / 'ckpt'}', save_last: true, every_n_train_steps: 3, save_top_k: 0}}\n")
    return [sys.executable, "-m", "separation.cli", "train-prior", "--config", "configs/priors/toy_sin.yaml",
            "--config", str(overrides), *TINY, f"--trainer.default_root_dir={run_dir}", *extra]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "offline",
            "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}


def _start(cmd, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # own process group: killpg reaches any child


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


def _run(cmd, log: Path) -> None:
    proc = _start(cmd, log)
    try:
        rc = proc.wait(timeout=TIMEOUT)
    finally:
        _kill(proc)
    assert rc == 0, log.read_text()[-3000:]


def _step(ckpt: Path) -> int | None:
    try:
        return int(torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"])
    except Exception:  # not there yet (or, on a filesystem without atomic rename, half-written)
        return None


def _losses(run_dir: Path, version: str) -> dict[int, float]:
    with (run_dir / "logs" / version / "metrics.csv").open() as f:
        return {int(r["step"]): float(r["train/nll"]) for r in csv.DictReader(f) if r.get("train/nll")}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.timeout(240)
def test_killed_training_resumes_where_it_stopped_and_matches_an_uninterrupted_run(tmp_path):
    # the reference: one uninterrupted run
    ref = tmp_path / "ref"
    ref.mkdir()
    _run(_job(ref, "full", [f"--export={ref / 'final.pt'}"]), ref / "full.log")

    # the same job, SIGKILLed once it has checkpointed a few steps ...
    run = tmp_path / "run"
    run.mkdir()
    last = run / "ckpt" / "last.ckpt"
    proc = _start(_job(run, "killed"), run / "killed.log")
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            step = _step(last) if last.is_file() else None
            if step is not None and step >= KILL_AFTER:
                break
            time.sleep(0.02)
        finished = proc.poll() is not None
    finally:
        _kill(proc)
    assert not finished, "the job ended before it could be killed:\n" + (run / "killed.log").read_text()[-3000:]
    killed_at = _step(last)
    assert killed_at is not None and KILL_AFTER <= killed_at < MAX_STEPS, killed_at

    # ... and resumed with `--ckpt_path last` (the newest last*.ckpt of the checkpoint dirpath)
    _run(_job(run, "resumed", ["--ckpt_path=last", f"--export={run / 'final.pt'}"]), run / "resumed.log")
    assert _step(last) == MAX_STEPS

    # the loss curve continues: the resumed log starts at the checkpoint's step, not at 0,
    # and every step's loss is the uninterrupted run's loss at that step
    full, resumed = _losses(ref, "full"), _losses(run, "resumed")
    assert sorted(full) == list(range(MAX_STEPS))
    assert sorted(resumed) == list(range(killed_at, MAX_STEPS))
    assert {step: full[step] for step in resumed} == resumed

    # and the final weights are the uninterrupted run's, bit for bit: same ops on the same
    # data with the same random draws, single-threaded on CPU (tolerance 0)
    _assert_same_weights(_weights(ref / "final.pt"), _weights(run / "final.pt"))


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    diff = {k: (a[k].float() - b[k].float()).abs().max().item() for k in a}
    assert all(torch.equal(a[k], b[k]) for k in a), {k: d for k, d in diff.items() if d}


TINY_SEPARATOR = ["--model.encoder.init_args.n_layers=2", "--model.encoder.init_args.channels=4", *TINY_RUN]


@pytest.mark.parametrize("job_kind", ["prior", "separator"])
def test_resume_at_an_epoch_end_and_mid_epoch_in_process(tmp_path, tiny_priors_dir, job_kind):
    """Explicit ``--ckpt_path FILE`` at the last batch of epoch 0 (the loader moves on to epoch 1)
    and in the middle of epoch 1 (its first batches skipped): both end as the uninterrupted run.
    The separator case trains the ELBO on real mixtures: its reparameterisation noise comes from
    the restored global RNG, its mixtures from the resumable loader."""
    from separation.cli import main

    steps = 10  # 4 batches per epoch: checkpoints at step 4 (epoch end) and 6 (mid-epoch 1)
    if job_kind == "prior":
        command = ["train-prior", "--config", "configs/priors/toy_sin.yaml", *TINY]
    else:
        command = ["train-separator", "--config", "configs/separation/toy.yaml", *TINY_SEPARATOR,
                   f"--model.priors_dir={tiny_priors_dir}"]
    args = [f"--trainer.max_steps={steps}", "--data.init_args.train_crops=8", "--trainer.logger=false"]

    def job(run_dir: Path, *extra) -> int:
        cfg = run_dir.with_suffix(".yaml")
        cfg.write_text(
            "trainer:\n  callbacks:\n    - class_path: pytorch_lightning.callbacks.ModelCheckpoint\n"
            f"      init_args: {{dirpath: '{run_dir}', filename: '{{step}}', every_n_train_steps: 2, save_top_k: -1, save_last: false}}\n")
        return main([*command[:3], "--config", str(cfg), *command[3:], *args,
                     f"--trainer.default_root_dir={run_dir}", f"--export={run_dir / 'final.pt'}", *extra])

    assert job(tmp_path / "full") == 0
    reference = _weights(tmp_path / "full" / "final.pt")
    for step in (4, 6):
        ckpt = tmp_path / "full" / f"step={step}.ckpt"
        assert torch.load(ckpt, weights_only=False)["global_step"] == step
        assert job(tmp_path / f"from{step}", f"--ckpt_path={ckpt}") == 0
        assert _step(tmp_path / f"from{step}" / f"step={steps}.ckpt") == steps
        _assert_same_weights(reference, _weights(tmp_path / f"from{step}" / "final.pt"))


def test_resumable_loader_skips_what_was_trained_and_moves_to_the_next_epoch():
    from priors.data import ToyDataModule

    dm = ToyDataModule(mode="source", source="saw", crop_length=64, batch_size=2, train_crops=10)
    loader = dm.train_dataloader()
    epoch0 = [b.clone() for b in loader]
    assert len(epoch0) == len(loader) == 5
    assert all(torch.equal(a, b) for a, b in zip(epoch0, dm.train_dataloader()))  # a function of the seed
    loader.sampler.set_epoch(1)
    epoch1 = list(loader)
    assert not torch.equal(epoch0[0], epoch1[0])  # a new order and new crop offsets every epoch

    for trained, expected in [(2, epoch0[2:]), (5, epoch1)]:
        loader.sampler.set_epoch(0)
        loader.trained_batches = lambda: trained
        state = loader.state_dict()
        fresh = dm.train_dataloader()
        fresh.load_state_dict(state)
        rest = list(fresh)
        assert len(rest) == len(expected) and all(torch.equal(a, b) for a, b in zip(rest, expected))
        assert len(list(fresh)) == 5  # only the first iteration skips
