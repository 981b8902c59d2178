"""Every YAML config instantiates through its command's LightningCLI: ``configs/base/trainer.yaml``
first, then the config; the values the model and the data module share are said once, on the
model, and linked into the data module (``train_prior.LINKS``, ``train_separator.LINKS``)."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "configs" / "base" / "trainer.yaml"
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name in ("priors", "separation"))


def _command(path: Path):
    from separation.commands import train_prior, train_separator

    return train_separator if "separation" in path.parts else train_prior


def _dotted(tree: dict, key: str):
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return KeyError
        tree = tree[part]
    return tree


@pytest.fixture
def no_disk_loads(monkeypatch):
    """Separator configs load priors (and a teacher / init_from) and fine-tuning prior configs
    their first stage's weights (init_weights) from disk: skipped here."""
    import priors.module
    from separation.module import VariationalSeparator

    monkeypatch.setattr(priors.module, "copy_prior_weights", lambda path, model: {})
    monkeypatch.setattr(VariationalSeparator, "load_priors", lambda self, d: None)
    monkeypatch.setattr(VariationalSeparator, "record_priors", lambda self, d: None)


def test_there_are_configs():
    names = {p.stem for p in CONFIGS}
    assert {"toy_sin", "toy_square", "toy_saw", "toy_triangle", "toy", "toy_sleep"} <= names
    assert BASE.is_file()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_parses_with_lightning_cli(path, no_disk_loads, tmp_path):
    """The command's LightningCLI parses the base + config and instantiates model, data and
    trainer (no fit); the linked values reach the data module."""
    import pytorch_lightning as pl

    command = _command(path)
    extra = ["--model.init_from=null"] if command.__name__.endswith("train_separator") else []
    cli = command.make_cli(["--config", str(path), "--trainer.logger=false", "--trainer.callbacks=[]",
                            f"--trainer.default_root_dir={tmp_path}", *extra], log_config=False)
    assert isinstance(cli.model, pl.LightningModule) and isinstance(cli.datamodule, pl.LightningDataModule)
    for source, target in command.LINKS:
        key = target.rsplit(".", 1)[1]
        if target.startswith("data.") and key in cli.datamodule.hparams:
            assert cli.datamodule.hparams[key] == cli.config[source] == cli.model.hparams[source.split(".", 1)[1]]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_configs_say_linked_and_base_values_once(path):
    """A config leaves out what is linked (the data module's copy of a model value) and the base's
    values (it may override them with different ones)."""
    config = yaml.safe_load(path.read_text())
    base = yaml.safe_load(BASE.read_text())
    linked = [target for _, target in _command(path).LINKS if _dotted(config, target) is not KeyError]
    assert not linked, f"{path.name} gives linked values: {linked} (set them on the model only)"

    def same(a, b, prefix=""):
        for key, value in b.items():
            if isinstance(value, dict) and isinstance(a.get(key), dict):
                yield from same(a[key], value, f"{prefix}{key}.")
            elif key in a and a[key] == value:
                yield prefix + key
    repeated = list(same(config, base))
    assert not repeated, f"{path.name} repeats configs/base/trainer.yaml: {repeated}"


def _parse(command, argv):
    return command.make_cli(argv, instantiate=False).config


def test_base_is_applied_first_and_a_config_overrides_it(tmp_path):
    from separation.commands import train_prior

    cfg = _parse(train_prior, ["--config", str(ROOT / "configs/priors/toy_sin.yaml")])
    assert cfg.seed_everything == 0
    t = cfg.trainer
    assert (t.accelerator, t.devices, t.precision, t.gradient_clip_val, t.check_val_every_n_epoch) == \
        ("auto", 1, "32-true", 1.0, None)
    assert t.logger.class_path == "pytorch_lightning.loggers.WandbLogger"
    logger = t.logger.init_args
    assert (logger.project, logger.save_dir, logger.offline, logger.name) == ("priorsep", "runs", True, "toy_sin_wavenet")
    assert t.max_steps == 2000 and t.default_root_dir == "runs/priors/toy_sin"

    override = tmp_path / "override.yaml"  # a later --config wins over the base and the first config
    override.write_text("seed_everything: 3\ntrainer:\n  gradient_clip_val: 0.5\n  logger:\n"
                        "    init_args: {offline: false}\n")
    cfg = _parse(train_prior, ["--config", str(ROOT / "configs/priors/toy_sin.yaml"), "--config", str(override),
                               "--trainer.max_steps=7"])
    assert (cfg.seed_everything, cfg.trainer.gradient_clip_val, cfg.trainer.max_steps) == (3, 0.5, 7)
    assert (cfg.trainer.logger.init_args.offline, cfg.trainer.logger.init_args.name) == (False, "toy_sin_wavenet")


