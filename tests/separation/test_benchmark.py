"""``run_benchmark`` with trained separators: the JSON schema, and the precision it records."""
import torch

from separation.benchmark import CHECKPOINT_METHODS, run_benchmark
from separation.checkpoints import save_separator
from separation.encoder import WaveNetEncoder


def test_benchmark_scores_a_fast_separator_in_bfloat16_and_says_so(tmp_path):
    sources = ["sin", "square", "saw", "triangle"]
    torch.manual_seed(0)
    enc = WaveNetEncoder(n_sources=4, n_layers=2, channels=8, gate_channels=4)
    meta = {"format": "priorsep-separator/1", "objective": "distil", "sources": sources, "sample_rate": 14700,
            "mix_scale": 0.25, "project": True, "class_path": enc.class_path, "init_args": dict(enc.init_args),
            "priors": [], "version": "test"}
    save_separator(tmp_path / CHECKPOINT_METHODS["variational-fast"], enc, meta)
    crops = torch.randn(3, 4, 256) * 0.5
    result = run_benchmark(["mixture", "variational-fast"], crops, 0.25, sources, 14700, tmp_path,
                           progress=False, precision="bf16")
    assert result["precision"] == "bf16" and result["n"] == 3 and result["length"] == 256
    row = result["methods"]["variational-fast"]
    assert set(row["si_sdri"]) == {"mean", *sources} and row["seconds_per_audio_second"] > 0
    # an untrained encoder returns the mixture for every source: the mixture row's SI-SDRi, 0 dB
    for name in ("mixture", "variational-fast"):
        assert abs(result["methods"][name]["si_sdri"]["mean"]) < 0.05, name
