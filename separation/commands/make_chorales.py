"""``priorsep make-chorales --out DIR``: Bach chorales as four instrument stems (MUSDB18-HQ layout).

Renders every 4-part chorale of music21's corpus with FluidSynth, soprano -> violin,
alto -> clarinet, tenor -> tenor saxophone, bass -> bassoon (the Bach10 line-up), into
``DIR/{train,test}/<bwv>/{mixture,violin,clarinet,saxophone,bassoon}.wav`` (mono, 32-bit
float, mixture = sum of the stems), plus ``DIR/chorales.json`` (tracks, split, chorale ids,
gains, settings) and ``DIR/dataset.json`` (sources, sample rate, ``mix_scale`` = 1).
Complete track folders are kept on a re-run unless ``--force``. See :mod:`priors.chorales`.

Needs ``apt-get install fluidsynth timgm6mb-soundfont`` and ``pip install music21 pretty_midi``.
"""
from __future__ import annotations

from ..errors import PriorsepError


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--sample-rate", type=int, default=22_050, help="sample rate in Hz (default 22050)")
    parser.add_argument("--soundfont", default=None,
                        help="General MIDI .sf2 file (default: the first in /usr/share/sounds/sf2 or /usr/share/soundfonts)")
    parser.add_argument("--n", type=int, default=None, help="render the first N 4-part chorales (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-stem gains (default 0)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="cut every chorale after this many seconds (tests, previews; default: whole chorales)")
    parser.add_argument("--split", choices=("train", "test"), default=None,
                        help="render only this split's chorales (e.g. the test set with another --soundfont)")
    parser.add_argument("--force", action="store_true", help="re-render tracks that are already complete")
    parser.add_argument("--quiet", action="store_true")


def run(args) -> int:
    from tqdm.auto import tqdm

    from priors import chorales

    if args.n is not None and args.n < 1:
        raise PriorsepError(f"--n must be at least 1, got {args.n}")
    if args.sample_rate < 8000 or args.sample_rate > 96_000:
        raise PriorsepError(f"--sample-rate must be between 8000 and 96000 Hz, got {args.sample_rate}")
    if args.max_seconds is not None and args.max_seconds <= 0:
        raise PriorsepError(f"--max-seconds must be positive, got {args.max_seconds}")
    if not args.quiet:
        print("listing the 4-part chorales of the music21 corpus ...", flush=True)
    try:
        report = chorales.build(args.out, sample_rate=args.sample_rate, soundfont=args.soundfont, n=args.n,
                                seed=args.seed, force=args.force, max_seconds=args.max_seconds, only_split=args.split,
                                progress=lambda it: tqdm(it, desc="chorales", unit="track", disable=args.quiet))
    except chorales.ChoraleError as err:
        raise PriorsepError(str(err)) from None

    sizes = report.split_sizes()
    total = sum(s for _, s in sizes.values())
    print(f"chorales: {len(report.tracks)} tracks in {report.out} ({report.rendered} rendered, "
          f"{report.skipped} already complete), {total:.0f} s = {total / 3600:.2f} h at {args.sample_rate} Hz")
    for split, (n, seconds) in sizes.items():
        print(f"  {split:5s}: {n:4d} tracks, {seconds:8.1f} s ({seconds / 60:.1f} min)")
    print(f"  rendering time: {report.seconds:.1f} s")
    if report.moved or report.removed:
        print(f"  moved {len(report.moved)} and removed {len(report.removed)} track folders that were in the other split")
    if report.extra:
        print(f"  note: {len(report.extra)} other track folders under {report.out} are not part of this run "
              f"(e.g. {report.extra[0]}); data loaders will read them too")
    return 0
