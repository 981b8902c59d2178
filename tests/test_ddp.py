"""Multi-process training through Lightning's own DDP strategy (CPU, gloo, 2 processes).

Every config runs unchanged with ``--trainer.devices N --trainer.strategy ddp``: the prior's and
the encoder's WaveNets have a residual 1x1 conv whose output feeds nothing, which plain DDP
refuses; ``lightning_job.allow_unused_parameters`` turns on ``find_unused_parameters`` for any DDP
strategy not configured explicitly. Here: a tiny prior and a tiny supervised separator train for a
few steps on 2 CPU processes, rank 0 exports, the exports load and score, the replicas stay
identical and the ranks train on different crops; in process, the samplers and data sets give
each rank its own crops (bank and stem-folder crops keyed by the sampler's index), every rank
draws its own σ levels and noise, and the flow's ActNorm initialises from all ranks' first
batches so its replicas stay identical.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 150  # one 2-process job takes ~10-20 s on a loaded 2-core machine

DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
         "--trainer.enable_checkpointing=false", "--trainer.max_steps=3", "--trainer.val_check_interval=3",
         "--trainer.limit_val_batches=1"]
TINY_PRIOR = ["--model.model.init_args.n_layers=3", "--model.model.init_args.residual_channels=8",
              "--model.model.init_args.skip_channels=8", "--data.init_args.crop_length=256",
              "--data.init_args.batch_size=2", "--data.init_args.val_crops=4"]
TINY_SEPARATOR = ["--model.encoder.init_args.n_layers=3", "--model.encoder.init_args.channels=8",
                  "--data.init_args.crop_length=256", "--data.init_args.batch_size=2",
                  "--data.init_args.val_crops=4"]

#: a callback (importable by the DDP children through PYTHONPATH) recording, on every rank, the
#: first training batches and the global torch RNG state before the first step
PROBE = '''
import pytorch_lightning as pl
import torch


class RecordBatches(pl.Callback):
    def __init__(self, out: str, n: int = 2):
        self.out, self.n, self.batches, self.rng, self.initial = out, n, [], None, None

    def on_train_start(self, trainer, pl_module):
        self.initial = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.rng is None:
            self.rng = torch.get_rng_state().clone()
        if len(self.batches) < self.n:
            first = batch[0] if isinstance(batch, (tuple, list)) else batch  # the mixtures of pairs
            self.batches.append(first.detach().cpu().clone())

    def on_train_end(self, trainer, pl_module):
        torch.save({"rank": trainer.global_rank, "world": trainer.world_size, "batches": self.batches,
                    "rng": self.rng, "initial": self.initial,
                    "final": {k: v.detach().clone() for k, v in pl_module.state_dict().items()}}, f"{self.out}/rank{trainer.global_rank}.pt")
'''


def _run_ddp(command: str, config: str, args: list[str], work: Path) -> None:
    """Run ``priorsep <command>`` on 2 CPU processes with the probe attached; fail with its log."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "ddp_probe.py").write_text(PROBE)
    probe = f'--trainer.callbacks=[{{"class_path": "ddp_probe.RecordBatches", "init_args": {{"out": "{work}"}}}}]'
    cmd = [sys.executable, "-m", "separation.cli", command, "--config", config, *DDP, *QUIET, *args,
           f"--trainer.default_root_dir={work}", probe]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "offline",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(work)])}
    env.pop("MASTER_PORT", None)  # Lightning picks a free port
    log = work / "job.log"
    with log.open("w") as out:
        # own process group: a hung run is killed with its DDP child
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            if proc.poll() is None or rc is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=30)
    assert rc == 0, f"rc={rc}\n" + log.read_text()[-4000:]


