"""Bach chorales rendered as four instrument stems: a realistic benchmark built offline.

The four voices of every 4-part chorale in music21's bundled corpus are rendered separately
with FluidSynth and a General MIDI soundfont, in the Bach10 line-up::

    soprano -> violin (GM program 40)     alto -> clarinet (71)
    tenor   -> tenor saxophone (66)       bass -> bassoon (70)

and written in the MUSDB18-HQ layout ``DIR/{train,test}/<track>/{mixture,violin,clarinet,
saxophone,bassoon}.wav`` (mono, 32-bit float), which :class:`priors.data.StemFolderDataset`
reads back (``mix_scale=1``: the mixture is the plain sum of the stems).

Levels: each rendered stem is peak-normalised to 1 (GM presets differ a lot in loudness),
multiplied by a gain ~ U(0.7, 1.0) drawn from ``[seed, chorale]`` (so a chorale's gains do
not depend on which other chorales are rendered), the mixture is the sum, and stems and
mixture are then scaled by one common factor so that max |mixture| = 0.99: the stems still
sum exactly to the mixture.

Split: a chorale is in ``test`` when a hash of its corpus id falls in the lowest 20 % (about
one in five, independent of order and of how many chorales are rendered); for tiny sets at
least one chorale goes to each split (see :func:`split_chorales`).

Timing: note offsets in quarter lengths are converted to seconds with the score's metronome
marks (88-120 bpm in the few scores that have one, :data:`DEFAULT_BPM` otherwise); ties are
merged (``stripTies``), rests and grace notes (zero duration) are skipped; fermatas are not
lengthened; every part ends :data:`TAIL_SECONDS` after its last note-off. Rendering uses the ``fluidsynth`` command-line program (float output: the
Python binding only offers 16-bit samples).

This module never imports from ``separation``: user-facing problems (missing music21,
fluidsynth or soundfont, an incompatible output folder) raise :class:`ChoraleError`.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

#: (voice, stem name = instrument, General MIDI program), top voice first
LINEUP = (("soprano", "violin", 40), ("alto", "clarinet", 71),
          ("tenor", "saxophone", 66), ("bass", "bassoon", 70))
VOICES = tuple(v for v, _, _ in LINEUP)
STEMS = tuple(s for _, s, _ in LINEUP)
PROGRAMS = {s: p for _, s, p in LINEUP}
FILES = ("mixture", *STEMS)

DEFAULT_BPM = 100.0  # quarter notes per minute when the score has no metronome mark
DEFAULT_VELOCITY = 90
TEST_FRACTION = 0.2
GAIN_RANGE = (0.7, 1.0)
PEAK = 0.99  # max |mixture| after the joint normalisation
TAIL_SECONDS = 1.0  # rendered after the last note-off (release and reverb)
SYNTH_GAIN = 0.2  # fluidsynth -g (float output: the level is normalised afterwards anyway)

SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/soundfonts")
#: preferred file names, in order; otherwise the first .sf2 by name
PREFERRED_SOUNDFONTS = ("TimGM6mb.sf2", "FluidR3_GM.sf2", "default-GM.sf2")


class ChoraleError(RuntimeError):
    """A problem the user can fix (missing tool, soundfont or package; incompatible folder)."""


# ----------------------------------------------------------------------------- environment
def find_soundfont(path: str | os.PathLike | None = None) -> Path:
    """``path`` if given (must exist), else the first GM soundfont in :data:`SOUNDFONT_DIRS`."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ChoraleError(f"soundfont {p} not found")
        return p
    found = [p for d in SOUNDFONT_DIRS for p in sorted(Path(d).glob("*.sf2")) if p.is_file()]
    for name in PREFERRED_SOUNDFONTS:
        for p in found:
            if p.name == name:
                return p
    if found:
        return found[0]
    raise ChoraleError(f"no .sf2 soundfont in {' or '.join(SOUNDFONT_DIRS)}: install one "
                       "(apt-get install timgm6mb-soundfont) or pass --soundfont PATH")


