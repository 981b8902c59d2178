"""Does the frame priors' ELBO prior term rank the true stems above collapsed estimates?

On 8 fixed 4 s crops of the TRAINING chorales (never the test set): Σ_k mean log p_k(s_k) of the
true stems, of mixture/4 in every slot, and of "everything in source k, the others 1e-3 × the
mixture" (what masks that sum to one can reach), raw and gain-normalised (each estimate rescaled
to its instrument's rms, ``separation.elbo.gain_normalised``), at σ = 0.

    python experiments/frame_objective.py checkpoints/chorales_frame 0.160,0.119,0.079,0.118 [DATA] [SEPARATOR …]

Each SEPARATOR (a checkpoint or a named model) adds a row: its estimates of the same crops, so
one can see whether the priors rank the truth above what a trained separator produces.
"""
from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    import torch

    from priors.checkpoint import load_priors
    from priors.data import StemFolderDataset
    from separation.elbo import gain_normalised

    priors_dir, rms = sys.argv[1], [float(v) for v in sys.argv[2].split(",")]
    data = sys.argv[3] if len(sys.argv) > 3 else "data/chorales"
    separators = sys.argv[4:]
    priors, metas = load_priors(priors_dir)
    sources = [m["source"] for m in metas]
    ds = StemFolderDataset(data, "train", sources, "both", crop_length=88_200, epoch_size=8, sample_rate=22_050,
                           random_crops=False, seed=5)
    mix = torch.stack([ds[j][0] for j in range(8)])
    stems = torch.stack([ds[j][1] for j in range(8)])
    zero = torch.zeros(len(mix))
    states = {"truth": stems, "mixture/4": mix[:, None].expand(-1, len(sources), -1) / len(sources)}
    for k, s in enumerate(sources):
        c = 1e-3 * mix[:, None].repeat(1, len(sources), 1)
        c[:, k] = mix * (1 - 1e-3 * (len(sources) - 1))
        states[f"all in {s}"] = c
    from separation.models import load_separator

    for name in separators:
        with torch.no_grad():
            states[f"est. {Path(name).stem}"[:18]] = load_separator(name)(mix)
    for normalised in (False, True):
        print("gain-normalised" if normalised else "raw", "(nats per mel bin per frame, per prior; sum)")
        for name, s in states.items():
            x = gain_normalised(s, rms) if normalised else s
            with torch.no_grad():
                scores = [p.log_prob(x[:, k], zero).mean().item() for k, p in enumerate(priors)]
            print(f"  {name:18s} " + " ".join(f"{v:7.2f}" for v in scores) + f"   sum {sum(scores):7.2f}")


if __name__ == "__main__":
    main()
