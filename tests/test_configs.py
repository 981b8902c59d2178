"""Every YAML config instantiates: its classes import and accept their arguments."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def _instantiate(spec):
    import importlib

    if isinstance(spec, dict) and "class_path" in spec:
        mod, _, name = spec["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(mod), name)
        return cls, {k: v for k, v in (spec.get("init_args") or {}).items()}
    return None, spec


def test_there_are_configs():
    names = {p.stem for p in CONFIGS}
    assert {"toy_sin", "toy_square", "toy_saw", "toy_triangle", "toy", "toy_sleep"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_parses_with_lightning_cli(path, monkeypatch, tmp_path):
    """LightningCLI parses and instantiates model, data and trainer classes (no fit).
    Separator configs need priors and banks on disk, so their model is built from the parsed
    namespace with those loads skipped."""
    from pytorch_lightning.cli import LightningCLI
    import pytorch_lightning as pl

    cfg = yaml.safe_load(path.read_text())
    if "separation" in path.parts:
        from separation.module import VariationalSeparator as Module

        monkeypatch.setattr(Module, "load_priors", lambda self, d: None)
        monkeypatch.setattr(Module, "record_priors", lambda self, d: None)
        cfg["model"].pop("init_from", None)
    else:
        from priors.module import SourcePrior as Module
    cfg["trainer"]["logger"] = False
    cfg["trainer"]["callbacks"] = []
    cfg["trainer"]["default_root_dir"] = str(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    cli = LightningCLI(Module, pl.LightningDataModule, subclass_mode_data=True, run=False,
                       args=["--config", str(tmp_path / "config.yaml")], save_config_callback=None)
    assert isinstance(cli.model, Module) and cli.datamodule is not None
