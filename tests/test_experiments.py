"""The probe scripts in experiments/ compile, and import without running their work: every one
keeps its work under ``if __name__ == "__main__":`` (no computation, no global torch settings, no
files written at import)."""
from __future__ import annotations

import importlib.util
import py_compile
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBES = sorted((ROOT / "experiments").glob("*.py"))


def test_there_are_probes():
    assert PROBES, "experiments/*.py: no probe scripts found"


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
def test_probe_compiles(probe, tmp_path):
    py_compile.compile(str(probe), cfile=str(tmp_path / (probe.stem + ".pyc")), doraise=True)


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
def test_probe_imports_without_running(probe, monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    assert 'if __name__ == "__main__":' in probe.read_text(encoding="utf-8"), \
        f"{probe.name}: guard its work with if __name__ == \"__main__\":"
    monkeypatch.chdir(tmp_path)  # a probe that wrote files at import would write them here
    monkeypatch.setattr(sys, "argv", [str(probe)])  # and a probe parsing argv at import would fail
    grad, threads = torch.is_grad_enabled(), torch.get_num_threads()
    name = f"_priorsep_experiment_{probe.stem}"
    spec = importlib.util.spec_from_file_location(name, probe)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        after = torch.is_grad_enabled(), torch.get_num_threads()
    finally:
        sys.modules.pop(name, None)
        torch.set_grad_enabled(grad)
        torch.set_num_threads(threads)
    assert after == (grad, threads), f"{probe.name} changed torch's global settings at import"
    assert not any(tmp_path.iterdir()), f"{probe.name} wrote files at import: {list(tmp_path.iterdir())}"