def find_fluidsynth() -> str:
    """Path of the ``fluidsynth`` program."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise ChoraleError("the fluidsynth program is not installed (apt-get install fluidsynth)")
    return exe


def _music21():
    try:
        import music21
    except ImportError:
        raise ChoraleError("music21 is not installed (pip install music21)") from None
    return music21


def _pretty_midi():
    try:
        import pretty_midi
    except ImportError:
        raise ChoraleError("pretty_midi is not installed (pip install pretty_midi)") from None
    return pretty_midi


# ----------------------------------------------------------------------------- listing, split
def _unit_hash(*parts) -> float:
    """A number in [0, 1) from the SHA-1 of ``parts`` (stable across runs and machines)."""
    digest = hashlib.sha1("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_chorales(chorale_ids: Iterable[str], test_fraction: float = TEST_FRACTION) -> dict[str, str]:
    """``{chorale id: "train" | "test"}``.

    A chorale is ``test`` when its hash is below ``test_fraction``: the choice depends on the
    id only, so it does not change with the order or number of chorales. With two chorales or
    more, at least one lands in each split (the lowest hash moves to test, the highest to train).
    """
    ids = list(dict.fromkeys(chorale_ids))
    h = {cid: _unit_hash("split", cid) for cid in ids}
    test = {cid for cid in ids if h[cid] < test_fraction}
    if len(ids) >= 2:
        if not test:
            test.add(min(ids, key=h.__getitem__))
        if len(test) == len(ids):
            test.discard(max(ids, key=h.__getitem__))
    return {cid: "test" if cid in test else "train" for cid in ids}


def track_name(chorale_id: str) -> str:
    """Folder name of a chorale: ``bach/bwv153.1`` -> ``bwv153.1``."""
    return chorale_id.rsplit("/", 1)[-1]


def iter_chorales(n: int | None = None):
    """``(corpus id, score)`` of the first ``n`` (default: all) chorales with exactly four parts.

    Order: music21's chorale iterator (Riemenschneider numbering), duplicates (the same file
    under two numbers) dropped. Scores are parsed one at a time.
    """
    m21 = _music21()
    ids = list(dict.fromkeys(m21.corpus.chorales.Iterator(returnType="filename")))
    found = 0
    for cid in ids:
        if n is not None and found >= n:
            return
        score = m21.corpus.parse(cid)
        if len(score.parts) == 4:
            found += 1
            yield cid, score


def list_chorales(n: int | None = None) -> list[str]:
    """Corpus ids of the first ``n`` 4-part chorales (parses every score: ~0.1 s each)."""
    return [cid for cid, _ in iter_chorales(n)]


# ----------------------------------------------------------------------------- score -> notes
class TempoMap:
    """Quarter-length offsets -> seconds, piecewise constant tempo from the score's marks."""

    def __init__(self, marks: list[tuple[float, float]], default_bpm: float = DEFAULT_BPM):
        marks = sorted(dict(marks).items())
        if not marks or marks[0][0] > 0:
            marks.insert(0, (0.0, default_bpm))
        self.offsets = [q for q, _ in marks]
        self.bpms = [b for _, b in marks]
        self.starts = [0.0]  # seconds at each mark
        for i in range(1, len(marks)):
            self.starts.append(self.starts[-1] + (self.offsets[i] - self.offsets[i - 1]) * 60.0 / self.bpms[i - 1])

    @classmethod
    def from_score(cls, score, default_bpm: float = DEFAULT_BPM) -> "TempoMap":
        from music21 import tempo

        flat = score.flatten()
        marks = {}
        for mm in flat.getElementsByClass(tempo.MetronomeMark):
            number = mm.number if mm.number is not None else mm.numberSounding
            if number:
                q = float(flat.elementOffset(mm))
                marks.setdefault(q, float(number) * float(mm.referent.quarterLength))
        return cls(list(marks.items()), default_bpm)

    def seconds(self, q: float) -> float:
        i = max(0, bisect.bisect_right(self.offsets, q) - 1)
        return self.starts[i] + (q - self.offsets[i]) * 60.0 / self.bpms[i]

    @property
    def initial_bpm(self) -> float:
        return self.bpms[0]


@dataclass(frozen=True)
class Note:
    start: float  # seconds
    end: float
    pitch: int  # MIDI


