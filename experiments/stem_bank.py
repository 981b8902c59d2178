"""A sleep-phase "bank" cut from REAL isolated training stems: the sleep ceiling's data.

Perfect dreams would be the isolated training stems themselves, so a separator trained on random
mixtures of crops from *different* chorales (incoherent mixtures, ``objective: sleep`` with this
bank) bounds what any sleep phase with that separator can reach. It is a reference row, not an
unsupervised result (it reads isolated stems, though never a real mixture with its stems).

    python experiments/stem_bank.py data/chorales runs/bank/chorales_stems --n 512 --length 88200

Writes ``OUT/<source>.npy`` (n, length) float32 and ``OUT/settings.json`` in the format of
``priorsep sample --priors … --out BANK`` (see :class:`separation.data.BankMixtures`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    from priors.data import StemFolderDataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--sources", nargs="+", default=["violin", "clarinet", "saxophone", "bassoon"])
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--length", type=int, default=88_200)
    p.add_argument("--sample-rate", type=int, default=22_050)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for k, source in enumerate(args.sources):
        ds = StemFolderDataset(args.root, "train", args.sources, "source", source, args.length, args.n,
                               args.sample_rate, random_crops=False, seed=args.seed + k)
        np.save(out / f"{source}.npy", np.stack([ds[j].numpy() for j in range(args.n)]).astype(np.float32))
    settings = {"sources": args.sources, "sample_rate": args.sample_rate, "n": args.n, "length": args.length,
                "generator": "real isolated training stems (experiments/stem_bank.py)", "root": args.root}
    (out / "settings.json").write_text(json.dumps(settings, indent=1) + "\n")
    print(f"wrote {args.n} x {args.length} crops per source to {out}")


if __name__ == "__main__":
    main()
