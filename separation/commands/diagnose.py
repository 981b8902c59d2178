"""``priorsep diagnose --priors DIR``: how well each prior knows its own source.

Prints, for every σ, the cross-likelihood matrix: rows = priors, columns = sources' crops
(``--split``) plus silence, the mixture and white noise; entries = mean log-density in nats per
sample of the crop + σ·ε under the prior conditioned on σ. ``--samples N`` also draws N
samples per prior and compares them with real crops (rms, spectral centroid,
autocorrelation peak, and the samples' log-likelihood under every prior); ``--sample-sigma S``
draws them from the priors conditioned on σ = S and compares them with real crops + S·ε, both
scored at S. ``--split`` picks the crops (default test; valid is the toy set's held-out split).
``--continuation P`` primes each autoregressive prior with the first P samples of its own
source's crops and scores the continuation against the truth (SNR in dB): a prior that
has learnt the source's long-range structure (a period) continues it; one that only knows the
local shape does not. JSON: ``{"sources", "sigmas", "loglik"[σ][prior][source], "extra_columns",
"extra_loglik"[σ][prior][extra], "split", "samples": {...}, "sample_sigma", "sample_temperature",
"continuation": {source: {...}}}``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch


def add_arguments(parser) -> None:
    parser.add_argument("--priors", default="checkpoints/toy",
                        help="directory of priors (default checkpoints/toy: relative to the working directory, "
                             "else to the repository checkout)")
    parser.add_argument("--sigma", type=float, nargs="+", default=[0.0, 0.01, 0.05, 0.1, 0.3])
    parser.add_argument("--n", type=int, default=16, help="crops per source")
    parser.add_argument("--length", type=int, default=4096, help="samples per crop")
    parser.add_argument("--data", default=None, help="stem folder (default: the toy test set)")
    parser.add_argument("--split", default="test", choices=["train", "valid", "test"],
                        help="which crops to measure against (valid: the toy set's held-out split; stem folders "
                             "have train and test)")
    parser.add_argument("--samples", type=int, default=0, help="also draw N samples per prior and compare")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for --samples")
    parser.add_argument("--sample-sigma", type=float, default=0.0,
                        help="noise level the priors are conditioned on when drawing --samples; the real crops "
                             "they are compared with get the same σ·ε, and both are scored at that σ")
    parser.add_argument("--continuation", type=int, default=0, metavar="PREFIX",
                        help="also prime each autoregressive prior with PREFIX samples of its own source's "
                             "crops and score its continuation (SNR vs the true continuation)")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--plot", default=None, help="write a heatmap PNG here (and, with --samples, waveform and spectrogram PNGs of samples beside real crops)")
    parser.add_argument("--wandb", choices=["off", "offline", "online"], default="off",
                        help="also log the matrices (wandb.Table + heatmap) to a W&B run under --wandb-dir")
    parser.add_argument("--wandb-dir", default="runs", help="W&B runs land in DIR/wandb/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true")


def format_matrix(rows: list[str], cols: list[str], values, digits: int = 2) -> str:
    width = max(8, *(len(c) + 1 for c in cols))
    lines = [" " * 12 + "".join(f"{c:>{width}}" for c in cols)]
    for r, row in zip(rows, values):
        lines.append(f"{r:<12}" + "".join(f"{v:>{width}.{digits}f}" for v in row))
    return "\n".join(lines)


def continuation_table(priors, sources, columns, args) -> dict:
    """Each autoregressive prior continues its own source's test crops (see
    ``priors.diagnose.continuation_statistics``); priors without ``continue_from`` are left out."""
    from priors.diagnose import continuation_statistics

    from ..errors import PriorsepError

    if not 0 < args.continuation < args.length:
        raise PriorsepError(f"--continuation {args.continuation}: must be in (0, --length={args.length})")
    table = {}
    print(f"\ncontinuation of real crops after {args.continuation} samples (temperature {args.temperature:g}):")
    for prior, s in zip(priors, sources):
        if not hasattr(prior, "continue_from"):
            print(f"{s:>10}: not autoregressive, skipped")
            continue
        table[s] = continuation_statistics(prior, columns[s], args.continuation, args.temperature)
        print(f"{s:>10}: SNR first 64 samples {table[s]['snr_db_first_64']:.1f} dB, "
              f"whole {table[s]['length']} samples {table[s]['snr_db']:.1f} dB")
    return table


def run(args) -> int:
    from priors.checkpoint import load_priors
    from priors.diagnose import cross_likelihood, extra_columns, ratio_cross_likelihood, signal_statistics

    from ..models import repository_path
    from ..reference_data import reference_crops

    torch.manual_seed(args.seed)
    priors, metas = load_priors(repository_path(args.priors, "--priors"), args.device)
    sources = [m["source"] for m in metas]
    sr = metas[0]["sample_rate"]
    crops, mix_scale = reference_crops(sources, args.n, args.length, args.data, args.split, sr, args.seed)
    crops = crops.to(args.device)
    columns = {s: crops[:, k] for k, s in enumerate(sources)}
    extras = extra_columns(crops.cpu(), mix_scale, args.seed)
    columns.update({k: v.to(args.device) for k, v in extras.items()})
    ratio = "background_hash" in metas[0]

    def score_columns(data, sigmas, add_noise=True):
        """(matrices, raw): a ratio folder also gives each source prior's own scores (raw), with
        the background scored once per column; other folders give raw = None."""
        if ratio:
            return ratio_cross_likelihood(priors, data, sigmas, args.seed, add_noise=add_noise)
        return cross_likelihood(priors, data, sigmas, args.seed, add_noise=add_noise), None

    ll, raw = score_columns(columns, args.sigma)
    units = "nats per mel bin per frame" if hasattr(priors[0], "sample_features") else "nats/sample"
    k = len(sources)
    result = {"sources": sources, "sigmas": list(args.sigma), "n": args.n, "length": args.length, "split": args.split,
              "loglik": [[row[:k] for row in mat] for mat in ll], "extra_columns": list(extras),
              "extra_loglik": [[row[k:] for row in mat] for mat in ll],
              "priors": [{"source": m["source"], "hash": m["hash"]} for m in metas]}
    score = "log-likelihood ratio against the background prior" if ratio else "log-likelihood"
    for sigma, mat in zip(args.sigma, ll):
        print(f"\nσ = {sigma:g}: mean {score} ({units}), rows = prior, columns = data")
        print(format_matrix([f"{s} prior" for s in sources], list(columns), mat, 3 if ratio else 2))
    if ratio:  # the same crops under each source prior alone (the numerator of the ratio)
        result.update(score="likelihood_ratio", background_hash=metas[0]["background_hash"], raw_loglik=raw)
        for sigma, mat in zip(args.sigma, raw):
            print(f"\nσ = {sigma:g}: mean log-likelihood of each source prior alone ({units})")
            print(format_matrix([f"{s} prior" for s in sources], list(columns), mat))
    if args.samples:
        from .sample import draw

        stats, generated = {}, {}
        sigma = args.sample_sigma
        for prior, s in zip(priors, sources):
            generated[s] = draw(prior, args.samples, args.length, args.temperature, sigma, 256, args.device, False).to(args.device)
        real = {s: columns[s][: args.samples] for s in sources}
        if sigma > 0:
            noise = torch.Generator(device=args.device).manual_seed(args.seed + 1)
            real = {s: x + sigma * torch.randn(x.shape, generator=noise, device=x.device) for s, x in real.items()}
        gen_ll = score_columns(generated, [sigma], add_noise=False)[0][0]
        real_ll = score_columns(real, [sigma], add_noise=False)[0][0]
        for j, s in enumerate(sources):
            stats[s] = {"generated": {**signal_statistics(generated[s].cpu(), sr),
                                      "loglik_under": {p: gen_ll[i][j] for i, p in enumerate(sources)}},
                        "real": {**signal_statistics(real[s].cpu(), sr),
                                 "loglik_under": {p: real_ll[i][j] for i, p in enumerate(sources)}}}
            g, r = stats[s]["generated"], stats[s]["real"]
            print(f"{s:>10} samples: rms {g['rms']:.3f} (real {r['rms']:.3f}, ratio {g['rms'] / max(r['rms'], 1e-9):.2f}), "
                  f"centroid {g['spectral_centroid_hz']:.0f} Hz (real {r['spectral_centroid_hz']:.0f}), "
                  f"autocorr peak {g['autocorrelation_peak']:.2f} (real {r['autocorrelation_peak']:.2f})")
        print(f"\nsamples' log-likelihood at σ = {sigma:g}, rows = prior, columns = samples of")
        print(format_matrix([f"{s} prior" for s in sources], sources, gen_ll))
        result["samples"] = stats
        result["sample_sigma"] = sigma
        result["sample_temperature"] = args.temperature
        result["samples_loglik"] = gen_ll
        if args.plot:
            from ..plots import plot_samples, plot_spectrograms

            stem = Path(args.plot).stem
            plot_samples(Path(args.plot).with_name(stem + "_samples.png"),
                         {s: generated[s][:3].cpu() for s in sources}, {s: real[s][:3].cpu() for s in sources}, sr)
            pairs = {f"{s} {label}": x[s][0].cpu() for s in sources for label, x in (("sample", generated), ("real", real))}
            plot_spectrograms(Path(args.plot).with_name(stem + "_samples_spectrograms.png"), pairs, sr)
    if args.continuation:
        result["continuation"] = continuation_table(priors, sources, columns, args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.json).with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(args.json)
    if args.plot:
        from ..plots import plot_cross_likelihood

        plot_cross_likelihood(args.plot, sources, list(columns), args.sigma, ll)
    if args.wandb != "off":
        from priors.tracking import log_cross_likelihood

        log_cross_likelihood(sources, list(columns), args.sigma, ll, mode=args.wandb, directory=args.wandb_dir,
                             config={k: v for k, v in vars(args).items() if not k.startswith("_")})
    return 0
