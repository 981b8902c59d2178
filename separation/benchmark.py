"""The benchmark behind the README's tables: every method on the same fixed test crops.

SI-SDRi (dB) per source and mean over ``n`` crops of ``length`` samples from the fixed toy
test set (or a stem folder), plus seconds of compute per second of audio.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from .errors import PriorsepError

#: method -> separator checkpoint file name in the checkpoint directory
CHECKPOINT_METHODS = {"variational": "separator_elbo.pt", "variational-fast": "separator_elbo_fast.pt",
                      "sleep": "separator_sleep.pt",
                      "wake-sleep": "separator_wake_sleep.pt", "remix": "separator_remix.pt",
                      "supervised": "separator_supervised.pt"}
ALL_METHODS = ["mixture", "nmf", "langevin", "variational", "variational-fast", "sleep", "wake-sleep", "remix",
               "supervised", "irm"]
DEFAULT_METHODS = ["mixture", "nmf", "langevin", "variational", "sleep", "wake-sleep", "remix", "supervised"]


def build_method(name: str, checkpoints: Path, sources: list[str], sample_rate: int, mix_scale: float,
                 device: str, seed: int, langevin_kwargs: dict | None = None, nmf_train=None,
                 precision: str = "fp32") -> Callable:
    """A callable (mix (B, T), refs (B, K, T)) -> estimates (B, K, T) for method ``name``.
    Only ``irm`` (an oracle) looks at the references. ``precision`` applies to the trained
    separators (``CHECKPOINT_METHODS``)."""
    if name == "mixture":
        return lambda mix, refs: mix.unsqueeze(1).repeat(1, len(sources), 1) / (len(sources) * mix_scale)
    if name == "irm":
        from .baselines import oracle_ratio_mask

        return lambda mix, refs: oracle_ratio_mask(mix, refs, mix_scale)
    if name == "nmf":
        from .baselines import NMFSeparator

        sep = NMFSeparator(sources, sample_rate, mix_scale, seed=seed).fit(nmf_train())
        return lambda mix, refs: sep(mix.cpu()).to(mix.device)
    if name == "langevin":
        from priors.checkpoint import load_priors

        from .langevin import LangevinSeparator

        priors, metas = load_priors(checkpoints, device, sources=sources)
        if int(metas[0]["sample_rate"]) != int(sample_rate):
            raise PriorsepError(f"{checkpoints}: priors work at {metas[0]['sample_rate']} Hz, the data is at {sample_rate} Hz")
        sep = LangevinSeparator(priors, sources, sample_rate, mix_scale, seed=seed, **(langevin_kwargs or {}))
        return lambda mix, refs: sep(mix)
    if name in CHECKPOINT_METHODS:
        from .checkpoints import load_separator

        path = checkpoints / CHECKPOINT_METHODS[name]
        if not path.is_file():
            raise PriorsepError(f"{path}: no checkpoint for method {name!r} (train it, or leave it out of --methods)")
        sep = load_separator(path, device, sources=sources, priors_dir=checkpoints, sample_rate=sample_rate,
                             precision=precision)
        return lambda mix, refs: sep(mix)
    raise PriorsepError(f"unknown method {name!r}; choose from {', '.join(ALL_METHODS)}")


def run_benchmark(methods: list[str], crops: torch.Tensor, mix_scale: float, sources: list[str], sample_rate: int,
                  checkpoints: str | Path, device: str = "cpu", batch_size: int = 16, seed: int = 0,
                  langevin_kwargs: dict | None = None, nmf_train=None, progress: bool = True,
                  precision: str = "fp32") -> dict:
    """crops (n, K, length) references. Returns the JSON-ready result (see ``priorsep benchmark``)."""
    from .metrics import si_sdr

    checkpoints = Path(checkpoints)
    n, _, length = crops.shape
    mix = mix_scale * crops.sum(1)
    base = si_sdr(mix.unsqueeze(1).expand_as(crops), crops)  # (n, K)
    out = {"methods": {}, "n": n, "length": length, "sample_rate": sample_rate, "device": device, "seed": seed,
           "sources": sources, "precision": precision}
    for name in methods:
        torch.manual_seed(seed)
        fn = build_method(name, checkpoints, sources, sample_rate, mix_scale, device, seed, langevin_kwargs, nmf_train,
                          precision)
        ests = []
        t0 = time.perf_counter()
        for start in tqdm(range(0, n, batch_size), desc=name, disable=not progress, leave=False):
            m = mix[start:start + batch_size].to(device)
            ests.append(fn(m, crops[start:start + batch_size].to(device)).cpu())
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
