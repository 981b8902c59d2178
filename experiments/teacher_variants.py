"""Which teacher should label the real training mixtures? NMF variants, separators and their
ensembles scored on a VALIDATION set of TRAINING chorales (never the test set).

Validation: every 16th training chorale (sorted names, 17 tracks), its first 20 s; fast framewise
SDR (1 s frames, median over frames, then over tracks), as ``evaluate --fast``. NMF templates are
learned from isolated training stems (crops as ``evaluate``'s ``fit_nmf``: one 4 s crop per
track from ``crops`` random tracks), so the NMF rows are in-sample for the templates; the
separators never saw any stem. ``ens(a+b)`` averages two rows' estimates (both sum to the mixture,
so the average does too).

    python experiments/teacher_variants.py [--models chorales runs/exp/x.pt] [--nmf 1024:32:64:1 ...]

An NMF spec is ``n_fft:rank:crops:power`` (hop = n_fft / 4). Prints one row per teacher.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def load_validation(root: Path, sources: list[str], every: int = 16, seconds: float = 20.0):
    import numpy as np
    import soundfile as sf

    tracks = sorted(p for p in (root / "train").iterdir() if p.is_dir())[::every]
    out = []
    for t in tracks:
        mix, rate = sf.read(t / "mixture.wav", dtype="float64", frames=int(seconds * 22_050))
        refs = np.stack([sf.read(t / f"{s}.wav", dtype="float64", frames=len(mix))[0] for s in sources])
        out.append((t.name, mix, refs, rate))
    return out


def isolated_crops(root: Path, sources: list[str], crops: int, seconds: float = 4.0, seed: int = 0):
    import numpy as np
    import soundfile as sf
    import torch

    rng = np.random.default_rng(seed)
    tracks = sorted(p for p in (root / "train").iterdir() if p.is_dir())
    order = rng.permutation(len(tracks))[:crops]
    iso = {s: [] for s in sources}
    for i in order:
        for s in sources:
            audio, rate = sf.read(tracks[int(i)] / f"{s}.wav", dtype="float64")
            n = int(seconds * rate)
            start = int(rng.integers(0, max(1, len(audio) - n + 1)))
            crop = audio[start:start + n]
            if np.sqrt(np.mean(crop**2)) > 1e-3:
                iso[s].append(torch.from_numpy(crop))
    return [torch.cat(iso[s])[None] for s in sources]


def score(estimates, validation) -> list[float]:
    """estimates: list of (K, time) arrays -> per-source median SDR over tracks."""
    import numpy as np

    from separation.scoring import framewise_sdr

    per_track = []
    for est, (_, _, refs, rate) in zip(estimates, validation):
        sdr = framewise_sdr(refs[..., None], np.asarray(est, dtype=np.float64)[..., None], rate)
        per_track.append(np.nanmedian(sdr, axis=1))
    return list(np.nanmedian(np.stack(per_track), axis=0))


def main() -> None:
    import numpy as np
    import torch

    from separation import separate
    from separation.baselines import NMFSeparator

    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="data/chorales")
    ap.add_argument("--models", nargs="*", default=["chorales"])
    ap.add_argument("--nmf", nargs="*", default=["1024:32:64:1", "1024:32:64:2"])
    ap.add_argument("--templates", default="runs/exp",
                    help="folder of fitted templates (nmf_<n_fft>_<rank>_<crops>.pt, reused when present)")
    ap.add_argument("--ensembles", nargs="*", default=[], help="pairs a+b of row names")
    a = ap.parse_args()
    sources = ["violin", "clarinet", "saxophone", "bassoon"]
    root = Path(a.root)
    val = load_validation(root, sources)
    rows: dict[str, list] = {"mixture": [np.repeat(m[None], 4, 0) / 4 for _, m, _, _ in val]}
    timings = {}
    fitted: dict[tuple, torch.Tensor] = {}
    for spec in a.nmf:
        n_fft, rank, crops, power = spec.split(":")
        n_fft, rank, crops, power = int(n_fft), int(rank), int(crops), float(power)
        t0 = time.time()
        sep = NMFSeparator(sources, 22_050, rank=rank, n_fft=n_fft, hop=n_fft // 4, power=power)
        key = (n_fft, rank, crops)
        store = Path(a.templates) / f"nmf_{n_fft}_{rank}_{crops}.pt"
        if key not in fitted and store.is_file():
            fitted[key] = torch.load(store)["templates"]
        if key not in fitted:
            fitted[key] = sep.fit(isolated_crops(root, sources, crops)).templates
            sep.save(store)
        sep.templates = fitted[key]
        rows[f"nmf {spec}"] = [sep(torch.from_numpy(m)[None])[0].numpy() for _, m, _, _ in val]
        timings[f"nmf {spec}"] = time.time() - t0
    for name in a.models:
        t0 = time.time()
        outs = [separate(m.astype(np.float32), rate, model=name) for _, m, _, rate in val]
        rows[Path(name).stem] = [np.stack([o[s] for s in sources]).astype(np.float64) for o in outs]
        timings[Path(name).stem] = time.time() - t0
    for pair in a.ensembles:
        x, y = pair.split("+")
        rows[f"ens({pair})"] = [(p + q) / 2 for p, q in zip(rows[x], rows[y])]
    print(f"{len(val)} validation chorales (train split, first 20 s); median SDR dB")
    print(f"{'teacher':28s} " + " ".join(f"{s[:8]:>8s}" for s in sources) + "     mean   seconds")
    for name, est in rows.items():
        s = score(est, val)
        print(f"{name:28s} " + " ".join(f"{v:8.2f}" for v in s) + f" {np.mean(s):8.2f} {timings.get(name, 0):8.1f}")


if __name__ == "__main__":
    main()
