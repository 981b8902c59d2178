"""The separator's Lightning job: priors frozen, training data as promised per objective."""
import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from separation.data import BankMixtures, SeparationDataModule
from separation.encoder import WaveNetEncoder
from separation.module import VariationalSeparator


def _trainer(steps=2):
    return pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      limit_val_batches=0, enable_model_summary=False, accelerator="cpu")


def _separator(priors_dir, objective="elbo", **kw):
    torch.manual_seed(0)
    enc = WaveNetEncoder(n_sources=4, n_layers=3, channels=8)
    return VariationalSeparator(enc, objective=objective, priors_dir=str(priors_dir), **kw)


def _bank(tmp_path, n=6, length=512):
    import json

    bank = tmp_path / "bank"
    bank.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for s in ["sin", "square", "saw", "triangle"]:
        np.save(bank / f"{s}.npy", rng.uniform(-1, 1, (n, length)).astype(np.float32))
    (bank / "settings.json").write_text(json.dumps({"sources": ["sin", "square", "saw", "triangle"]}))
    return bank


def test_priors_are_frozen_and_unchanged_by_training(tiny_priors_dir):
    sep = _separator(tiny_priors_dir)
    before = [{k: v.clone() for k, v in p.state_dict().items()} for p in sep._priors]
    opt_params = {id(p) for p in sep.configure_optimizers().param_groups[0]["params"]}
    assert not any(id(p) in opt_params for prior in sep._priors for p in prior.parameters())
    assert all(not p.requires_grad for prior in sep._priors for p in prior.parameters())
    enc_before = {k: v.clone() for k, v in sep.encoder.state_dict().items()}
    dm = SeparationDataModule("elbo", crop_length=256, batch_size=2, train_crops=8)
    _trainer().fit(sep, dm)
    for prior, ref in zip(sep._priors, before):
        assert not prior.training
        for k, v in prior.state_dict().items():
            assert torch.equal(v, ref[k]), k
    assert any(not torch.equal(v, enc_before[k]) for k, v in sep.encoder.state_dict().items())


@pytest.mark.parametrize("objective", ["elbo", "remix"])
def test_unsupervised_training_step_sees_mixtures_only(tiny_priors_dir, monkeypatch, objective):
    seen = []
    original = VariationalSeparator.training_step

    def spy(self, batch, batch_idx):
        seen.append(batch)
        return original(self, batch, batch_idx)

    monkeypatch.setattr(VariationalSeparator, "training_step", spy)
    sep = _separator(tiny_priors_dir, objective=objective)
    _trainer(3).fit(sep, SeparationDataModule(objective, crop_length=128, batch_size=2, train_crops=8))
    assert len(seen) == 3
    for batch in seen:
        assert isinstance(batch, torch.Tensor) and batch.shape == (2, 128), type(batch)


def test_sleep_phase_never_reads_real_sources(tiny_priors_dir, tmp_path, monkeypatch):
    from priors import data as toy

    def forbidden(*a, **k):
        raise AssertionError("sleep training touched real data")

    monkeypatch.setattr(toy.ToyDataset, "__getitem__", forbidden)
    monkeypatch.setattr(toy.StemFolderDataset, "__getitem__", forbidden)
    bank = _bank(tmp_path)
    sep = _separator(tiny_priors_dir, objective="sleep")
    dm = SeparationDataModule("sleep", bank=str(bank), crop_length=128, batch_size=2, train_crops=8)
    _trainer(2).fit(sep, dm)


def test_bank_mixtures_equal_the_sum_of_their_parts(tmp_path):
    ds = BankMixtures(_bank(tmp_path), ["sin", "square", "saw", "triangle"], crop_length=100, mix_scale=0.25)
    for j in range(5):
        mix, parts = ds[j]
        assert parts.shape == (4, 100)
        assert torch.allclose(mix, 0.25 * parts.sum(0), atol=1e-6)
    with pytest.raises(ValueError):
        BankMixtures(_bank(tmp_path / "x"), ["vocals", "drums", "bass", "other"])


