"""MUSDB18 evaluation: separate every track of a subset at full length and score it.

Scores are BSSEval v4 image SDR from museval (1 s windows and hop, 512-tap distortion
filters over the whole track), one JSON per track in museval's own format at
``OUT/<subset>/<track>.json``; the summary is the median over frames, then the median over
tracks, per target. Frames where museval finds a silent reference or estimate are NaN and
are left out of the medians; a target with no finite frame in any track is ``null``.
A track whose JSON already exists is read back, not recomputed (resumable runs).

``fast=True`` replaces museval by :func:`framewise_sdr` (plain SDR per 1 s frame, no
distortion filters, the same medians), stored as ``<track>.fast.json``; the first track is
also scored with museval and the two medians are reported side by side.

Methods: a separator checkpoint (its sources must be MUSDB target names; estimates are
rescaled by its ``mix_scale`` into mixture units, since MUSDB mixtures are the plain sum of
the stems), annealed Langevin with a folder of frozen priors, ``nmf`` (KL-NMF templates per
stem learned from the isolated stems of the train subset, fitted once and stored as
``OUT/nmf.pt``), ``mix`` (every target = mixture / number of targets) or ``irm`` (the oracle
ideal ratio mask |S_j|² / Σ|S_i|² from the references: context, not a method).
``max_tracks`` scores the first N tracks only and ``max_seconds`` the first S seconds of
each, for methods too slow for the whole set (Langevin).

Audio arrays in this module follow musdb: (time, channels) float64 at the track's rate.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import PriorsepError

MUSDB_TARGETS = ("vocals", "drums", "bass", "other")
WINDOW_SECONDS = 1.0


@dataclass
class EvalConfig:
    """Everything a worker needs to reproduce one track's result."""

    root: str
    out: str
    targets: list[str]
    model: str | None = None
    baseline: str | None = None
    langevin: str | None = None  # folder of priors
    langevin_levels: int = 10
    langevin_steps: int = 20
    nmf_rank: int = 32
    max_tracks: int | None = None
    max_seconds: float | None = None
    is_wav: bool = False
    subset: str = "test"
    device: str = "cpu"
    precision: str = "fp32"  # a model's inference precision (see separation.checkpoints.EncoderSeparator)
    chunk_seconds: float | None = None
    batch_size: int = 8
    fast: bool = False
    seed: int = 0

    @property
    def method(self) -> str:
        if self.model:
            return f"model {self.model}" + (f" ({self.precision})" if self.precision != "fp32" else "")
        if self.langevin:
            return f"langevin {self.langevin} ({self.langevin_levels} levels x {self.langevin_steps} steps)"
        return f"baseline {self.baseline}"


# ---------------------------------------------------------------------------- metrics
def frame_slices(length: int, win: int, hop: int) -> list[slice]:
    """museval's framing: windows of ``win`` samples every ``hop`` that fit entirely in
    ``length`` (a trailing partial window is dropped); one window over all when win >= length."""
    if win >= length:
        return [slice(0, length)]
    n = (length - win + hop) // hop
    return [slice(t * hop, t * hop + win) for t in range(n)]


def framewise_sdr(references: np.ndarray, estimates: np.ndarray, win: int, hop: int | None = None,
                  eps: float = 1e-12) -> np.ndarray:
    """Plain SDR per frame, 10·log10(Σ s² / Σ (s − ŝ)²) summed over the frame's samples and
    channels: references, estimates (n_sources, time, channels) -> (n_sources, n_frames) dB.

    Frames follow museval (:func:`frame_slices`) and so does the silence rule: a frame where
    any reference or any estimate is all zeros is NaN for every source. No distortion filter
    (unlike BSSEval's image SDR): cheaper, and lower for estimates that are filtered copies.
    """
    references = np.asarray(references, dtype=np.float64)
    estimates = np.asarray(estimates, dtype=np.float64)
    if references.shape != estimates.shape:
        raise ValueError(f"references {references.shape} and estimates {estimates.shape} differ in shape")
    frames = frame_slices(references.shape[1], win, hop or win)
    out = np.full((references.shape[0], len(frames)), np.nan)
    for t, sl in enumerate(frames):
        ref, est = references[:, sl], estimates[:, sl]
        if (~ref.any(axis=(1, 2))).any() or (~est.any(axis=(1, 2))).any():
            continue
        num = (ref ** 2).sum(axis=(1, 2))
        den = ((ref - est) ** 2).sum(axis=(1, 2))
        out[:, t] = 10 * np.log10((num + eps) / (den + eps))
    return out


