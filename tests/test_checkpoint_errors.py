"""A checkpoint that does not fit the request stops the console script with ONE line on stderr,
``priorsep: error: …``, and exit code 2 (no traceback): a separator for another source set, a
separator whose priors changed since training, priors at different sample rates, a prior given
where a separator is expected."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TOY

ROOT = Path(__file__).resolve().parents[1]


def _separator(priors_dir: Path, path: Path, **meta_changes) -> None:
    """A tiny (untrained) variational separator, recorded against the priors of ``priors_dir``."""
    from separation.checkpoints import save_separator
    from separation.encoder import WaveNetEncoder
    from separation.module import VariationalSeparator

    torch.manual_seed(0)
    sep = VariationalSeparator(WaveNetEncoder(n_sources=4, n_layers=3, channels=8), objective="elbo",
                               priors_dir=str(priors_dir))
    save_separator(path, sep.encoder, {**sep.describe(), **meta_changes})


def _edit_prior(path: Path, **meta_changes) -> None:
    from priors.checkpoint import load_prior, save_prior

    model, meta = load_prior(path)
    if not meta_changes:  # new weights
        torch.nn.init.normal_(model.out2.weight)
    save_prior(path, model, {**meta, **meta_changes})


def _cli(*args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "separation.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


BENCH = ["benchmark", "toy", "--n", "2", "--length", "512", "--quiet", "--langevin-steps", "1", "--langevin-levels", "1"]


def test_mismatching_checkpoints_give_one_line_errors(tmp_path, tiny_priors_dir):
    cases = {}  # name -> (command, expected part of the message)

    changed = tmp_path / "changed"  # the separator's priors were retrained afterwards
    shutil.copytree(tiny_priors_dir, changed)
    _separator(changed, changed / "separator_elbo.pt")
    _edit_prior(changed / "saw.pt")
    cases["priors changed"] = ([*BENCH, "--methods", "variational", "--checkpoints", str(changed)],
                               "trained against other priors than")

    sources = tmp_path / "sources"  # a separator for another source set
    shutil.copytree(tiny_priors_dir, sources)
    _separator(sources, sources / "separator_elbo.pt", sources=["vocals", "drums", "bass", "other"])
    cases["source set"] = ([*BENCH, "--methods", "variational", "--checkpoints", str(sources)],
                           "separator is for ['vocals', 'drums', 'bass', 'other'], expected")

    rates = tmp_path / "rates"  # one prior trained at another sample rate
    shutil.copytree(tiny_priors_dir, rates)
    _edit_prior(rates / "sin.pt", sample_rate=16_000)
    cases["sample rates"] = ([*BENCH, "--methods", "langevin", "--checkpoints", str(rates)],
                             "priors disagree on the sample rate")

    import soundfile as sf

    sf.write(tmp_path / "mix.wav", np.zeros(2000, np.float32), 14_700)
    cases["not a separator"] = (["separate", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "out"), "--model",
                                 str(tiny_priors_dir / "sin.pt"), "--quiet"], "not a separator checkpoint")

    procs = {name: _cli(*cmd) for name, (cmd, _) in cases.items()}  # side by side
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (name, err[-2000:])
        assert err.startswith("priorsep: error:") and err.count("\n") == 1 and err.endswith("\n"), (name, err)
        assert cases[name][1] in err, (name, err)


def test_a_separator_for_another_sample_rate_is_refused(tmp_path, tiny_priors_dir):
    d = tmp_path / "rate"
    shutil.copytree(tiny_priors_dir, d)
    _separator(d, d / "separator_elbo.pt", sample_rate=44_100)
    proc = _cli(*BENCH, "--methods", "variational", "--checkpoints", str(d))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and err.startswith("priorsep: error:") and err.count("\n") == 1, err
