"""The results folder of ``priorsep evaluate``: one museval-format JSON per track
(``OUT/<subset>/<track>.json``, ``<track>.fast.json`` for the fast metric), ``settings.json``
(what the stored scores depend on: a rerun with other settings is refused) and
``summary.json``; the medians (over frames, then over tracks) and the Markdown table.

Frames with a NaN or null SDR are left out of the medians; a target with no finite frame in
any track is ``null`` in the summary.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import PriorsepError
from .scoring import WINDOW_SECONDS


def result_path(out: str | Path, subset: str, track_name: str, fast: bool) -> Path:
    """Where a track's scores live: museval's layout ``OUT/<subset>/<track>.json``
    (``<track>.fast.json`` for the fast metric)."""
    return Path(out) / subset / f"{track_name}{'.fast' if fast else ''}.json"


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically (temp file, then rename), creating the folder."""
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


def check_settings(out: Path, settings: dict, force: bool) -> None:
    """Refuse (PriorsepError) a results folder holding scores made with other ``settings``,
    unless ``force``; then record ``settings`` in ``OUT/settings.json``."""
    path = Path(out) / "settings.json"
    if path.is_file() and not force:
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        if old != settings:
            raise PriorsepError(f"{out}: holds results of another evaluation ({path}); "
                                "use another --out or --force to recompute")
    write_text(path, json.dumps(settings, indent=1) + "\n")


def nan_to_none(x: float) -> float | None:
    """5 decimals as museval stores them; None (JSON null) for NaN."""
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


def summarize(per_track: dict[str, dict[str, float]], targets: list[str], *, seconds: float, method: str,
              subset: str, fast: bool, first_track: str | None = None, first_scores: dict | None = None) -> dict:
    """The ``summary.json`` of a run: per-target medians, per-track medians and, for the fast
    metric, its agreement with museval on ``first_track`` (``first_scores["museval_medians"]``)."""
    summary = {
        "targets": aggregate(per_track, targets),
        "n_tracks": len(per_track),
        "seconds": seconds,
        "method": method,
        "subset": subset,
        "metric": ("framewise SDR, no distortion filters (--fast)" if fast else "museval BSSEval v4 image SDR"),
        "aggregation": f"median over {WINDOW_SECONDS:g} s frames (NaN frames skipped), then median over tracks",
        "tracks": {n: {t: nan_to_none(m.get(t, np.nan)) for t in targets} for n, m in per_track.items()},
    }
    if fast:
        reference = (first_scores or {}).get("museval_medians", {})
        got = summary["tracks"][first_track]
        summary["fast_vs_museval"] = {
            "track": first_track, "museval": reference, "fast": got,
            "difference_db": {t: (None if got.get(t) is None or reference.get(t) is None
                                  else round(got[t] - reference[t], 5)) for t in targets}}
    return summary


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
