"""Probe: start at the shipped remix separator's estimates and ascend Σ_k log p_k(s_k [+ σε] | σ)
directly on the signals (Adam, exact mixture projection; 8 toy test crops × 2 048): do the frozen
priors refine a good estimate, per example? Prints SI-SDRi every 10 steps (kept in experiments/logs/refine.log).

    python experiments/refine.py SIGMA LR STEPS NOISE(0|1) [contrast]   # e.g. 0.01 1e-3 60 0, ≈ 45 s
"""
import sys, torch, math, time
from priors.checkpoint import load_priors
from separation.reference_data import reference_crops
from separation.checkpoints import load_separator
from separation.encoder import project_to_mixture
from separation.metrics import si_sdr


if __name__ == "__main__":
    ck = "checkpoints/toy_gpu"; S = ["sin", "square", "saw", "triangle"]
    sigma, lr, steps, noise = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    contrast = len(sys.argv) > 5 and sys.argv[5] == "contrast"
    torch.manual_seed(0)
    priors, _ = load_priors(ck, sources=S)
    for p in priors: p.eval().requires_grad_(False)
    crops, ms = reference_crops(S, 8, 2048, seed=5)
    mix = ms * crops.sum(1)
    with torch.no_grad():
        s0 = load_separator(f"{ck}/separator_remix.pt", sources=S, priors_dir=ck)(mix)
    base = si_sdr(mix.unsqueeze(1).expand_as(crops), crops)
    def report(s, i):
        d = (si_sdr(s, crops) - base).mean(0)
        print(f"step {i:4d} si_sdri {d.mean():6.2f} [{' '.join(f'{v:5.1f}' for v in d)}]", flush=True)
    s = s0.clone().requires_grad_(True)
    opt = torch.optim.Adam([s], lr=lr)
    sig = torch.full((8,), sigma)
    t0 = time.time()
    for i in range(steps + 1):
        x = project_to_mixture(s, mix, ms)
        if i % 10 == 0: report(x.detach(), i)
        if i == steps: break
        xn = x + sigma * torch.randn_like(x) if noise else x
        if contrast:
            L = torch.stack([torch.stack([priors[j].log_prob(xn[:, k], sig) for k in range(4)]) for j in range(4)])
            own = torch.stack([L[k, k] for k in range(4)])
            obj = (own - torch.logsumexp(L, 0)).mean()
        else:
            obj = sum(priors[k].log_prob(xn[:, k], sig).mean() for k in range(4))
        opt.zero_grad(); (-obj).backward(); opt.step()
    print(f"{time.time()-t0:.0f}s", flush=True)