def _ranks(work: Path) -> list[dict]:
    recs = [torch.load(work / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert [(r["rank"], r["world"]) for r in recs] == [(0, 2), (1, 2)]
    return recs


def _rows(batches: list[torch.Tensor]) -> set[bytes]:
    return {row.numpy().tobytes() for b in batches for row in b}


@pytest.fixture(scope="module")
def ddp_prior(tmp_path_factory):
    work = tmp_path_factory.mktemp("ddp_prior")
    # weight decay: a parameter whose gradient were zeros instead of None would move
    _run_ddp("train-prior", "configs/priors/toy_sin.yaml",
             [*TINY_PRIOR, "--model.weight_decay=0.1", f"--export={work / 'sin.pt'}"], work)
    return work


def test_ddp_prior_trains_exports_on_rank_zero_and_loads(ddp_prior):
    from priors.checkpoint import load_prior
    from priors.data import ToyDataset
    from priors.diagnose import mean_loglik

    log = (ddp_prior / "job.log").read_text()
    assert "Starting with 2 processes" in log and log.count("exported ") == 1  # rank 0 only
    model, meta = load_prior(ddp_prior / "sin.pt")
    assert meta["source"] == "sin" and meta["init_args"]["n_layers"] == 3
    crops = torch.stack([ToyDataset("test", "source", "sin", 256, 4, False)[j] for j in range(4)])
    assert np.isfinite(mean_loglik(model, crops, 0.0)) and np.isfinite(mean_loglik(model, crops, 0.1))


def test_ddp_leaves_the_unused_residual_conv_untouched(ddp_prior):
    # find_unused_parameters: a parameter unused on every rank keeps grad None as in one process,
    # so Adam (even with weight decay) skips it and the exported weights keep every key
    from priors.checkpoint import load_prior

    initial = {k[len("model."):]: v for k, v in _ranks(ddp_prior)[0]["initial"].items()}
    final = torch.load(ddp_prior / "sin.pt", weights_only=False)["state_dict"]
    assert final.keys() == initial.keys()
    params = {name for name, _ in load_prior(ddp_prior / "sin.pt")[0].named_parameters()}
    dead = {"blocks.2.res.weight", "blocks.2.res.bias"}  # the last block's residual output feeds nothing
    assert dead < params and all(torch.equal(final[k], initial[k]) for k in dead)
    assert all(not torch.equal(final[k], initial[k]) for k in params - dead)  # the rest trained


def test_ddp_prior_replicas_stay_identical(ddp_prior):
    r0, r1 = _ranks(ddp_prior)
    for when in ("initial", "final"):
        assert r0[when].keys() == r1[when].keys()
        assert all(torch.equal(r0[when][k], r1[when][k]) for k in r0[when]), when


def test_ddp_flow_prior_replicas_stay_identical(tmp_path):
    work = tmp_path / "flow"
    _run_ddp("train-prior", "configs/priors/toy_sin_flow.yaml",
             ["--model.model.init_args.n_flows=2", "--model.model.init_args.channels=8",
              "--model.model.init_args.n_layers=2", "--data.init_args.crop_length=256", "--data.init_args.batch_size=2",
              "--data.init_args.val_crops=4"], work)
    r0, r1 = _ranks(work)
    differ = sorted(k for k in r0["final"] if not torch.equal(r0["final"][k], r1["final"][k]))
    assert not differ, differ


def test_ddp_prior_ranks_train_on_different_crops(ddp_prior):
    r0, r1 = _ranks(ddp_prior)
    assert len(r0["batches"]) == len(r1["batches"]) == 2
    a, b = _rows(r0["batches"]), _rows(r1["batches"])
    assert len(a) == len(b) == 4 and not a & b  # EpochSampler: disjoint shares of the epoch


def test_ddp_ranks_draw_independent_noise(ddp_prior):
    r0, r1 = _ranks(ddp_prior)
    assert not torch.equal(r0["rng"], r1["rng"])


def test_ddp_supervised_separator_trains_exports_and_loads(tmp_path, tiny_priors_dir):
    from priors.data import ToyDataset
    from separation.checkpoints import load_separator

    work = tmp_path / "sep"
    _run_ddp("train-separator", "configs/separation/toy_supervised.yaml",
             [*TINY_SEPARATOR, f"--model.priors_dir={tiny_priors_dir}", f"--export={work / 'sep.pt'}"], work)
    log = (work / "job.log").read_text()
    assert "Starting with 2 processes" in log and log.count("exported ") == 1
    sep = load_separator(work / "sep.pt", sources=["sin", "square", "saw", "triangle"], priors_dir=tiny_priors_dir)
    mix, _ = ToyDataset("test", "both", crop_length=256, epoch_size=2, random_crops=False)[0]
    est = sep(mix.unsqueeze(0))
    assert est.shape == (1, 4, 256) and torch.isfinite(est).all()
    assert torch.allclose(sep.mix_scale * est.sum(1)[0], mix, atol=1e-4)  # projected onto the mixture

    r0, r1 = _ranks(work)  # Lightning's DistributedSampler: different mixtures on each rank
    assert not _rows(r0["batches"]) & _rows(r1["batches"])


# ---------------------------------------------------------------- strategy mapping, in process
@pytest.mark.parametrize("strategy, devices, nodes, expected", [
    ("ddp", 2, 1, True), ("ddp_spawn", 2, 1, True), ("ddp", 1, 2, True),
    ("auto", 2, 1, True), ("auto", 1, 2, True),  # auto with several devices or nodes is ddp
    ("ddp_find_unused_parameters_false", 2, 1, False),  # an explicit choice is kept
    ("ddp_find_unused_parameters_true", 2, 1, True), ("auto", 1, 1, None)])
def test_unconfigured_ddp_allows_unused_parameters(strategy, devices, nodes, expected):
    import pytorch_lightning as pl

    from separation.commands.lightning_job import allow_unused_parameters

    trainer = pl.Trainer(accelerator="cpu", devices=devices, num_nodes=nodes, strategy=strategy, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    allow_unused_parameters(trainer.strategy)
    assert getattr(trainer.strategy, "_ddp_kwargs", {}).get("find_unused_parameters") == expected


# ---------------------------------------------------------------- samplers, in process
def _fake_world(monkeypatch, rank: int, world: int = 2) -> None:
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda *a, **k: world)
    monkeypatch.setattr(dist, "get_rank", lambda *a, **k: rank)


def test_epoch_sampler_splits_each_epoch_between_ranks(monkeypatch):
    from priors.data import EpochSampler, ToyDataset

    ds = ToyDataset("train", "source", "sin", crop_length=64, epoch_size=20, random_crops=True, seed=3)
    shares = {}
    for rank in (0, 1):
        _fake_world(monkeypatch, rank)
        s = EpochSampler(ds, seed=3)
        assert (s.num_replicas, s.rank, len(s)) == (2, rank, 10)
        s.set_epoch(1)
        shares[rank] = list(s)
    monkeypatch.undo()
    whole = EpochSampler(ds, seed=3)  # one process: the whole epoch
    whole.set_epoch(1)
    idx0, idx1 = ({j for _, j in shares[r]} for r in (0, 1))
    assert not idx0 & idx1 and idx0 | idx1 == {j for _, j in whole} == set(range(20))
    crops0, crops1 = ({ds[i].numpy().tobytes() for i in shares[r]} for r in (0, 1))
    assert len(crops0) == len(crops1) == 10 and not crops0 & crops1


def _first_batches(make_dataset, batch_size: int = 4, world: int = 2):
    """The first training batch of each rank as Lightning builds it: every rank constructs its own
    data set (same seed), and the shuffled loader gets a DistributedSampler (seed PL_GLOBAL_SEED=0)."""
    out = []
    for rank in range(world):
        ds = make_dataset()
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=0)
        batch = next(iter(DataLoader(ds, batch_size=batch_size, sampler=sampler, drop_last=True)))
        out.append(batch[0] if isinstance(batch, (tuple, list)) else batch)
    return out


def test_separation_data_gives_ranks_different_toy_mixtures():
    from separation.data import SeparationDataModule

    for objective in ("supervised", "elbo"):
        dm = SeparationDataModule(objective, crop_length=128, batch_size=4, train_crops=64)
        b0, b1 = _first_batches(dm.train_dataset)
        assert not _rows([b0]) & _rows([b1]), objective


def test_bank_mixtures_differ_across_ranks(tmp_path):
    import json

    from separation.data import BankMixtures

    sources = ["sin", "square", "saw", "triangle"]
    rng = np.random.default_rng(0)
    for s in sources:
        np.save(tmp_path / f"{s}.npy", rng.standard_normal((3, 512)).astype(np.float32))
    (tmp_path / "settings.json").write_text(json.dumps({"sources": sources}))
    b0, b1 = _first_batches(lambda: BankMixtures(tmp_path, sources, crop_length=128, epoch_size=64))
    assert not torch.equal(b0, b1) and not _rows([b0]) & _rows([b1])


def test_stem_folder_crops_differ_across_ranks(tmp_path):
    import soundfile as sf

    from priors.data import StemFolderDataset

    rng = np.random.default_rng(0)
    for t in range(3):
        track = tmp_path / "train" / f"t{t}"
        track.mkdir(parents=True)
        for name in ("mixture", "sin"):
            sf.write(track / f"{name}.wav", 0.1 * rng.standard_normal(2000).astype(np.float32), 8000)
    b0, b1 = _first_batches(lambda: StemFolderDataset(tmp_path, "train", ["sin"], "source", "sin",
                                                      crop_length=256, epoch_size=64))
    assert not torch.equal(b0, b1) and not _rows([b0]) & _rows([b1])