def test_missing_base_config_is_a_user_error(monkeypatch, tmp_path):
    from separation.commands import lightning_job, train_prior
    from separation.errors import PriorsepError

    monkeypatch.setattr(lightning_job, "BASE_CONFIGS", (tmp_path / "nope.yaml",))
    with pytest.raises(PriorsepError, match="base config"):
        _parse(train_prior, ["--config", str(ROOT / "configs/priors/toy_sin.yaml")])


def test_linked_values_propagate_to_the_data_module(no_disk_loads, tmp_path):
    from separation.commands import train_prior, train_separator

    cfg = _parse(train_separator, ["--config", str(ROOT / "configs/separation/toy.yaml"), "--model.objective=supervised",
                                   "--model.sources=[a, b, c, d]", "--model.sample_rate=22050", "--model.mix_scale=1.0"])
    data = cfg.data.init_args
    assert (data.objective, data.sources, data.sample_rate, data.mix_scale) == ("supervised", ["a", "b", "c", "d"], 22050, 1.0)
    # MusdbDataModule has no objective: that link is skipped, the others apply
    cfg = _parse(train_separator, ["--config", str(ROOT / "configs/separation/musdb.yaml"), "--model.sample_rate=44100"])
    assert "objective" not in cfg.data.init_args
    assert (cfg.data.init_args.sources, cfg.data.init_args.sample_rate, cfg.data.init_args.mix_scale) == \
        (["vocals", "drums", "bass", "other"], 44100, 1.0)
    # a prior: the source reaches the instantiated data module (ToyDataModule has no sample_rate)
    cli = train_prior.make_cli(["--config", str(ROOT / "configs/priors/toy_sin.yaml"), "--model.source=saw",
                                "--trainer.logger=false", "--trainer.callbacks=[]",
                                f"--trainer.default_root_dir={tmp_path}"], log_config=False)
    assert cli.model.hparams.source == cli.datamodule.hparams.source == "saw"
    assert "sample_rate" not in cli.datamodule.hparams


def test_the_prior_sample_rate_reaches_a_network_that_takes_one(tmp_path):
    pytest.importorskip("priors.frame_prior")
    from separation.commands import train_prior

    config = tmp_path / "frame.yaml"
    config.write_text("model:\n  source: violin\n  sample_rate: 16000\n  model:\n"
                      "    class_path: priors.frame_prior.FramePrior\n"
                      "data:\n  class_path: priors.data.StemDataModule\n"
                      "  init_args: {root: data/chorales, sources: [violin, clarinet]}\n")
    cfg = _parse(train_prior, ["--config", str(config)])
    assert cfg.model.model.init_args.sample_rate == cfg.data.init_args.sample_rate == 16000
    assert cfg.data.init_args.source == "violin"


def test_an_explicit_linked_value_must_agree_with_the_model(tmp_path):
    """jsonargparse would silently replace it with the linked value: a different one is refused
    (command line or config file), an equal one is accepted."""
    from separation.commands import train_prior, train_separator
    from separation.errors import PriorsepError

    toy = str(ROOT / "configs/separation/toy.yaml")
    with pytest.raises(PriorsepError, match="data.init_args.objective is linked to model.objective"):
        _parse(train_separator, ["--config", toy, "--data.init_args.objective", "sleep"])
    stale = tmp_path / "stale.yaml"
    stale.write_text("data:\n  init_args:\n    sources: [sin, square]\n")
    with pytest.raises(PriorsepError, match=f"{stale} sets it to"):
        _parse(train_separator, ["--config", toy, "--config", str(stale)])
    cfg = _parse(train_separator, ["--config", toy, "--config", str(stale), "--model.sources=[sin, square]"])
    assert cfg.data.init_args.sources == ["sin", "square"]
    cfg = _parse(train_prior, ["--config", str(ROOT / "configs/priors/toy_sin.yaml"), "--model.source=saw",
                               "--data.init_args.source=saw"])
    assert cfg.data.init_args.source == "saw"
