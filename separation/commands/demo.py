"""``priorsep demo --out DIR [--model NAME|CKPT]``: separate a toy test mixture with a shipped
toy model (default ``toy``; ``priorsep models`` lists them), print SI-SDR per source, write
the WAVs and a spectrogram PNG."""
from __future__ import annotations

from pathlib import Path

import torch

from .separate import DEFAULT_MODEL, MODEL_HELP


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="demo_out")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=MODEL_HELP + "; it must separate the toy sources")
    parser.add_argument("--index", type=int, default=0, help="toy test example")
    parser.add_argument("--seconds", type=float, default=3.0)


def run(args) -> int:
    import soundfile as sf

    from priors.data import TOY_SAMPLE_RATE, TOY_SOURCES, ToyGenerator

    from ..models import load_separator
    from ..metrics import si_sdr
    from ..plots import plot_spectrograms

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sep = load_separator(args.model, sources=list(TOY_SOURCES), sample_rate=TOY_SAMPLE_RATE)
    gen = ToyGenerator()
    refs = torch.from_numpy(gen.crop("test", args.index, 0, int(args.seconds * TOY_SAMPLE_RATE)))
    mix = gen.mix(refs)
    est = sep(mix.unsqueeze(0))[0]
    sdr = si_sdr(est, refs)
    base = si_sdr(mix.expand_as(refs), refs)
    sf.write(out / "mixture.wav", mix.numpy(), TOY_SAMPLE_RATE, subtype="FLOAT")
    print(f"separated toy test mixture #{args.index} ({args.seconds:g} s) with {args.model} ({sep.meta['objective']})")
    print(f"{'source':>10} {'SI-SDR':>8} {'SI-SDRi':>8}")
    for k, name in enumerate(sep.sources):
        sf.write(out / f"{name}.wav", est[k].numpy(), TOY_SAMPLE_RATE, subtype="FLOAT")
        sf.write(out / f"{name}_reference.wav", refs[k].numpy(), TOY_SAMPLE_RATE, subtype="FLOAT")
        print(f"{name:>10} {sdr[k]:8.1f} {sdr[k] - base[k]:8.1f}")
    print(f"{'mean':>10} {sdr.mean():8.1f} {(sdr - base).mean():8.1f}")
    n = 4096
    plot_spectrograms(out / "spectrograms.png", {"mixture": mix[:n],
                      **{f"{s} (estimate)": est[k, :n] for k, s in enumerate(sep.sources)},
                      **{f"{s} (reference)": refs[k, :n] for k, s in enumerate(sep.sources)}}, TOY_SAMPLE_RATE, n_fft=512)
    print(f"wrote {out}/{{mixture,{','.join(sep.sources)}}}.wav and spectrograms.png")
    return 0
