"""The Python API (``separation.separate``, ``separation.load_separator``, ``priors.load_prior``),
the named-model registry, ``priorsep models`` and the toy-model mismatch warning."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import priors
import separation
from separation.cli import main
from separation.errors import PriorsepError
from separation.models import MODELS, PRETRAINED_DIR, ToyModelWarning, repository_path, resolve_model

ROOT = Path(__file__).resolve().parents[1]
TOY = ["sin", "square", "saw", "triangle"]


def test_importing_the_packages_does_not_import_torch():
    code = "import sys, priors, separation; separation.MODELS; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_separate_mono_at_the_model_rate_returns_named_stems_that_add_up_to_the_input():
    x = (0.1 * np.random.default_rng(0).standard_normal(2000)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ToyModelWarning)  # a toy-set signal: no warning
        out = separation.separate(x, 14_700, model="toy-fast")
    assert list(out) == TOY
    assert all(v.shape == x.shape and v.dtype == np.float32 for v in out.values())
    sep = separation.load_separator("toy-fast")
    assert np.allclose(sep.mix_scale * sum(out.values()), x, atol=1e-5)  # projected onto the mixture


@pytest.mark.parametrize("time_major", [False, True], ids=["channels-time", "time-channels"])
def test_separate_stereo_at_another_rate_keeps_rate_layout_and_length_and_warns(time_major):
    x = (0.1 * np.random.default_rng(1).standard_normal((2, 4411))).astype(np.float32)
    x = x.T if time_major else x
    with pytest.warns(ToyModelWarning, match=r"44100 Hz, 2 channels.*model=\"NAME\".*priorsep models") as record:
        out = separation.separate(x, 44_100, model="toy-fast")
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert set(out) == set(TOY) and all(v.shape == x.shape for v in out.values())
    with pytest.warns(ToyModelWarning):  # the same recording in the other layout: the same estimates
        y = separation.separate(np.ascontiguousarray(x.T), 44_100, model="toy-fast")
    assert all(np.allclose(out[s], y[s].T, atol=1e-6) for s in TOY)


def test_separate_accepts_a_loaded_separator_and_refuses_bad_audio():
    sep = separation.load_separator("toy-fast")
    out = separation.separate(np.zeros(500, np.float32), 14_700, model=sep)
    assert set(out) == set(TOY)
    with pytest.raises(ValueError, match="NaN"):
        separation.separate(np.full(100, np.nan, np.float32), 14_700, model=sep)
    with pytest.raises(ValueError, match="shape"):
        separation.separate(np.zeros((1, 2, 100), np.float32), 14_700, model=sep)


def test_load_separator_by_name_and_by_path():
    by_name = separation.load_separator("toy")
    by_path = separation.load_separator(ROOT / "checkpoints" / "toy_gpu" / "separator_elbo.pt")  # the link
    assert by_name.sources == by_path.sources == TOY and by_name.sample_rate == 14_700
    assert by_name.meta["objective"] == "elbo"
    a, b = by_name.state_dict(), by_path.state_dict()
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert resolve_model("toy") == PRETRAINED_DIR / "toy.pt"
    assert separation.DEFAULT_MODEL == "toy" and list(MODELS)[0] == "toy"


def test_every_named_model_is_packaged_and_loads():
    for name, model in MODELS.items():
        assert model.path.is_file() and model.path.parent == PRETRAINED_DIR, name
        assert separation.load_separator(name).sources, name


def test_an_unknown_model_name_is_a_one_line_error_listing_the_names(tmp_path, capsys):
    with pytest.raises(PriorsepError, match=r"unknown model 'nope'.*toy, toy-fast"):
        separation.load_separator("nope")
    with pytest.raises(PriorsepError, match="checkpoint not found"):
        resolve_model(tmp_path / "missing.pt")
    import soundfile as sf

    sf.write(tmp_path / "mix.wav", np.zeros(100, np.float32), 14_700)
    assert main(["separate", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "out"), "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("priorsep: error: unknown model 'nope'") and err.count("\n") == 1 and "toy-fast" in err


def test_load_prior_on_a_shipped_prior():
    model, meta = priors.load_prior(ROOT / "checkpoints" / "toy_gpu" / "sin.pt")
    assert meta["source"] == "sin" and meta["sample_rate"] == 14_700 and not model.training


def test_models_command_lists_every_model_from_its_metadata(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("toy (default)\n") and "\ntoy-fast\n" in text
    assert "sample rate  14700 Hz" in text and "elbo (unsupervised" in text and "distil (unsupervised" in text
    assert str(PRETRAINED_DIR / "toy.pt") in text
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(MODELS) and rows[0]["default"] and not rows[1]["default"]
    toy = rows[0]
    assert toy["sources"] == TOY and toy["sample_rate"] == 14_700 and toy["supervised"] is False
    assert toy["size_bytes"] == (PRETRAINED_DIR / "toy.pt").stat().st_size and 100_000 < toy["parameters"] < 10**7


def test_a_supervised_checkpoint_is_described_as_supervised():
    from separation.models import describe_model

    info = describe_model(ROOT / "checkpoints" / "toy_gpu" / "separator_supervised.pt")
    assert info["name"] is None and info["objective"] == "supervised" and info["supervised"] is True


def test_separate_command_warns_once_for_the_toy_model_on_a_song_and_not_on_a_toy_file(tmp_path, capsys):
    import soundfile as sf

    rng = np.random.default_rng(2)
    sf.write(tmp_path / "song.wav", (0.1 * rng.standard_normal((4410, 2))).astype(np.float32), 44_100)
    sf.write(tmp_path / "song2.wav", (0.1 * rng.standard_normal((4410, 2))).astype(np.float32), 44_100)
    sf.write(tmp_path / "toy.wav", (0.1 * rng.standard_normal(1470)).astype(np.float32), 14_700)
    args = ["--model", "toy-fast", "--quiet", "--chunk-seconds", "0.1"]
    assert main(["separate", str(tmp_path / "toy.wav"), "-o", str(tmp_path / "o1"), *args]) == 0
    assert capsys.readouterr().err == ""
    assert main(["separate", str(tmp_path / "song.wav"), str(tmp_path / "song2.wav"), "-o", str(tmp_path / "o2"),
                 *args]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"priorsep: warning: {tmp_path / 'song.wav'} (44100 Hz, 2 channels)")
    assert "--model NAME" in err and "priorsep models" in err
    info = sf.info(str(tmp_path / "o2" / "song2" / "saw.wav"))
    assert (info.samplerate, info.channels, info.frames) == (44_100, 2, 4410)


def test_repository_relative_defaults_resolve_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert repository_path("checkpoints/toy") == ROOT / "checkpoints" / "toy"
    (tmp_path / "checkpoints" / "toy").mkdir(parents=True)  # the working directory wins
    assert repository_path("checkpoints/toy") == Path("checkpoints/toy")
    with pytest.raises(PriorsepError, match=r"checkpoints/nowhere: not found.*pass --priors DIR"):
        repository_path("checkpoints/nowhere", "--priors")


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`priorsep models | head`: a broken pipe ends the command with 141 and no traceback."""
    import subprocess
    import sys

    code = ("import sys\nfrom separation.cli import _guard\n"
            "def listing():\n    raise BrokenPipeError(32, 'Broken pipe')\n"
            "sys.exit(_guard(listing))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 141 and "Traceback" not in done.stderr, done.stderr
