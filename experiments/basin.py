"""Probe: how wide is the ELBO's basin around the truth? Per-example q (μ, log σ) optimised
with the frozen priors, started at (1−a)·truth + a·(mixture-as-every-source)."""
import sys, torch
from priors.checkpoint import load_priors
from priors.data import ToyGenerator
from separation.elbo import elbo
from separation.encoder import project_to_mixture
from separation.metrics import si_sdr


if __name__ == "__main__":
    torch.manual_seed(0)
    priors, _ = load_priors("checkpoints/toy", sources=["sin", "square", "saw", "triangle"])
    gen = ToyGenerator()
    refs = torch.stack([torch.from_numpy(gen.crop("test", i, 0, 2048)) for i in range(4)]).float()
    mix = 0.25 * refs.sum(1)
    base = si_sdr(mix.unsqueeze(1).expand_as(refs), refs)
    flat = mix.unsqueeze(1).expand_as(refs)
    sig = float(sys.argv[1]) if len(sys.argv) > 1 else 0.01
    for a in [0.25, 0.5, 0.75]:
        mu = ((1 - a) * refs + a * flat).clone().requires_grad_(True)
        log_std = torch.full_like(mu, -4.0).requires_grad_(True)
        opt = torch.optim.Adam([mu, log_std], lr=3e-3)
        start = (si_sdr(project_to_mixture(mu.detach(), mix, 0.25), refs) - base).mean().item()
        for step in range(300):
            t = elbo(mu, log_std, mix, priors, prior_sigma=sig, mix_scale=0.25, project=True)
            opt.zero_grad(); t["loss"].backward(); opt.step()
        end = si_sdr(project_to_mixture(mu.detach(), mix, 0.25), refs) - base
        print(f"sigma {sig} a={a}: start {start:.1f} dB -> end {end.mean():.1f} dB per source {[round(x,1) for x in end.mean(0).tolist()]}", flush=True)