def _nan_to_none(x: float) -> float | None:
    return round(float(x), 5) if np.isfinite(x) else None


def store_medians(store: dict, metric: str = "SDR") -> dict[str, float]:
    """Median over finite frames per target of a museval-format score dict; NaN when none."""
    out = {}
    for target in store["targets"]:
        values = np.array([np.nan if f["metrics"][metric] is None else float(f["metrics"][metric])
                           for f in target["frames"]], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[target["name"]] = float(np.median(finite)) if finite.size else float("nan")
    return out


def aggregate(per_track: dict[str, dict[str, float]], targets: list[str]) -> dict[str, float | None]:
    """Median over tracks of the per-track medians (dB, 5 decimals as museval stores them),
    ignoring NaN; None when no track has one."""
    out = {}
    for t in targets:
        values = np.array([m.get(t, np.nan) for m in per_track.values()], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[t] = round(float(np.median(finite)), 5) if finite.size else None
    return out


def _fast_store(track_name: str, references: np.ndarray, estimates: np.ndarray, names: list[str], rate: int) -> dict:
    win = int(WINDOW_SECONDS * rate)
    live = references.reshape(len(names), -1).any(axis=1)  # as score_museval: whole-track silent refs drop out
    sdr = np.full((len(names), len(frame_slices(references.shape[1], win, win))), np.nan)
    if live.any():
        sdr[live] = framewise_sdr(references[live], estimates[live], win, win)
    return {"targets": [{"name": name, "frames": [
        {"time": t * WINDOW_SECONDS, "duration": WINDOW_SECONDS,
         "metrics": {"SDR": round(float(v), 5) if np.isfinite(v) else float("nan")}} for t, v in enumerate(row)]}
        for name, row in zip(names, sdr)], "metric": "framewise SDR (priorsep fast)", "track": track_name}


# ---------------------------------------------------------------------------- baselines
def ideal_ratio_mask(mixture: np.ndarray, sources: np.ndarray, n_fft: int = 2048, hop: int = 512,
                     power: float = 2.0) -> np.ndarray:
    """Oracle IRM (IRM2 for power 2): mixture STFT × |S_j|^p / Σ_i |S_i|^p, per channel.

    mixture (channels, time), sources (J, channels, time) -> estimates (J, channels, time)
    float32. The same masks as :func:`separation.baselines.oracle_ratio_mask`, computed one
    channel at a time in float32 to keep whole tracks in memory.
    """
    window = torch.hann_window(n_fft)
    n_sources, n_channels, length = sources.shape
    out = np.empty((n_sources, n_channels, length), np.float32)

    def stft(x):
        return torch.stft(torch.as_tensor(x, dtype=torch.float32), n_fft, hop, window=window, return_complex=True)

    for c in range(n_channels):
        p = [stft(sources[j, c]).abs() ** power for j in range(n_sources)]
        total = torch.stack(p).sum(0).clamp(min=1e-12)
        m = stft(mixture[c])
        for j in range(n_sources):
            out[j, c] = torch.istft(p[j] / total * m, n_fft, hop, window=window, length=length).numpy()
            p[j] = None
    return out


# ---------------------------------------------------------------------------- tracks
def load_track(track, max_seconds: float | None = None) -> np.ndarray:
    """Read a musdb track's mixture and stems once and cache them on the track, so museval's
    own reads are free. Returns the mixture (time, channels) float64, the first
    ``max_seconds`` only when given (the cached stems are cut to the same length).

    WAV folders are read with soundfile (for 16-bit PCM the same values as musdb's ffmpeg
    reader, which also scales by 1/32768); stem files (.stem.mp4) are decoded once by musdb.
    """
    if track.is_wav:
        import soundfile as sf

        mixture = sf.read(track.path, dtype="float64", always_2d=True)[0]
        for source in track.sources.values():
            source.audio = sf.read(source.path, dtype="float64", always_2d=True)[0]
    else:
        stems = track.stems  # (streams, time, channels), streams in stem_id order
        mixture = stems[0]
        for source in track.sources.values():
            source.audio = stems[source.stem_id]
    if max_seconds is not None:
        n = max(1, int(round(max_seconds * float(track.rate))))
        mixture = mixture[:n]
        for source in track.sources.values():
            source.audio = source.audio[:n]
    track.audio = mixture
    return mixture


def release_track(track) -> None:
    """Drop the audio :func:`load_track` cached on a track."""
    track.audio = None
    for source in track.sources.values():
        source.audio = None


def _target_audio(track, name: str) -> np.ndarray:
    return np.asarray(track.targets[name].audio, dtype=np.float64)


def score_museval(track, estimates: dict[str, np.ndarray]):
    """museval's :func:`museval.eval_mus_track` (BSSEval v4, 1 s windows): a ``TrackStore``.

    museval refuses a reference that is silent over the whole track and needs two
    estimates; then the other targets are scored by museval's ``evaluate`` exactly as
    ``eval_mus_track`` would (vocals/accompaniment as their own pair), and the silent ones
    get NaN frames (no score, left out of the medians).
    """
    import museval
    from museval.aggregate import TrackStore

    names = list(estimates)
    silent = {t for t in names if not _target_audio(track, t).any()}
    if not silent and len(names) >= 2:
        return museval.eval_mus_track(track, estimates, output_dir=None, win=WINDOW_SECONDS, hop=WINDOW_SECONDS)
    rate = int(track.rate)
    win = int(WINDOW_SECONDS * rate)
    store = TrackStore(win=WINDOW_SECONDS, hop=WINDOW_SECONDS, track_name=track.name)
    has_acc = "vocals" in names and "accompaniment" in names
    groups = [([t for t in names if not (has_acc and t == "accompaniment")], {"vocals"} if has_acc else set())]
    if has_acc:
        groups.append((["vocals", "accompaniment"], set()))
    length = _target_audio(track, names[0]).shape[0]
    for group, skip in groups:
        live = [t for t in group if t not in silent]
        if not live:
            continue
        sdr, isr, sir, sar = museval.evaluate([_target_audio(track, t) for t in live], [estimates[t] for t in live],
                                              win=win, hop=win)
        for i, t in enumerate(live):
            if t not in skip:
                store.add_target(t, {"SDR": sdr[i].tolist(), "ISR": isr[i].tolist(),
                                     "SIR": sir[i].tolist(), "SAR": sar[i].tolist()})
    nan = [float("nan")] * len(frame_slices(length, win, win))
    for t in names:
        if t in silent:
            store.add_target(t, {"SDR": nan, "ISR": nan, "SIR": nan, "SAR": nan})
    return store


def result_path(out: str | Path, subset: str, track_name: str, fast: bool) -> Path:
    """Where a track's scores live: museval's layout ``OUT/<subset>/<track>.json``
    (``<track>.fast.json`` for the fast metric)."""
    return Path(out) / subset / f"{track_name}{'.fast' if fast else ''}.json"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_result(path: Path) -> dict | None:
    """A track's stored scores, or None when missing or unreadable (then it is recomputed)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("targets"), list) else None


def open_db(cfg: "EvalConfig"):
    """``musdb.DB`` over ``cfg.root``. A stem folder made by this project (``dataset.json``
    naming other sources, e.g. the rendered chorales) gets a musdb setup file written to
    ``OUT/musdb_setup.yaml`` whose sources and targets are those stems, so the same code and
    museval score any MUSDB18-HQ-layout folder."""
    import musdb

    setup_file = None
    info = Path(cfg.root) / "dataset.json"
    if cfg.is_wav and info.is_file():
        meta = json.loads(info.read_text())
        sources = list(meta.get("sources", []))
        if sources and set(sources) != set(MUSDB_TARGETS):
            lines = [f"sample_rate: {float(meta.get('sample_rate', 44100))}", "sources:"]
            lines += [f"  {s}: {s}.wav" for s in sources]
            lines += ["mixture: mixture.wav", "stem_ids:", "  mixture: 0"]
            lines += [f"  {s}: {i + 1}" for i, s in enumerate(sources)]
            lines += ["targets:"]
            lines += [f"  {s}:\n    {s}: 1" for s in sources]
            setup_file = (Path(cfg.out) / "musdb_setup.yaml").resolve()  # musdb joins a relative path to root
            setup_file.parent.mkdir(parents=True, exist_ok=True)
            _write_text(setup_file, "\n".join(lines) + "\n")
    return musdb.DB(root=str(cfg.root), is_wav=cfg.is_wav, subsets=cfg.subset,
                    setup_file=None if setup_file is None else str(setup_file))


def default_targets(db) -> list[str]:
    """The four MUSDB stems, or a custom stem folder's own sources."""
    known = list(db.targets_names)
    return list(MUSDB_TARGETS) if set(MUSDB_TARGETS) <= set(known) else known


def nmf_path(cfg: EvalConfig) -> Path:
    return Path(cfg.out) / "nmf.pt"


def fit_nmf(cfg: EvalConfig, sources: list[str], crops_per_source: int = 64, crop_seconds: float = 4.0):
    """Learn ``cfg.nmf_rank`` KL-NMF templates per stem from isolated stems of the *train*
    subset (one crop of ``crop_seconds`` from each of up to ``crops_per_source`` tracks,
    channel mean, chosen with ``cfg.seed``; near-silent crops skipped) and store them in
    ``OUT/nmf.pt``. The test references are never read."""
    import dataclasses

    from priors.data import folder_mix_scale

    from .baselines import NMFSeparator

    db = open_db(dataclasses.replace(cfg, subset="train"))
    if len(db) == 0:
        raise PriorsepError(f"{cfg.root}/train: no training tracks to learn NMF templates from")
    rng = np.random.default_rng(cfg.seed)
    rate = int(db.tracks[0].rate)
    n = int(crop_seconds * rate)
    isolated = {s: [] for s in sources}
    order = rng.permutation(len(db))[:crops_per_source]
    for i in order:
        track = db.tracks[int(i)]
        load_track(track)
        for s in sources:
            audio = np.asarray(track.sources[s].audio, dtype=np.float64).mean(1)
            start = int(rng.integers(0, max(1, len(audio) - n + 1)))
            crop = audio[start:start + n]  # the whole track when shorter
            if np.sqrt(np.mean(crop**2)) > 1e-3:
                isolated[s].append(torch.from_numpy(crop))
        release_track(track)
    empty = [s for s in sources if not isolated[s]]
    if empty:
        raise PriorsepError(f"no audible {crop_seconds:g} s training crop for {', '.join(empty)}")
    sep = NMFSeparator(sources, rate, folder_mix_scale(cfg.root), rank=cfg.nmf_rank, seed=cfg.seed)
    sep.fit([torch.cat(isolated[s])[None] for s in sources])  # crops end to end: (1, time) per stem
    path = nmf_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"sources": sources, "sample_rate": rate, "rank": cfg.nmf_rank, "templates": sep.templates,
                "crops": {s: len(isolated[s]) for s in sources}}, tmp)
    os.replace(tmp, path)
    return sep


