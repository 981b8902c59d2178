"""The benchmark behind the README's tables: every method on the same fixed test crops.

SI-SDRi (dB) per source and mean over ``n`` crops of ``length`` samples from the fixed toy
test set (or a stem folder), plus seconds of compute per second of audio.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .interface import needs_references
from .methods import (CHECKPOINT_FILES, MethodContext, benchmark_methods, build_separator, check_methods,
                      default_methods)

#: method -> separator checkpoint file name in the checkpoint directory (see separation.methods)
CHECKPOINT_METHODS = CHECKPOINT_FILES
ALL_METHODS = benchmark_methods()
DEFAULT_METHODS = default_methods()


def run_benchmark(methods: list[str], crops: torch.Tensor, mix_scale: float, sources: list[str], sample_rate: int,
                  checkpoints: str | Path, device: str = "cpu", batch_size: int = 16, seed: int = 0,
                  langevin_kwargs: dict | None = None, nmf_train=None, progress: bool = True,
                  precision: str = "fp32") -> dict:
    """crops (n, K, length) references. Every method comes from :mod:`separation.methods`
    (priors and named separators in ``checkpoints``; ``precision`` applies to the trained
    separators); only an oracle (``irm``) reads the references. Returns the JSON-ready result
    (see ``priorsep benchmark``)."""
    from .metrics import si_sdr

    n, _, length = crops.shape
    mix = mix_scale * crops.sum(1)
    base = si_sdr(mix.unsqueeze(1).expand_as(crops), crops)  # (n, K)
    out = {"methods": {}, "n": n, "length": length, "sample_rate": sample_rate, "device": device, "seed": seed,
           "sources": sources, "precision": precision}
    ctx = MethodContext(sources=list(sources), sample_rate=sample_rate, mix_scale=mix_scale, device=device, seed=seed,
                        precision=precision, checkpoints=Path(checkpoints), langevin=dict(langevin_kwargs or {}),
                        nmf_train=nmf_train)
    check_methods(methods, ctx)
    for name in methods:
        torch.manual_seed(seed)
        sep = build_separator(name, ctx)
        oracle = needs_references(sep)
        ests = []
        t0 = time.perf_counter()
        for start in tqdm(range(0, n, batch_size), desc=name, disable=not progress, leave=False):
            m = mix[start:start + batch_size].to(device)
            est = sep(m, crops[start:start + batch_size].to(device)) if oracle else sep(m)
            ests.append(est.cpu())
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        est = torch.cat(ests)
        improvement = si_sdr(est, crops) - base
        per = {s: improvement[:, k].mean().item() for k, s in enumerate(sources)}
        out["methods"][name] = {"si_sdri": {"mean": improvement.mean().item(), **per},
                                "seconds_per_audio_second": seconds / (n * length / sample_rate)}
    return out


def format_table(result: dict) -> str:
    sources = result["sources"]
    head = f"| method | {' | '.join(sources)} | mean | s / audio s |"
    lines = [head, "|" + "---|" * (len(sources) + 3)]
    for name, r in result["methods"].items():
        vals = " | ".join(f"{r['si_sdri'][s]:.1f}" for s in sources)
        lines.append(f"| {name} | {vals} | **{r['si_sdri']['mean']:.1f}** | {r['seconds_per_audio_second']:.4f} |")
    return "\n".join(lines)
