"""MUSDB evaluation runner: separate every track of a subset at full length and score it.

Scores (:mod:`separation.scoring`) are BSSEval v4 image SDR from museval (1 s windows and
hop, 512-tap distortion filters over the whole track), one JSON per track in museval's own
format at ``OUT/<subset>/<track>.json`` (:mod:`separation.result_store`); the summary is the
median over frames, then the median over tracks, per target. Frames where museval finds a
silent reference or estimate are NaN and are left out of the medians; a target with no
finite frame in any track is ``null``. A track whose JSON already exists is read back, not
recomputed (resumable runs).

``fast=True`` replaces museval by :func:`separation.scoring.framewise_sdr` (plain SDR per 1 s
frame, no distortion filters, the same medians), stored as ``<track>.fast.json``; the first
track is also scored with museval and the two medians are reported side by side.

Methods come from :mod:`separation.methods`: a separator checkpoint (``model``: its sources
must be MUSDB target names; estimates are rescaled by its ``mix_scale`` into mixture units,
since MUSDB mixtures are the plain sum of the stems), annealed Langevin with a folder of
frozen priors, ``nmf`` (KL-NMF templates per stem learned from the isolated stems of the
train subset, fitted once and stored as ``OUT/nmf.pt``), ``mix`` (the ``mixture`` method:
every target = mixture / number of targets) or ``irm`` (the oracle ideal ratio mask
|S_j|² / Σ|S_i|² from the references: context, not a method). A method that works at any
rate (mix, irm) is applied to the whole track, channels as the batch; the others through
:func:`separation.apply.separate_array` (resampled, chunked). ``max_tracks`` scores the
first N tracks only and ``max_seconds`` the first S seconds of each, for methods too slow
for the whole set (Langevin).

Audio arrays in this module follow musdb: (time, channels) float64 at the track's rate.
musdb and museval are imported lazily (they need ffmpeg at import).
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
from .interface import needs_references
from .result_store import (check_settings, nan_to_none, read_result, result_path, store_medians, summarize,
                           write_text)
from .scoring import fast_scores, score_museval, target_audio

MUSDB_TARGETS = ("vocals", "drums", "bass", "other")


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
    nmf_fft: int = 1024  # NMF STFT size (hop = n_fft / 4)
    nmf_power: float = 1.0  # NMF mask exponent (1: magnitude ratio, 2: Wiener)
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
            write_text(setup_file, "\n".join(lines) + "\n")
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
    sep = NMFSeparator(sources, rate, folder_mix_scale(cfg.root), rank=cfg.nmf_rank, seed=cfg.seed,
                       n_fft=cfg.nmf_fft, hop=cfg.nmf_fft // 4, power=cfg.nmf_power)
    sep.fit([torch.cat(isolated[s])[None] for s in sources])  # crops end to end: (1, time) per stem
    sep.save(nmf_path(cfg), crops={s: len(isolated[s]) for s in sources})
    return sep


def build_separator(cfg: EvalConfig, device: str | None = None, stems: list[str] | None = None):
    """The separator behind ``cfg``, from :mod:`separation.methods`: ``model``, ``langevin``,
    or the ``--baseline`` (``mix`` -> ``mixture`` over the targets, ``irm`` over ``stems``
    (every stem of a track), ``nmf`` from the templates in ``OUT/nmf.pt``). Mixture units:
    the mixture and the IRM get mix_scale 1."""
    from priors.data import folder_mix_scale

    from .methods import MethodContext, build_separator as build

    device = device or cfg.device
    if cfg.model:
        return build("model", MethodContext(checkpoint=cfg.model, device=device, precision=cfg.precision))
    if cfg.langevin:
        return build("langevin", MethodContext(
            priors=cfg.langevin, mix_scale=folder_mix_scale(cfg.root), device=device, seed=cfg.seed,
            langevin={"n_levels": cfg.langevin_levels, "steps_per_level": cfg.langevin_steps}))
    if cfg.baseline == "nmf":
        return build("nmf", MethodContext(mix_scale=folder_mix_scale(cfg.root), device=device, seed=cfg.seed,
                                          nmf_rank=cfg.nmf_rank, nmf_store=nmf_path(cfg)))
    if cfg.baseline == "mix":
        return build("mixture", MethodContext(sources=list(cfg.targets), device=device, seed=cfg.seed))
    if cfg.baseline == "irm":
        return build("irm", MethodContext(sources=stems, device=device, seed=cfg.seed))
    raise ValueError(f"unknown baseline {cfg.baseline!r}")


class TrackWorker:
    """Separates and scores one track by index (in the main process or a pool worker)."""

    def __init__(self, cfg: EvalConfig):
        self.cfg = cfg
        self.db = open_db(cfg)
        stems = list(self.db.tracks[0].sources) if len(self.db) else None
        self.separator = build_separator(cfg, stems=stems)

    def estimates(self, track, index: int) -> dict[str, np.ndarray]:
        """Target estimates {name: (time, channels) float64} for one track."""
        cfg = self.cfg
        sep = self.separator
        mixture = load_track(track, cfg.max_seconds)
        torch.manual_seed(cfg.seed + index)
        if needs_references(sep):  # an oracle: every stem from its reference, targets mixed from the stems
            names = list(track.sources)
            refs = np.stack([np.asarray(track.sources[n].audio).T for n in names])  # (stems, channels, time)
            est = sep(torch.from_numpy(mixture.T), torch.from_numpy(refs).transpose(0, 1)).transpose(0, 1).numpy()
            est = dict(zip(names, est))
            return {t: sum(s.gain * est[s.name].T.astype(np.float64) for s in track.targets[t].sources)
                    for t in cfg.targets}
        if sep.sample_rate is None:  # any rate and length: the whole track, channels as the batch
            with torch.no_grad():
                est = sep(torch.from_numpy(mixture.T)).transpose(0, 1).numpy()  # (sources, channels, time)
        else:
            from .apply import separate_array

            kwargs = {"chunk_seconds": cfg.chunk_seconds} if cfg.chunk_seconds else {}
            est = separate_array(sep, mixture.T.astype(np.float32), int(track.rate),
                                 batch_size=cfg.batch_size, progress=False, **kwargs)
        scale = float(getattr(sep, "mix_scale", 1.0))
        return {name: scale * est[k].T.astype(np.float64) for k, name in enumerate(sep.sources)
                if name in cfg.targets}

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
            write_text(result_path(cfg.out, track.subset, track.name, False), store.json)
            return index
        refs = np.stack([target_audio(track, t) for t in cfg.targets])
        store = fast_scores(track.name, refs, np.stack([estimates[t] for t in cfg.targets]), cfg.targets,
                            int(track.rate))
        if index == 0:  # agreement with museval on the first track
            reference = store_medians(json.loads(score_museval(track, estimates).json))
            store["museval_medians"] = {t: nan_to_none(reference.get(t, np.nan)) for t in cfg.targets}
        write_text(result_path(cfg.out, track.subset, track.name, True), json.dumps(store, indent=1))
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


def run_settings(cfg: EvalConfig) -> dict:
    """What a stored per-track score depends on (a rerun with other settings is refused:
    :func:`separation.result_store.check_settings`)."""
    from priors.checkpoint import file_hash

    settings = {"method": cfg.baseline and f"baseline {cfg.baseline}", "targets": list(cfg.targets),
                "subset": cfg.subset, "chunk_seconds": cfg.chunk_seconds}
    if cfg.max_seconds is not None:
        settings["max_seconds"] = cfg.max_seconds
    if cfg.model:
        settings["method"] = "model"
        from .models import resolve_model

        settings["model_hash"] = file_hash(resolve_model(cfg.model))
        if cfg.precision != "fp32":  # (absent for fp32: results stored before the option stay valid)
            settings["precision"] = cfg.precision
    elif cfg.langevin:
        from priors.checkpoint import prior_files

        settings["method"] = "langevin"
        settings["priors"] = {f.stem: file_hash(f) for f in prior_files(cfg.langevin, None)}
        settings["langevin"] = {"levels": cfg.langevin_levels, "steps": cfg.langevin_steps, "seed": cfg.seed}
    elif cfg.baseline == "nmf":
        settings["nmf"] = {"rank": cfg.nmf_rank, "seed": cfg.seed}
        if (cfg.nmf_fft, cfg.nmf_power) != (1024, 1.0):  # (absent for the defaults: older results stay valid)
            settings["nmf"].update(n_fft=cfg.nmf_fft, power=cfg.nmf_power)
    return settings


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
    check_settings(out, run_settings(cfg), force)
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
    first = tracks[0]
    summary = summarize(per_track, cfg.targets, seconds=round(time.perf_counter() - start, 3), method=cfg.method,
                        subset=cfg.subset, fast=cfg.fast, first_track=first.name,
                        first_scores=read_result(result_path(out, first.subset, first.name, True)) if cfg.fast else None)
    write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
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
