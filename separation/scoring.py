"""Scores of one track's estimates: museval's BSSEval v4 (image SDR, 1 s windows and hop,
512-tap distortion filters over the whole track) and the fast framewise SDR (plain SDR per
1 s frame, no distortion filters), both as museval-format score dicts (``{"targets": [{"name",
"frames": [{"time", "duration", "metrics": {"SDR", …}}]}]}``).

Frames where a reference or an estimate is silent are NaN (left out of the medians, see
:mod:`separation.result_store`). museval is imported lazily (musdb needs ffmpeg at import).
Audio arrays follow musdb: (time, channels) float64 at the track's rate.
"""
from __future__ import annotations

import numpy as np

WINDOW_SECONDS = 1.0


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


def fast_scores(track_name: str, references: np.ndarray, estimates: np.ndarray, names: list[str], rate: int) -> dict:
    """:func:`framewise_sdr` over 1 s frames as a museval-format score dict (SDR only).
    references, estimates (n_targets, time, channels); a reference silent over the whole
    track gets NaN frames, as :func:`score_museval` gives it."""
    win = int(WINDOW_SECONDS * rate)
    live = references.reshape(len(names), -1).any(axis=1)
    sdr = np.full((len(names), len(frame_slices(references.shape[1], win, win))), np.nan)
    if live.any():
        sdr[live] = framewise_sdr(references[live], estimates[live], win, win)
    return {"targets": [{"name": name, "frames": [
        {"time": t * WINDOW_SECONDS, "duration": WINDOW_SECONDS,
         "metrics": {"SDR": round(float(v), 5) if np.isfinite(v) else float("nan")}} for t, v in enumerate(row)]}
        for name, row in zip(names, sdr)], "metric": "framewise SDR (priorsep fast)", "track": track_name}


def target_audio(track, name: str) -> np.ndarray:
    """A musdb track's reference for target ``name``, (time, channels) float64."""
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
    silent = {t for t in names if not target_audio(track, t).any()}
    if not silent and len(names) >= 2:
        return museval.eval_mus_track(track, estimates, output_dir=None, win=WINDOW_SECONDS, hop=WINDOW_SECONDS)
    rate = int(track.rate)
    win = int(WINDOW_SECONDS * rate)
    store = TrackStore(win=WINDOW_SECONDS, hop=WINDOW_SECONDS, track_name=track.name)
    has_acc = "vocals" in names and "accompaniment" in names
    groups = [([t for t in names if not (has_acc and t == "accompaniment")], {"vocals"} if has_acc else set())]
    if has_acc:
        groups.append((["vocals", "accompaniment"], set()))
    length = target_audio(track, names[0]).shape[0]
    for group, skip in groups:
        live = [t for t in group if t not in silent]
        if not live:
            continue
        sdr, isr, sir, sar = museval.evaluate([target_audio(track, t) for t in live], [estimates[t] for t in live],
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
