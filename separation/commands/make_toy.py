"""``priorsep make-toy --out DIR``: the toy set as WAV stems in the MUSDB18-HQ layout.

Writes ``DIR/{train,test}/<track>/{mixture,sin,square,saw,triangle}.wav`` (16-bit PCM) and
``DIR/dataset.json`` (sources, sample rate, ``mix_scale`` = 1/K: the toy mixture is the mean).
"""
from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import PriorsepError


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--n-train", type=int, default=5000, help="training examples (default 5000)")
    parser.add_argument("--n-test", type=int, default=1500, help="test examples (default 1500)")
    parser.add_argument("--length", type=int, default=48_000, help="samples per example (default 48000)")
    parser.add_argument("--force", action="store_true", help="write into a folder that already holds a data set")
    parser.add_argument("--quiet", action="store_true")


def run(args) -> int:
    import soundfile as sf

    from priors.data import ToyConfig, ToyGenerator

    out = Path(args.out)
    if (out / "dataset.json").exists() and not args.force:
        raise PriorsepError(f"{out}: already holds a data set (use --force to overwrite)")
    config = ToyConfig(example_length=args.length, n_train=args.n_train, n_test=args.n_test)
    gen = ToyGenerator(config)
    for split, n in (("train", args.n_train), ("test", args.n_test)):
        for i in tqdm(range(n), desc=split, disable=args.quiet):
            track = out / split / f"toy_{split}_{i:05d}"
            track.mkdir(parents=True, exist_ok=True)
            sources = gen.crop(split, i)
            stems = {"mixture": gen.mix(sources), **dict(zip(config.sources, sources))}
            for name, audio in stems.items():
                tmp = track / f".{name}.tmp.wav"
                sf.write(tmp, audio, config.sample_rate, subtype="PCM_16")
                tmp.replace(track / f"{name}.wav")
    info = {"sources": list(config.sources), "sample_rate": config.sample_rate, "mix_scale": 1 / len(config.sources),
            "n_train": args.n_train, "n_test": args.n_test, "length": args.length}
    (out / "dataset.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.n_train} train and {args.n_test} test tracks to {out}")
    return 0