def build_separator(cfg: EvalConfig, device: str | None = None):
    """The :class:`separation.interface.Separator` behind ``cfg`` (None for mix / irm)."""
    from priors.data import folder_mix_scale

    device = device or cfg.device
    if cfg.model:
        from .checkpoints import load_separator

        return load_separator(cfg.model, device, precision=cfg.precision)
    if cfg.langevin:
        from priors.checkpoint import load_priors

        from .langevin import LangevinSeparator

        priors, metas = load_priors(cfg.langevin, device)
        return LangevinSeparator(priors, [m["source"] for m in metas], int(metas[0]["sample_rate"]),
                                 folder_mix_scale(cfg.root), n_levels=cfg.langevin_levels,
                                 steps_per_level=cfg.langevin_steps, seed=cfg.seed)
    if cfg.baseline == "nmf":
        from .baselines import NMFSeparator

        stored = torch.load(nmf_path(cfg), map_location="cpu")
        sep = NMFSeparator(stored["sources"], stored["sample_rate"], folder_mix_scale(cfg.root),
                           rank=stored["rank"], seed=cfg.seed)
        sep.templates = stored["templates"]
        return sep
    return None


class TrackWorker:
    """Separates and scores one track by index (in the main process or a pool worker)."""

    def __init__(self, cfg: EvalConfig):
        self.cfg = cfg
        self.db = open_db(cfg)
        self.separator = build_separator(cfg)

    def estimates(self, track, index: int) -> dict[str, np.ndarray]:
        """Target estimates {name: (time, channels) float64} for one track."""
        cfg = self.cfg
        mixture = load_track(track, cfg.max_seconds)
        torch.manual_seed(cfg.seed + index)
        if self.separator is not None:
            from .apply import separate_array

            kwargs = {"chunk_seconds": cfg.chunk_seconds} if cfg.chunk_seconds else {}
            est = separate_array(self.separator, mixture.T.astype(np.float32), int(track.rate),
                                 batch_size=cfg.batch_size, progress=False, **kwargs)
            scale = float(getattr(self.separator, "mix_scale", 1.0))
            return {name: scale * est[k].T.astype(np.float64) for k, name in enumerate(self.separator.sources)
                    if name in cfg.targets}
        if cfg.baseline == "mix":
            return {t: mixture / len(cfg.targets) for t in cfg.targets}
        if cfg.baseline == "irm":
            names = list(track.sources)
            refs = np.stack([np.asarray(track.sources[n].audio).T for n in names])
            est = dict(zip(names, ideal_ratio_mask(mixture.T, refs)))
            return {t: sum(s.gain * est[s.name].T.astype(np.float64) for s in track.targets[t].sources)
                    for t in cfg.targets}
        raise ValueError(f"unknown baseline {cfg.baseline!r}")

    def __call__(self, index: int) -> int:
        """Score track ``index`` and write its JSON (atomically); returns the index."""
        track = self.db[index]
        try:
            return self._score(track, index)
        finally:  # a worker goes through many tracks
            release_track(track)

    def _score(self, track, index: int) -> int:
        from threadpoolctl import threadpool_limits

        cfg = self.cfg
        estimates = self.estimates(track, index)
        estimates = {t: estimates[t] for t in cfg.targets}
        # one BLAS thread for the scores, whatever the number of workers: BSSEval's least
        # squares then round alike in the main process and in pool workers (identical JSON)
        with threadpool_limits(1, user_api="blas"):
            return self._write_scores(track, index, estimates)

    def _write_scores(self, track, index: int, estimates: dict[str, np.ndarray]) -> int:
        cfg = self.cfg
        if not cfg.fast:
            store = score_museval(track, estimates)
            _write_text(result_path(cfg.out, track.subset, track.name, False), store.json)
            return index
        refs = np.stack([_target_audio(track, t) for t in cfg.targets])
        store = _fast_store(track.name, refs, np.stack([estimates[t] for t in cfg.targets]), cfg.targets,
                            int(track.rate))
        if index == 0:  # agreement with museval on the first track
            reference = store_medians(json.loads(score_museval(track, estimates).json))
            store["museval_medians"] = {t: _nan_to_none(reference.get(t, np.nan)) for t in cfg.targets}
        _write_text(result_path(cfg.out, track.subset, track.name, True), json.dumps(store, indent=1))
        return index