def test_separator_checkpoint_round_trip_and_mismatch(tiny_priors_dir, tmp_path):
    from priors.checkpoint import CheckpointError, save_prior, load_prior
    from separation.checkpoints import load_separator, save_separator

    sep = _separator(tiny_priors_dir)
    path = tmp_path / "sep.pt"
    save_separator(path, sep.encoder, sep.describe())
    loaded = load_separator(path, sources=["sin", "square", "saw", "triangle"], priors_dir=tiny_priors_dir)
    mix = torch.randn(2, 300)
    assert torch.allclose(loaded(mix), sep(mix).detach(), atol=1e-6)
    with pytest.raises(CheckpointError, match="separator is for"):
        load_separator(path, sources=["vocals", "drums", "bass", "other"])
    model, meta = load_prior(tiny_priors_dir / "saw.pt")
    torch.nn.init.normal_(model.out2.weight)
    save_prior(tiny_priors_dir / "saw.pt", model, meta)
    with pytest.raises(CheckpointError, match="other priors"):
        load_separator(path, priors_dir=tiny_priors_dir)
    # a separator scored against a background prior records it, and refuses another one
    from priors.checkpoint import describe_prior, write_manifest
    from tests.conftest import TOY, tiny_wavenet

    bg = tiny_wavenet()
    save_prior(tiny_priors_dir / "background.pt", bg, describe_prior(bg, "background", 14_700))
    write_manifest(tiny_priors_dir, TOY, 14_700, background="background.pt")
    ratio_sep = _separator(tiny_priors_dir)
    assert all(m["background_hash"] for m in ratio_sep.prior_metas)
    save_separator(path, ratio_sep.encoder, ratio_sep.describe())
    assert load_separator(path, priors_dir=tiny_priors_dir) is not None
    torch.nn.init.normal_(bg.out2.weight)
    save_prior(tiny_priors_dir / "background.pt", bg, describe_prior(bg, "background", 14_700))
    with pytest.raises(CheckpointError, match="background prior changed"):
        load_separator(path, priors_dir=tiny_priors_dir)
    # the priors never entered a supervised separator's loss: it may sit beside any priors
    save_separator(path, sep.encoder, {**sep.describe(), "objective": "supervised"})
    assert load_separator(path, priors_dir=tiny_priors_dir) is not None
    with pytest.raises(CheckpointError, match="not a separator"):
        load_separator(tiny_priors_dir / "sin.pt")


def test_remix_teacher_is_frozen_and_tracks_the_student_by_ema(tiny_priors_dir):
    sep = _separator(tiny_priors_dir, objective="remix", teacher_ema=0.5)
    teacher = sep._teacher[0]
    assert all(not p.requires_grad for p in teacher.parameters())
    assert not any(p is q for p in teacher.parameters() for q in sep.encoder.parameters())
    assert all("_teacher" not in k for k in sep.state_dict())
    before = [p.clone() for p in teacher.parameters()]
    with torch.no_grad():
        for p in sep.encoder.parameters():
            p.add_(1.0)
    sep.on_train_batch_end(None, None, 0)
    for b, t, s in zip(before, teacher.parameters(), sep.encoder.parameters()):
        assert torch.allclose(t, 0.5 * b + 0.5 * s)


def test_remix_targets_add_up_to_their_remixed_mixture(tiny_priors_dir, monkeypatch):
    sep = _separator(tiny_priors_dir, objective="remix")
    seen = {}
    monkeypatch.setattr(sep, "pair_loss", lambda m, s: seen.update(mix=m, src=s) or m.sum())
    mix = torch.randn(3, 64) * 0.1
    sep.remix_loss(mix)
    assert seen["src"].shape == (3, 4, 64)
    assert torch.allclose(seen["mix"], 0.25 * seen["src"].sum(1), atol=1e-6)
    # the estimates are re-used, only their pairing across the batch changes
    assert torch.allclose(seen["mix"].sum(), mix.sum(), atol=1e-4)


