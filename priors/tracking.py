"""Experiment tracking: media and tables for Weights & Biases, through Lightning's logger.

Every function is a no-op unless a :class:`pytorch_lightning.loggers.WandbLogger` is attached
and this is rank 0, so training with ``--trainer.logger false`` (or TensorBoard/CSV) and
multi-process runs work unchanged. Runs are offline by default (``WANDB_MODE=offline``):
they land in ``<save_dir>/wandb/offline-run-*`` and ``wandb sync`` uploads them later.
"""
from __future__ import annotations

import numpy as np
import torch


def wandb_logger(module):
    """The module's WandbLogger on rank 0, else None."""
    trainer = getattr(module, "_trainer", None)
    if trainer is None or not trainer.is_global_zero:
        return None
    from pytorch_lightning.loggers import WandbLogger

    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)


def figure_to_array(fig) -> np.ndarray:
    """Render a matplotlib figure to an RGB uint8 array (height, width, 3) and close it."""
    from .figures import pyplot

    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    pyplot().close(fig)
    return rgb


def log_waveforms(module, key: str, signals: dict[str, torch.Tensor], sample_rate: int) -> None:
    """Log named mono signals (time,) as ``<key>/audio`` (wandb.Audio, one per name) and
    their spectrograms as one image ``<key>/spectrogram``."""
    logger = wandb_logger(module)
    if logger is None:
        return
    from .figures import spectrogram_figure

    arrays = {n: np.clip(s.detach().float().cpu().numpy(), -1, 1) for n, s in signals.items()}
    step = module.global_step
    logger.log_audio(f"{key}/audio", audios=list(arrays.values()), step=step,
                     sample_rate=[sample_rate] * len(arrays), caption=list(arrays))
    logger.log_image(f"{key}/spectrogram", images=[figure_to_array(spectrogram_figure(arrays, sample_rate))],
                     step=step, caption=[", ".join(arrays)])


def log_cross_likelihood(priors: list[str], columns: list[str], sigmas, loglik, mode: str = "offline",
                         directory: str = "runs", config: dict | None = None) -> str:
    """Log loglik[σ][prior][column] (nats/sample) to a new W&B run as one ``wandb.Table``
    (rows: σ, prior, column, value) and one heatmap image per σ. Returns the run's directory."""
    import os

    import wandb

    from .figures import cross_likelihood_figure

    os.makedirs(directory, exist_ok=True)
    run = wandb.init(project="priorsep", job_type="diagnose", dir=directory, mode=mode, config=config or {})
    try:
        rows = [[float(s), p, c, float(loglik[i][j][k])] for i, s in enumerate(sigmas)
                for j, p in enumerate(priors) for k, c in enumerate(columns)]
        run.log({"diagnose/cross_likelihood": wandb.Table(columns=["sigma", "prior", "data", "loglik"], data=rows)})
        for i, s in enumerate(sigmas):
            fig = cross_likelihood_figure(priors, columns, [s], [loglik[i]])
            run.log({f"diagnose/heatmap_sigma_{s:g}": wandb.Image(figure_to_array(fig))})
        return run.dir
    finally:
        run.finish()