_WORKER: TrackWorker | None = None  # set only inside pool worker processes


def _init_pool_worker(cfg: EvalConfig, threads: int) -> None:
    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = TrackWorker(cfg)


def _pool_task(index: int) -> int:
    return _WORKER(index)


# ---------------------------------------------------------------------------- the run
def resolve_targets(db, model_sources: list[str] | None, requested: list[str] | None) -> list[str]:
    """Targets to score: the model's sources (or the four MUSDB stems for a baseline),
    restricted to ``requested``. One-line :class:`PriorsepError` on a mismatch."""
    known = list(db.targets_names)
    if model_sources is not None:
        unknown = [s for s in model_sources if s not in known]
        if unknown:
            raise PriorsepError(f"model source(s) {', '.join(unknown)} are not MUSDB targets ({', '.join(known)})")
    targets = list(model_sources) if model_sources is not None else default_targets(db)
    if requested:
        allowed = targets if model_sources is not None else known
        missing = [t for t in requested if t not in allowed]
        if missing:
            where = "the model's sources" if model_sources is not None else "MUSDB targets"
            raise PriorsepError(f"target(s) {', '.join(missing)} not among {where} ({', '.join(allowed)})")
        targets = list(dict.fromkeys(requested))
    for track in db.tracks:
        absent = [t for t in targets if t not in track.targets]
        if absent:
            raise PriorsepError(f"{track.path}: track has no stem for {', '.join(absent)}")
    return targets


