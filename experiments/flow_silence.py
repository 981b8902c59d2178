"""How snapping the dequantisation noise at silence changes a frame-flow folder's dreams.

For each chorale source: 32 dreams of 4 s at temperature 0.7 (frames drawn with seed 0,
Griffin-Lim phases with seed 1), rendered with ``FrameFlowPrior.snap_silence`` at widths
0 (off) / 1 / 2 / 3 deviations of ``feature_noise``; their median rms and spectral centroid as
ratios to 32 fixed training crops (``reference_crops(…, "train", seed=1)``).

    python experiments/flow_silence.py checkpoints/chorales_frame_flow
"""
from __future__ import annotations

import sys


def main() -> None:
    import torch

    from priors.checkpoint import load_prior
    from priors.diagnose import signal_statistics
    from separation.reference_data import reference_crops

    folder = sys.argv[1]
    sources = ["violin", "clarinet", "saxophone", "bassoon"]
    crops, _ = reference_crops(sources, 32, 88_200, "data/chorales", "train", 22_050, 1)
    for k, source in enumerate(sources):
        real = signal_statistics(crops[:, k], 22_050)
        prior, _ = load_prior(f"{folder}/{source}.pt")
        prior.eval()
        with torch.no_grad():
            torch.manual_seed(0)
            drawn = prior.sample_features(32, 88_200 // prior.features.hop + 1, sigma=0.0, temperature=0.7)
            cells = []
            for width in (0, 1, 2, 3):
                frames = prior.snap_silence(drawn, width) if width else drawn
                torch.manual_seed(1)
                dream = signal_statistics(prior.features.to_waveform(frames, 88_200), 22_050)
                cells.append(f"width {width}: {dream['rms'] / real['rms']:.2f} / "
                             f"{dream['spectral_centroid_hz'] / real['spectral_centroid_hz']:.2f}")
        print(f"{source}: rms / centroid ratio " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
