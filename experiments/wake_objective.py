"""Probe: does the wake phase's objective prefer the true sources to what the wake phase
converged to? For fixed test crops, the prior term of the shipped ELBO recipe (each estimate
rescaled to ``score_rms`` and scored by its own frozen prior at σ_p; nats per sample, mean over
crops and time) and the SI-SDRi of: the true sources, each given separator's estimates, and the
mixture / K in every slot.

    python experiments/wake_objective.py PRIORS_DIR SCORE_RMS(comma list) SEPARATOR.pt ... \
        [--data STEM_FOLDER] [--n 16] [--length 4096] [--sigma 0.01] [--json OUT]
"""
import argparse
import json

import torch

from priors.checkpoint import load_priors
from separation.checkpoints import load_separator
from separation.elbo import gain_normalised
from separation.metrics import si_sdr
from separation.reference_data import reference_crops


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("priors")
    ap.add_argument("score_rms", type=lambda s: [float(v) for v in s.split(",")])
    ap.add_argument("separators", nargs="*")
    ap.add_argument("--data", default=None)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--length", type=int, default=4096)
    ap.add_argument("--sigma", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_grad_enabled(False)
    priors, metas = load_priors(a.priors)
    sources = [m["source"] for m in metas]
    sr = int(metas[0]["sample_rate"])
    crops, ms = reference_crops(sources, a.n, a.length, data_root=a.data, sample_rate=sr if a.data else None, seed=a.seed)
    mix = ms * crops.sum(1)
    sig = torch.full((a.n,), a.sigma)
    base = si_sdr(mix.unsqueeze(1).expand_as(crops), crops)


    def row(est):
        scored = gain_normalised(est, a.score_rms)
        prior = torch.stack([p.log_prob(scored[:, k], sig).mean() for k, p in enumerate(priors)])
        gain = (si_sdr(est, crops) - base).mean(0)
        return {"prior": prior.tolist(), "prior_sum": prior.sum().item(), "si_sdri": gain.tolist(), "si_sdri_mean": gain.mean().item()}


    states = {"truth": crops, "mixture/K": (mix / (len(sources) * ms)).unsqueeze(1).repeat(1, len(sources), 1)}
    for path in a.separators:
        states[path] = load_separator(path, sources=sources, priors_dir=a.priors, sample_rate=sr)(mix)
    rms = crops.pow(2).mean(-1).sqrt()
    out = {"sources": sources, "n": a.n, "length": a.length, "sigma": a.sigma, "score_rms": a.score_rms,
           "crop_rms_median": rms.median(0).values.tolist(), "crop_rms_min": rms.min(0).values.tolist(), "states": {}}
    print(f"crops: rms median {' '.join(f'{v:.3f}' for v in out['crop_rms_median'])}, min {' '.join(f'{v:.4f}' for v in out['crop_rms_min'])}")
    print(f"{'state':48s} prior term (nats/sample) per source, sum | SI-SDRi per source, mean")
    for name, est in states.items():
        r = out["states"][name] = row(est)
        print(f"{name[-48:]:48s} {' '.join(f'{v:6.2f}' for v in r['prior'])} {r['prior_sum']:7.2f} | "
              f"{' '.join(f'{v:6.1f}' for v in r['si_sdri'])} {r['si_sdri_mean']:6.1f}", flush=True)
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)