def _settings(cfg: EvalConfig) -> dict:
    """What a stored per-track score depends on (a rerun with other settings is refused)."""
    from priors.checkpoint import file_hash

    settings = {"method": cfg.baseline and f"baseline {cfg.baseline}", "targets": list(cfg.targets),
                "subset": cfg.subset, "chunk_seconds": cfg.chunk_seconds}
    if cfg.max_seconds is not None:
        settings["max_seconds"] = cfg.max_seconds
    if cfg.model:
        settings["method"] = "model"
        settings["model_hash"] = file_hash(cfg.model)
        if cfg.precision != "fp32":  # (absent for fp32: results stored before the option stay valid)
            settings["precision"] = cfg.precision
    elif cfg.langevin:
        from priors.checkpoint import prior_files

        settings["method"] = "langevin"
        settings["priors"] = {f.stem: file_hash(f) for f in prior_files(cfg.langevin, None)}
        settings["langevin"] = {"levels": cfg.langevin_levels, "steps": cfg.langevin_steps, "seed": cfg.seed}
    elif cfg.baseline == "nmf":
        settings["nmf"] = {"rank": cfg.nmf_rank, "seed": cfg.seed}
    return settings


def _check_settings(out: Path, settings: dict, force: bool) -> None:
    path = out / "settings.json"
    if path.is_file() and not force:
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        if old != settings:
            raise PriorsepError(f"{out}: holds results of another evaluation ({path}); "
                                "use another --out or --force to recompute")
    _write_text(path, json.dumps(settings, indent=1) + "\n")