def part_notes(part, tempo_map: TempoMap, max_seconds: float | None = None) -> list[Note]:
    """The notes of one part in seconds: ties merged, rests and grace notes skipped; with
    ``max_seconds``, notes starting later are dropped and the others cut there."""
    flat = part.stripTies().flatten()
    notes = []
    for n in flat.notes:
        q0 = float(flat.elementOffset(n))
        q1 = q0 + float(n.quarterLength)
        if q1 <= q0:
            continue  # grace note
        start, end = tempo_map.seconds(q0), tempo_map.seconds(q1)
        if max_seconds is not None:
            if start >= max_seconds:
                continue
            end = min(end, max_seconds)
        for p in n.pitches:
            notes.append(Note(start, end, int(p.midi)))
    return sorted(notes, key=lambda x: (x.start, x.pitch))


def to_midi(notes: list[Note], program: int, path: str | os.PathLike, velocity: int = DEFAULT_VELOCITY) -> None:
    """Write one part as a single-instrument MIDI file (channel 0, ``program``)."""
    pm_mod = _pretty_midi()
    pm = pm_mod.PrettyMIDI(resolution=960, initial_tempo=120.0)
    inst = pm_mod.Instrument(program=program)
    inst.notes = [pm_mod.Note(velocity=velocity, pitch=n.pitch, start=n.start, end=n.end) for n in notes]
    pm.instruments.append(inst)
    pm.write(str(path))