def test_remix_teacher_survives_a_checkpoint(tiny_priors_dir):
    sep = _separator(tiny_priors_dir, objective="remix")
    with torch.no_grad():
        for p in sep._teacher[0].parameters():
            p.add_(0.5)
    ckpt = {}
    sep.on_save_checkpoint(ckpt)
    fresh = _separator(tiny_priors_dir, objective="remix")
    fresh.on_load_checkpoint(ckpt)
    for a, b in zip(sep._teacher[0].parameters(), fresh._teacher[0].parameters()):
        assert torch.equal(a, b)


def test_distillation_fits_a_frozen_teacher_on_mixtures_only(tiny_priors_dir, tmp_path, monkeypatch):
    from separation.checkpoints import save_separator

    teacher_file = tmp_path / "teacher.pt"
    trained = _separator(tiny_priors_dir, objective="remix")
    with torch.no_grad():
        torch.nn.init.normal_(trained.encoder.out2.weight, std=0.1)
    save_separator(teacher_file, trained.encoder, trained.describe())
    with pytest.raises(ValueError, match="teacher"):
        _separator(tiny_priors_dir, objective="distil")
    torch.manual_seed(0)
    sep = VariationalSeparator(WaveNetEncoder(n_sources=4, n_layers=2, channels=8, gate_channels=4), objective="distil",
                               priors_dir=str(tiny_priors_dir), teacher=str(teacher_file))
    teacher = sep._distil_teacher[0]
    assert all("teacher" not in k for k in sep.state_dict())
    assert all(not p.requires_grad for p in teacher.parameters())
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    # the targets are the teacher's (projected) estimates of the same mixture
    seen = {}
    mix = torch.randn(2, 100) * 0.1
    with monkeypatch.context() as m:
        m.setattr(sep, "pair_loss", lambda x, s: seen.update(mix=x, src=s) or x.sum())
        sep.distil_loss(mix)
    assert torch.equal(seen["mix"], mix)
    assert torch.allclose(seen["src"], teacher(mix), atol=1e-6)
    assert torch.allclose(0.25 * seen["src"].sum(1), mix, atol=1e-5)
    # a training run sees mixtures only, moves the student and leaves the teacher as it was
    batches = []
    original = VariationalSeparator.training_step
    monkeypatch.setattr(VariationalSeparator, "training_step",
                        lambda self, b, i: batches.append(b) or original(self, b, i))
    student_before = {k: v.clone() for k, v in sep.encoder.state_dict().items()}
    _trainer(2).fit(sep, SeparationDataModule("distil", crop_length=128, batch_size=2, train_crops=8))
    assert len(batches) == 2 and all(isinstance(b, torch.Tensor) and b.shape == (2, 128) for b in batches)
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert any(not torch.equal(v, student_before[k]) for k, v in sep.encoder.state_dict().items())


def test_learning_rate_decays_by_cosine_to_a_twentieth_when_asked(tiny_priors_dir):
    seen = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    for decay, decay_steps in ((False, None), (True, None), (True, 10)):
        seen.clear()
        sep = _separator(tiny_priors_dir, objective="remix", lr=1e-3, lr_decay=decay, lr_decay_steps=decay_steps)
        trainer = pl.Trainer(max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             limit_val_batches=0, enable_model_summary=False, accelerator="cpu", callbacks=[Record()])
        trainer.fit(sep, SeparationDataModule("remix", crop_length=128, batch_size=2, train_crops=8))
        if decay:  # over max_steps, or over lr_decay_steps (a run stopped part-way through its schedule)
            total = decay_steps or 4
            want = [1e-3 * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * s / total))) for s in range(4)]
            assert seen == pytest.approx(want)
        else:
            assert seen == [1e-3] * 4
