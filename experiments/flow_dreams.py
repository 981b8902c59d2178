"""Dream statistics of single priors against TRAINING crops, per sampling temperature.

For each source: N dreams of 4 s per temperature (seed 0; N = 8 unless given), their median rms
and spectral centroid as ratios to N fixed training crops (``reference_crops(…, "train", seed=1)``);
8 dreams move the rms ratio by up to ±0.05 with the random stream alone, so judge a 0.1 change
with N ≥ 32. Any prior with ``generate`` (frame priors, frame flows, waveform priors) works; the
priors are read from ``DIR/<source>.pt``, so a folder of snapshots can be compared before a
manifest exists.

    python experiments/flow_dreams.py checkpoints/chorales_frame_flow violin,bassoon 0.7,1.0 [DATA [N]]
"""
from __future__ import annotations

import sys


def main() -> None:
    import torch

    from priors.checkpoint import load_prior
    from priors.diagnose import signal_statistics
    from separation.reference_data import reference_crops

    folder, sources = sys.argv[1], sys.argv[2].split(",")
    temperatures = [float(t) for t in sys.argv[3].split(",")]
    data = sys.argv[4] if len(sys.argv) > 4 else "data/chorales"
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    torch.manual_seed(1)
    crops, _ = reference_crops(sources, n, 88_200, data, "train", 22_050, 1)
    for k, source in enumerate(sources):
        prior, _ = load_prior(f"{folder}/{source}.pt")
        real = signal_statistics(crops[:, k], 22_050)
        cells = []
        for t in temperatures:
            torch.manual_seed(0)
            dream = signal_statistics(prior.generate(n, 88_200, sigma=0.0, temperature=t), 22_050)
            cells.append(f"T {t:g}: {dream['rms'] / real['rms']:.2f} / "
                         f"{dream['spectral_centroid_hz'] / real['spectral_centroid_hz']:.2f}")
        print(f"{source}: real rms {real['rms']:.3f}, centroid {real['spectral_centroid_hz']:.0f} Hz; "
              f"dreams rms / centroid ratio " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
