"""Reproducibility: the toy test set is the same on every machine, and a benchmark run twice
gives the same numbers."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from priors.data import TOY_SOURCES, ToyGenerator

ROOT = Path(__file__).resolve().parents[1]

# sha256 of test examples 0, 1, 2 (all 48 000 samples) quantised to 1e-6 (int64 little-endian):
# a pinned reference of the data itself, recorded once. Quantising absorbs last-ulp differences
# of sin/sawtooth between numpy builds and CPUs; any real change of the set changes the digest.
PINNED_TEST_DIGESTS = {
    "sin": "0e3136626f124efed9ef0776cc39613c4273d0c1d7bd5cf8d232a1d1daec68be",
    "square": "ee84066262395302f52c783d27d117386f35a2e39b2ceb06beabb1e1c77f0c5d",
    "saw": "0661bfdf065dd58c8e86de02e3e00cc0919ad960b8730946c679f7d7815aa336",
    "triangle": "85cc185c45a8ce0fd81189ed6715564aceb89ef3ed4bc54e24f043072118cf69",
    "mixture": "270c54e02aaf791f1d7170f3963202cf7c9149a3d21a0fc162ecef7774668b20",
}


def _digest(x: np.ndarray) -> str:
    quantised = np.round(np.asarray(x, dtype=np.float64) * 1e6).astype("<i8")
    return hashlib.sha256(quantised.tobytes()).hexdigest()


def test_toy_test_set_is_pinned():
    crops = np.stack([ToyGenerator().crop("test", i) for i in range(3)])  # (3, K, 48000) float32
    assert crops.shape == (3, len(TOY_SOURCES), 48_000) and crops.dtype == np.float32
    found = {s: _digest(crops[:, k]) for k, s in enumerate(TOY_SOURCES)}
    found["mixture"] = _digest(ToyGenerator.mix(crops))
    assert found == PINNED_TEST_DIGESTS


def _benchmark(out: Path, hash_seed: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "separation.cli", "benchmark", "toy", "--methods", "mixture", "nmf",
           "--n", "4", "--length", "2048", "--json", str(out), "--seed", "0", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": hash_seed,
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _without_timing(result: dict) -> dict:
    for method in result["methods"].values():
        method.pop("seconds_per_audio_second")
    return result


def test_benchmark_twice_gives_identical_numbers(tmp_path):
    runs = [_benchmark(tmp_path / f"run{i}.json", seed) for i, seed in enumerate(["1", "2"])]  # side by side
    for proc in runs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
    a, b = (_without_timing(json.loads((tmp_path / f"run{i}.json").read_text())) for i in range(2))
    assert set(a["methods"]) == {"mixture", "nmf"}
    assert all(np.isfinite(v) for m in a["methods"].values() for v in m["si_sdri"].values())
    assert a == b  # exact: same crops, seeded NMF initialisation