def evaluate(cfg: EvalConfig, workers: int = 1, progress: bool = True, force: bool = False) -> dict:
    """Score every track of ``cfg.subset`` (resuming from stored JSONs unless ``force``) and
    write ``OUT/summary.json``: ``{"targets": {target: median SDR dB or null}, "n_tracks": N,
    "seconds": wall time, ...}``. Returns the summary."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    root = Path(cfg.root)
    if not root.is_dir():
        raise PriorsepError(f"{root}: MUSDB folder not found")
    db = open_db(cfg)
    if len(db) == 0:
        layout = "<track>/mixture.wav folders" if cfg.is_wav else "*.stem.mp4 files (WAV folders need --is-wav)"
        raise PriorsepError(f"{root / cfg.subset}: no MUSDB tracks ({layout})")
    model_sources = None
    if cfg.model or cfg.langevin:
        model_sources = list(build_separator(cfg, "cpu").sources)
    cfg.targets = resolve_targets(db, model_sources, cfg.targets)
    out = Path(cfg.out)
    _check_settings(out, _settings(cfg), force)
    if cfg.baseline == "nmf" and (force or not nmf_path(cfg).is_file()):
        fit_nmf(cfg, default_targets(db))
    tracks = db.tracks if cfg.max_tracks is None else db.tracks[:max(1, cfg.max_tracks)]

    def done(i: int, track) -> bool:
        data = None if force else read_result(result_path(out, track.subset, track.name, cfg.fast))
        return data is not None and (not cfg.fast or i > 0 or "museval_medians" in data)

    names = [t.name for t in tracks]
    pending = [i for i, t in enumerate(tracks) if not done(i, t)]
    with tqdm(total=len(names), initial=len(names) - len(pending), unit="track", desc="evaluating",
              disable=not progress) as bar:
        if pending and workers <= 1:
            worker = TrackWorker(cfg)
            for i in pending:
                worker(i)
                bar.update(1)
        elif pending:
            _run_pool(cfg, pending, workers, bar)

    per_track = {}
    for t in tracks:
        data = read_result(result_path(out, t.subset, t.name, cfg.fast))
        if data is None:
            raise PriorsepError(f"{result_path(out, t.subset, t.name, cfg.fast)}: scores missing after evaluation")
        per_track[t.name] = store_medians(data)
    summary = {
        "targets": aggregate(per_track, cfg.targets),
        "n_tracks": len(per_track),
        "seconds": round(time.perf_counter() - start, 3),
        "method": cfg.method,
        "subset": cfg.subset,
        "metric": ("framewise SDR, no distortion filters (--fast)" if cfg.fast
                   else "museval BSSEval v4 image SDR"),
        "aggregation": f"median over {WINDOW_SECONDS:g} s frames (NaN frames skipped), then median over tracks",
        "tracks": {n: {t: _nan_to_none(m.get(t, np.nan)) for t in cfg.targets} for n, m in per_track.items()},
    }
    if cfg.fast:
        first = tracks[0]
        data = read_result(result_path(out, first.subset, first.name, True))
        reference = data.get("museval_medians", {})
        fast = summary["tracks"][first.name]
        summary["fast_vs_museval"] = {
            "track": first.name, "museval": reference, "fast": fast,
            "difference_db": {t: (None if fast.get(t) is None or reference.get(t) is None
                                  else round(fast[t] - reference[t], 5)) for t in cfg.targets}}
    _write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


def _run_pool(cfg: EvalConfig, pending: list[int], workers: int, bar) -> None:
    """Score ``pending`` tracks in ``workers`` spawned processes, each with its share of
    the CPU threads (torch and BLAS), so that processes do not oversubscribe the cores."""
    import multiprocessing as mp

    workers = min(workers, len(pending))
    threads = max(1, (os.cpu_count() or 1) // workers)
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    for n in names:
        os.environ.setdefault(n, str(threads))  # inherited by the spawned interpreters
    try:
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_pool_worker, initargs=(cfg, threads)) as pool:
            for _ in pool.imap_unordered(_pool_task, pending):
                bar.update(1)
            pool.close()
            pool.join()
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def format_table(summary: dict) -> str:
    """A Markdown table of the per-target medians (dB), then tracks and time."""
    lines = ["| target | SDR (dB) |", "|---|---|"]
    values = []
    for t, v in summary["targets"].items():
        lines.append(f"| {t} | {'n/a' if v is None else f'{v:.2f}'} |")
        if v is not None:
            values.append(v)
    if values:
        lines.append(f"| mean | {np.mean(values):.2f} |")
    text = "\n".join(lines)
    text += f"\n{summary['n_tracks']} tracks ({summary['subset']}), {summary['method']}, {summary['metric']}, " \
            f"{summary['seconds']:.1f} s"
    if "fast_vs_museval" in summary:
        agreement = summary["fast_vs_museval"]
        diffs = ", ".join(f"{t} {'n/a' if d is None else f'{d:+.2f}'}" for t, d in agreement["difference_db"].items())
        text += f"\nfast − museval on {agreement['track']} (dB): {diffs}"
    return text