def render_midi(midi_path: str | os.PathLike, sample_rate: int, soundfont: str | os.PathLike,
                fluidsynth: str | None = None) -> np.ndarray:
    """Render a MIDI file with the fluidsynth program: (time,) float32, left channel."""
    import soundfile as sf

    exe = fluidsynth or find_fluidsynth()
    with tempfile.TemporaryDirectory(prefix="priorsep-fs-") as tmp:
        wav = Path(tmp) / "out.wav"
        cmd = [exe, "-n", "-i", "-q", "-F", str(wav), "-T", "wav", "-O", "float", "-r", str(sample_rate),
               "-g", str(SYNTH_GAIN), str(soundfont), str(midi_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wav.is_file():
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise ChoraleError(f"fluidsynth failed on {midi_path}: {msg[-1] if msg else f'exit {proc.returncode}'}")
        audio, sr = sf.read(wav, dtype="float32", always_2d=True)
    if sr != sample_rate:
        raise ChoraleError(f"fluidsynth wrote {sr} Hz instead of {sample_rate} Hz")
    return np.ascontiguousarray(audio[:, 0])


def render_part(notes: list[Note], program: int, sample_rate: int, soundfont: str | os.PathLike,
                fluidsynth: str | None = None, tail: float = TAIL_SECONDS) -> np.ndarray:
    """One part rendered alone, ``tail`` seconds past its last note-off: (time,) float32.

    (fluidsynth itself renders about 2 s past the last MIDI event; the cut makes the length a
    function of the score only.)"""
    length = int(round((max((n.end for n in notes), default=0.0) + tail) * sample_rate))
    if not notes:
        return np.zeros(length, np.float32)
    with tempfile.TemporaryDirectory(prefix="priorsep-midi-") as tmp:
        mid = Path(tmp) / "part.mid"
        to_midi(notes, program, mid)
        audio = render_midi(mid, sample_rate, soundfont, fluidsynth)
    out = np.zeros(length, np.float32)
    out[:min(length, len(audio))] = audio[:length]
    return out


# ----------------------------------------------------------------------------- one track
def stem_gains(chorale_id: str, seed: int = 0, low: float = GAIN_RANGE[0], high: float = GAIN_RANGE[1]) -> dict[str, float]:
    """Per-stem gains ~ U(low, high), from ``[seed, hash(chorale id)]``."""
    key = int.from_bytes(hashlib.sha1(chorale_id.encode()).digest()[:4], "big")
    rng = np.random.default_rng([seed, key])
    return {s: float(rng.uniform(low, high)) for s in STEMS}


def mix_stems(parts: dict[str, np.ndarray], gains: dict[str, float], peak: float = PEAK):
    """Pad, peak-normalise each stem to 1, apply ``gains``, sum, and scale everything jointly
    so that max |mixture| = ``peak``. Returns ``({name: audio} with "mixture", joint scale)``."""
    length = max(len(a) for a in parts.values())
    stems = {}
    for name, audio in parts.items():
        x = np.zeros(length, np.float64)
        x[:len(audio)] = audio
        top = np.abs(x).max()
        stems[name] = x * (gains[name] / top) if top > 0 else x
    mixture = np.sum(list(stems.values()), axis=0)
    top = np.abs(mixture).max()
    scale = peak / top if top > 0 else 1.0
    out = {name: (x * scale).astype(np.float32) for name, x in stems.items()}
    # sum the float32 stems so the written mixture is their exact (float) sum
    out["mixture"] = np.sum([out[s] for s in parts], axis=0, dtype=np.float64).astype(np.float32)
    return out, float(scale)


def render_chorale(score, chorale_id: str, sample_rate: int, soundfont: str | os.PathLike, seed: int = 0,
                   max_seconds: float | None = None, default_bpm: float = DEFAULT_BPM,
                   fluidsynth: str | None = None):
    """All stems and the mixture of one 4-part score: ``({name: (time,) float32}, info)``."""
    if len(score.parts) != 4:
        raise ValueError(f"{chorale_id}: {len(score.parts)} parts, expected 4")
    tmap = TempoMap.from_score(score, default_bpm)
    rendered = {}
    n_notes = {}
    for (voice, stem, program), part in zip(LINEUP, score.parts):
        notes = part_notes(part, tmap, max_seconds)
        n_notes[stem] = len(notes)
        rendered[stem] = render_part(notes, program, sample_rate, soundfont, fluidsynth)
    gains = stem_gains(chorale_id, seed)
    audio, scale = mix_stems(rendered, gains)
    info = {"chorale": chorale_id, "bpm": tmap.initial_bpm, "gains": gains, "scale": scale,
            "notes": n_notes, "seconds": len(audio["mixture"]) / sample_rate}
    return audio, info


# ----------------------------------------------------------------------------- files
def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """32-bit float WAV, written under a temporary name and renamed (atomic)."""
    import soundfile as sf

    tmp = path.with_name(f".{path.stem}.tmp.wav")
    sf.write(tmp, audio, sample_rate, subtype="FLOAT")
    tmp.replace(path)


def write_track(folder: Path, audio: dict[str, np.ndarray], sample_rate: int) -> None:
    """Stems first, ``mixture.wav`` last (a folder counts as a track once it has a mixture)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*STEMS, "mixture"):
        write_wav(folder / f"{name}.wav", audio[name], sample_rate)


def track_complete(folder: Path, sample_rate: int) -> bool:
    """Every file present, at ``sample_rate``, all of one length."""
    import soundfile as sf

    try:
        infos = [sf.info(str(folder / f"{name}.wav")) for name in FILES]
    except (OSError, RuntimeError):
        return False
    return all(i.samplerate == sample_rate for i in infos) and len({i.frames for i in infos}) == 1


def track_seconds(folder: Path) -> float:
    import soundfile as sf

    return sf.info(str(folder / "mixture.wav")).duration


def remove_track(folder: Path) -> None:
    """Delete a track folder written by this module (only its own files)."""
    for name in FILES:
        for p in (folder / f"{name}.wav", folder / f".{name}.tmp.wav"):
            p.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass


# ----------------------------------------------------------------------------- the data set
@dataclass
class BuildReport:
    out: Path
    tracks: list[dict] = field(default_factory=list)
    rendered: int = 0
    skipped: int = 0
    moved: list[str] = field(default_factory=list)  # complete tracks moved from the other split
    removed: list[str] = field(default_factory=list)  # stale copies deleted from the other split
    extra: list[str] = field(default_factory=list)  # track folders not part of this run
    seconds: float = 0.0  # wall time

    def split_sizes(self) -> dict[str, tuple[int, float]]:
        return {s: (sum(t["split"] == s for t in self.tracks), sum(t["seconds"] for t in self.tracks if t["split"] == s))
                for s in ("train", "test")}


SETTINGS = ("sample_rate", "soundfont", "seed", "max_seconds", "default_bpm")


def build(out: str | os.PathLike, sample_rate: int = 22_050, soundfont: str | os.PathLike | None = None,
          n: int | None = None, seed: int = 0, force: bool = False, max_seconds: float | None = None,
          default_bpm: float = DEFAULT_BPM,
          progress: Callable[[Iterable], Iterable] | None = None, only_split: str | None = None) -> BuildReport:
    """Render the first ``n`` 4-part chorales into ``out`` and write ``out/chorales.json`` and
    ``out/dataset.json``. Complete track folders are kept unless ``force``. ``progress``
    wraps the iterator over chorales (e.g. a tqdm factory). ``only_split`` (``train`` or
    ``test``): render only the chorales of that split (e.g. the test chorales with another
    soundfont, a held-out timbre check); the split of a chorale does not change."""
    if only_split not in (None, "train", "test"):
        raise ChoraleError(f"only_split must be train or test, got {only_split!r}")
    t0 = time.perf_counter()
    _music21(), _pretty_midi()
    sf2 = find_soundfont(soundfont)
    exe = find_fluidsynth()
    out = Path(out)
    settings = {"sample_rate": int(sample_rate), "soundfont": str(sf2), "seed": int(seed),
                "max_seconds": max_seconds, "default_bpm": float(default_bpm)}
    meta_path = out / "chorales.json"
    previous = {}
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text())
        except ValueError:
            old = {}
        changed = [k for k in SETTINGS if k in old and old[k] != settings[k]]
        if changed and not force:
            diffs = ", ".join(f"{k} {old[k]!r} -> {settings[k]!r}" for k in changed)
            raise ChoraleError(f"{out} holds chorales rendered with other settings ({diffs}); use --force to re-render")
        if not changed:
            previous = {t["track"]: t for t in old.get("tracks", [])}

    out.mkdir(parents=True, exist_ok=True)
    # record the settings before rendering, so that an interrupted run is checked like a finished one
    _write_json(meta_path, {**settings, "complete": False, "tracks": list(previous.values())})

    report = BuildReport(out)
    m21 = _music21()
    ids = list_chorales(n)
    splits = split_chorales(ids)
    if only_split is not None:
        ids = [cid for cid in ids if splits[cid] == only_split]
    for cid in (progress(ids) if progress is not None else ids):
        name, split = track_name(cid), splits[cid]
        other = "test" if split == "train" else "train"
        dest, stale = out / split / name, out / other / name
        if not force and not track_complete(dest, sample_rate) and track_complete(stale, sample_rate):
            if dest.exists():
                remove_track(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            stale.replace(dest)  # rendered by a run with another --n, where it fell in the other split
            report.moved.append(f"{other}/{name}")
        if not force and track_complete(dest, sample_rate):
            report.skipped += 1
        else:
            audio, info = render_chorale(m21.corpus.parse(cid), cid, sample_rate, sf2, seed, max_seconds,
                                         default_bpm, exe)
            write_track(dest, audio, sample_rate)
            previous[name] = {"track": name, **info}
            report.rendered += 1
        if stale.exists():
            remove_track(stale)
            report.removed.append(f"{other}/{name}")
        entry = dict(previous.get(name) or {"track": name, "chorale": cid, "gains": stem_gains(cid, seed)})
        entry.update(track=name, split=split, chorale=cid, seconds=track_seconds(dest))
        report.tracks.append(entry)

    names = {t["track"] for t in report.tracks}
    for split in ("train", "test"):
        d = out / split
        if d.is_dir():
            report.extra += [f"{split}/{p.name}" for p in sorted(d.iterdir()) if p.is_dir() and p.name not in names]

    report.seconds = time.perf_counter() - t0
    sizes = report.split_sizes()
    meta = {"sources": list(STEMS), "voices": dict(zip(VOICES, STEMS)), "programs": PROGRAMS, **settings,
            "mix_scale": 1.0, "gain_range": list(GAIN_RANGE), "peak": PEAK, "test_fraction": TEST_FRACTION,
            "complete": True, "n_train": sizes["train"][0], "n_test": sizes["test"][0],
            "seconds_train": round(sizes["train"][1], 3), "seconds_test": round(sizes["test"][1], 3),
            "tracks": report.tracks}
    _write_json(meta_path, meta)
    _write_json(out / "dataset.json", {"sources": list(STEMS), "sample_rate": int(sample_rate), "mix_scale": 1.0,
                                       "n_train": sizes["train"][0], "n_test": sizes["test"][0],
                                       "generator": "chorales"})
    return report


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)
