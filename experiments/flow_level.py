"""Where a frame-flow prior's dream level goes: vocoder, dynamics, or latent structure.

For one source: 16 dreams (seed 0) against 16 fixed training crops (``reference_crops(…, "train",
seed=1)``), all 4 s.

1. vocoder: the dreams' waveform rms ratio (after Griffin-Lim) beside their mel-energy ratio
   (before it);
2. dynamics: quantiles of frame energy (dB of the summed squared mel magnitudes), the spread of
   crop levels, and the share of bins above -7 / -6 / -5.5 / -5 log units;
3. latents: the moments of the latents of real crops (with the training dequantisation noise), and
   the level that the inverse flow rebuilds from them as they are, shuffled in time per channel,
   shuffled across channels per frame, replaced by N(0, I), and N(0, I) plus each crop's
   per-channel latent means.

    python experiments/flow_level.py checkpoints/chorales_frame_flow violin [TEMPERATURE]
"""
from __future__ import annotations

import sys


def main() -> None:
    import torch

    from priors.checkpoint import load_prior
    from separation.reference_data import reference_crops

    folder, source = sys.argv[1], sys.argv[2]
    temperature = float(sys.argv[3]) if len(sys.argv) > 3 else 0.7
    sources = ["violin", "clarinet", "saxophone", "bassoon"]
    crops, _ = reference_crops(sources, 16, 88_200, "data/chorales", "train", 22_050, 1)
    real_wave = crops[:, sources.index(source)]
    prior, _ = load_prior(f"{folder}/{source}.pt")
    prior.eval()
    logmel = prior.features
    n = real_wave.shape[0]

    magnitude = logmel.mel_magnitude

    def frame_db(f):
        return 10 * torch.log10(magnitude(f).pow(2).sum(1) + 1e-12)

    def crop_db(f):  # mean frame energy of each crop, dB
        return 10 * torch.log10(magnitude(f).pow(2).sum(1).mean(1))

    def level_db(f):  # median over crops
        return crop_db(f).median().item()

    def rms(x):  # median over rows
        return x.pow(2).mean(-1).sqrt().median().item()

    def cond(b):
        return prior._cond(b, "cpu", torch.zeros(b))

    with torch.no_grad():
        real = logmel(real_wave)
        torch.manual_seed(0)
        dream = prior.sample_features(n, real.shape[-1], sigma=0.0, temperature=temperature)
        torch.manual_seed(0)
        dream_wave = prior.generate(n, real_wave.shape[-1], sigma=0.0, temperature=temperature)

    print(f"{source}, T {temperature}, {n} dreams against {n} training crops")
    print(f"1. waveform rms ratio {rms(dream_wave) / rms(real_wave):.2f}, "
          f"mel-energy ratio {(magnitude(dream).pow(2).mean() / magnitude(real).pow(2).mean()).sqrt().item():.2f}")
    q = torch.tensor([0.1, 0.5, 0.9, 0.99])
    for name, f in (("real", real), ("dream", dream)):
        print(f"2. {name:5s} frame dB at 10/50/90/99 %: {[round(v, 1) for v in frame_db(f).flatten().quantile(q).tolist()]}, "
              f"crop level sd {crop_db(f).std().item():.1f} dB, bins above -7 / -6 / -5.5 / -5: "
              + " / ".join(f"{(f > t).float().mean().item() * 100:.2f} %" for t in (-7, -6, -5.5, -5)))

    with torch.no_grad():
        frames = real.shape[-1] - real.shape[-1] % prior.length_multiple
        f = real[..., :frames]
        torch.manual_seed(0)
        z, _ = prior.flow(f + prior.feature_noise * torch.randn_like(f), cond(n))
        b, c, t = z.shape
        zs = (z - z.mean()) / z.std()
        centred = z - z.mean(2, keepdim=True)
        cov = torch.einsum("bct,bdt->cd", centred, centred) / (b * t)
        corr = cov / cov.diagonal().sqrt()[:, None] / cov.diagonal().sqrt()[None]
        lag1 = ((z[..., 1:] * z[..., :-1]).mean(2) / z.pow(2).mean(2)).mean(0)
        print(f"3. latents of real crops: channel means within ±{z.mean((0, 2)).abs().max().item():.2f}, "
              f"channel sd {z.std((0, 2)).min().item():.2f}-{z.std((0, 2)).max().item():.2f}, "
              f"kurtosis {zs.pow(4).mean().item():.2f}, lag-1 autocorrelation {lag1.median().item():.2f} (median), "
              f"mean cross-channel |corr| {(corr - torch.diag(corr.diagonal())).abs().sum().item() / (c * c - c):.3f}")
        g = torch.Generator().manual_seed(0)
        noise = torch.randn(z.shape, generator=g)
        variants = {
            "as they are": z,
            "shuffled in time per channel": torch.gather(z, 2, torch.argsort(torch.rand(z.shape, generator=g), 2)),
            "shuffled across channels per frame": torch.gather(z, 1, torch.argsort(torch.rand(z.shape, generator=g), 1)),
            "N(0, I)": noise,
            "N(0, I) + each crop's channel means": noise + z.mean(2, keepdim=True),
        }
        print(f"   level of real crops {level_db(f):.1f} dB; inverse flow of their latents:")
        for name, v in variants.items():
            print(f"   {name}: {level_db(prior.flow.reverse(v, cond(n))):.1f} dB")


if __name__ == "__main__":
    main()
