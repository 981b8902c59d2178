import pytest
import torch

from priors.checkpoint import CheckpointError, load_prior, load_priors, save_prior
from tests.conftest import TOY, tiny_wavenet


def test_compact_checkpoint_round_trip(tiny_priors_dir):
    model, meta = load_prior(tiny_priors_dir / "saw.pt")
    assert meta["source"] == "saw" and meta["sample_rate"] == 14_700
    assert meta["class_path"] == "priors.wavenet.WaveNet"
    x = torch.rand(2, 64) * 2 - 1
    again, _ = load_prior(tiny_priors_dir / "saw.pt")
    assert torch.equal(model.log_prob(x, 0.1), again.log_prob(x, 0.1))


def test_priors_load_onto_the_requested_device(tiny_priors_dir):
    # `priorsep sample/diagnose/benchmark --device cuda` broke on a GPU: weights were read to the
    # device but the rebuilt model stayed on the CPU. "meta" stands in for a GPU here.
    models, _ = load_priors(tiny_priors_dir, torch.device("meta"))
    for model in models:
        tensors = list(model.parameters()) + list(model.buffers())
        assert tensors and all(t.device.type == "meta" for t in tensors)


def test_load_priors_in_manifest_order_and_validates_sources(tiny_priors_dir):
    models, metas = load_priors(tiny_priors_dir, sources=TOY)
    assert [m["source"] for m in metas] == TOY and all(len(m["hash"]) == 16 for m in metas)
    with pytest.raises(CheckpointError, match="expected"):
        load_priors(tiny_priors_dir, sources=["vocals", "drums", "bass", "other"])


def test_bad_checkpoints_give_one_line_errors(tmp_path, tiny_priors_dir):
    with pytest.raises(CheckpointError, match="not found"):
        load_prior(tmp_path / "missing.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_prior(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": "priorsep-separator/1"}, other)
    with pytest.raises(CheckpointError, match="not a prior checkpoint"):
        load_prior(other)
    model, meta = load_prior(tiny_priors_dir / "sin.pt")
    meta["init_args"] = {**meta["init_args"], "residual_channels": 16}
    save_prior(tmp_path / "mismatch.pt", tiny_wavenet(), meta)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_prior(tmp_path / "mismatch.pt")


def test_priors_are_found_by_source_name_without_a_manifest(tiny_priors_dir):
    from priors.checkpoint import CheckpointError, load_priors

    (tiny_priors_dir / "manifest.json").unlink()
    (tiny_priors_dir / "separator_elbo.pt").write_bytes(b"not a prior")
    order = ["triangle", "sin", "saw", "square"]
    _, metas = load_priors(tiny_priors_dir, sources=order)
    assert [m["source"] for m in metas] == order
    with pytest.raises(CheckpointError, match="vocals"):
        load_priors(tiny_priors_dir, sources=["vocals", "sin", "saw", "square"])


def test_a_prior_job_can_start_from_exported_weights(tiny_priors_dir):
    from priors.module import SourcePrior

    trained, meta = load_prior(tiny_priors_dir / "square.pt")
    fresh = tiny_wavenet()
    x = torch.rand(2, 64) * 2 - 1
    assert not torch.equal(fresh.log_prob(x, 0.1), trained.log_prob(x, 0.1))
    job = SourcePrior(fresh, source="square", init_weights=str(tiny_priors_dir / "square.pt"))
    assert job.model is fresh and torch.equal(fresh.log_prob(x, 0.1), trained.log_prob(x, 0.1))
    other = type(fresh)(**{**fresh.init_args, "residual_channels": fresh.init_args["residual_channels"] * 2})
    with pytest.raises(CheckpointError, match="does not match"):
        SourcePrior(other, source="square", init_weights=str(tiny_priors_dir / "square.pt"))
    # a checkpoint written before an argument existed: that argument counts at its default
    old = torch.load(tiny_priors_dir / "square.pt", weights_only=False)
    newest = next(reversed(old["init_args"]))
    del old["init_args"][newest]
    torch.save(old, tiny_priors_dir / "older.pt")
    SourcePrior(tiny_wavenet(), source="square", init_weights=str(tiny_priors_dir / "older.pt"))
