"""``priorsep separate MIX.wav [MORE … | FOLDER] -o OUT/ [--model NAME|CKPT] [--force] [--plot]``.

Writes one 32-bit float WAV per source, same sample rate, channel count and length as the
input: ``OUT/<source>.wav`` for one input, ``OUT/<input name>/<source>.wav`` for several.
Each channel is separated on its own; long files are processed in overlapping chunks, and
the chunks of several files are batched together (files are read in groups of at most
``--group-seconds`` of audio, which bounds memory).

``--model``: a packaged model's name (``priorsep models`` lists them; default ``toy``) or a
checkpoint path. A toy-set model applied to a file that is not from the toy set (not mono
at 14 700 Hz) prints one warning line to stderr (see ``separation.models.toy_mismatch``).
"""
from __future__ import annotations

import sys
from pathlib import Path

from . import add_precision_argument

#: a name of ``separation.models.MODELS`` (spelled out here so that ``--help`` needs no import)
DEFAULT_MODEL = "toy"
MODEL_HELP = (f"a model name (see `priorsep models`; default {DEFAULT_MODEL}: the toy sin/square/saw/triangle "
              f"set) or a separator checkpoint path (.pt or Lightning .ckpt)")


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", help="mixture audio files (wav, flac, ogg, mp3, …) or folders of them")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=MODEL_HELP)
    parser.add_argument("--device", default="cpu")
    add_precision_argument(parser, "inference precision (bf16: bfloat16 autocast, faster on CPUs with AVX512-BF16)")
    parser.add_argument("--chunk-seconds", type=float, default=None, help="chunk length (default: model-dependent)")
    parser.add_argument("--batch-size", type=int, default=8, help="chunks per forward pass (across files)")
    parser.add_argument("--group-seconds", type=float, default=600.0,
                        help="audio read and separated together (chunks of its files share batches)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument("--plot", action="store_true", help="also write spectrograms.png (mixture and estimates)")
    parser.add_argument("--quiet", action="store_true")


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp4", ".aiff", ".aif"}


def expand_inputs(inputs: list[str]) -> list[Path]:
    files = []
    for item in inputs:
        p = Path(item)
        files += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES) if p.is_dir() else [p]
    return files


def file_groups(files: list[Path], group_seconds: float) -> list[list[Path]]:
    """Consecutive files whose durations add up to at most ``group_seconds`` (a longer file
    is a group of its own)."""
    import soundfile as sf

    groups, current, seconds = [], [], 0.0
    for f in files:
        try:
            duration = sf.info(str(f)).duration
        except Exception:  # compressed formats soundfile cannot read: count them as long
            duration = group_seconds
        if current and seconds + duration > group_seconds:
            groups.append(current)
            current, seconds = [], 0.0
        current.append(f)
        seconds += duration
    return groups + ([current] if current else [])


def run(args) -> int:
    from ..apply import separate_arrays
    from ..audio import load_audio, prepare_output_dir, save_audio
    from ..errors import PriorsepError
    from ..models import load_separator, toy_mismatch, toy_warning

    files = expand_inputs(args.inputs)
    if not files:
        raise PriorsepError(f"no audio files in {', '.join(args.inputs)}")
    separator = load_separator(args.model, args.device, precision=args.precision)
    out = Path(args.out)
    targets = {f: out if len(files) == 1 else out / f.stem for f in files}
    for f in files:  # refuse existing outputs before any work
        prepare_output_dir(targets[f], [f"{s}.wav" for s in separator.sources], args.force)
    kwargs = {"chunk_seconds": args.chunk_seconds} if args.chunk_seconds else {}
    warned = False
    for group in file_groups(files, args.group_seconds):
        audios = [load_audio(f) for f in group]
        for f, (audio, sr) in zip(group, audios):
            reason = None if warned else toy_mismatch(separator, audio.shape, sr)
            if reason:  # once per run
                print(f"priorsep: warning: {toy_warning(str(f), reason)}", file=sys.stderr, flush=True)
                warned = True
        ests = separate_arrays(separator, audios, batch_size=args.batch_size, progress=not args.quiet, **kwargs)
        for f, (audio, sr), est in zip(group, audios, ests):
            target = targets[f]
            for name, stem in zip(separator.sources, est):
                save_audio(target / f"{name}.wav", stem, sr)
            if args.plot:
                from ..plots import plot_spectrograms

                plot_spectrograms(target / "spectrograms.png",
                                  {"mixture": audio.mean(0), **{n: e.mean(0) for n, e in zip(separator.sources, est)}}, sr)
            if not args.quiet:
                print(f"{f} -> {target}/ ({', '.join(f'{s}.wav' for s in separator.sources)})")
        del audios, ests
    return 0
