"""Probe: does the prior term of the ELBO rank the true sources above collapsed, swapped and
mixture-like states, and where do a separator's estimates sit? Mean log-likelihood per sample
(σ_p = 0.01) of every state under its own prior, 16 toy test crops × 4 096; also a contrastive
(likelihood-ratio against the mean of all priors) form. Writes experiments/logs/objective_rank_<dir>.json.

    python experiments/objective_rank.py [checkpoints/toy_gpu]     # ≈ 2 min on 2 CPU cores
"""
import json, sys, torch, math
from priors.checkpoint import load_priors
from separation.reference_data import reference_crops
from separation.checkpoints import load_separator
from separation.encoder import project_to_mixture


if __name__ == "__main__":
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    ck = sys.argv[1] if len(sys.argv) > 1 else "checkpoints/toy_gpu"
    S = ["sin", "square", "saw", "triangle"]
    priors, _ = load_priors(ck, sources=S)
    for p in priors: p.eval()
    crops, ms = reference_crops(S, 16, 4096, seed=3)
    mix = ms * crops.sum(1)
    sep = load_separator(f"{ck}/separator_remix.pt", sources=S, priors_dir=ck)
    remix = sep(mix)
    sig = torch.full((crops.shape[0],), 0.01)
    def scores(est):  # (B,K,T) -> L[j,k] (B,T): prior j on estimate k
        return torch.stack([torch.stack([priors[j].log_prob(est[:, k], sig) for k in range(4)]) for j in range(4)])
    def states():
        yield "truth", crops
        yield "remix", remix
        c = crops.clone(); c[:, 0] += c[:, 3]; c[:, 3] = 0; yield "tri->sin (collapse)", c
        c = crops.clone(); c[:, 3] += c[:, 0]; c[:, 0] = 0; yield "sin->tri", c
        c = crops.clone(); c[:, 1] += c[:, 2]; c[:, 2] = 0; yield "saw->square", c
        yield "mix/K each", (mix / (4 * ms)).unsqueeze(1).repeat(1, 4, 1)
        c = crops.clone(); c[:, 0] = 0.5 * crops[:, 0] + 0.5 * crops[:, 3]; c[:, 3] = c[:, 0]; yield "sin,tri averaged", c
        c = crops.clone(); c[:, 0] *= 0.5; c[:, 3] += 0.5 * crops[:, 0]; yield "half sin into tri", c
    rows = {}
    for name, est in states():
        L = scores(est)  # (J,K,B,T)
        own = torch.stack([L[k, k] for k in range(4)])  # (K,B,T)
        plain = own.mean(dim=(1, 2))
        lse = torch.logsumexp(L, 0) - math.log(4)  # (K,B,T): per-timestep background = mean of priors
        contrast_t = (own - lse).mean(dim=(1, 2))
        seq = L.mean(-1)  # (J,K,B)
        contrast_seq = (torch.stack([seq[k, k] for k in range(4)]) - (torch.logsumexp(seq * 4096, 0) / 4096 - math.log(4) / 4096)).mean(-1)
        rows[name] = {"plain": plain.tolist(), "plain_sum": plain.sum().item(), "contrast_t": contrast_t.tolist(),
                      "contrast_t_sum": contrast_t.sum().item(), "contrast_seq_sum": contrast_seq.sum().item()}
        print(f"{name:22s} plain {plain.sum():7.3f} [{' '.join(f'{v:6.2f}' for v in plain)}]  contrast_t {contrast_t.sum():7.3f} [{' '.join(f'{v:6.2f}' for v in contrast_t)}]  contrast_seq {contrast_seq.sum():7.3f}", flush=True)
    json.dump(rows, open(f"experiments/logs/objective_rank_{ck.rstrip('/').split('/')[-1]}.json", "w"), indent=1)
