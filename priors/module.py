"""SourcePrior: the Lightning training job for one source's prior (WaveNet or flow)."""
from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch import nn

from .checkpoint import copy_prior_weights, describe_prior
from .noise import NoiseSchedule



def warmup_cosine(step: int, warmup_steps: int, total: int, floor: float = 0.05) -> float:
    """Learning-rate factor at ``step``: linear warm-up over ``warmup_steps``, then a cosine from
    1 to ``floor`` at ``total`` steps (held there after); no decay when ``total`` <= 0."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    if total <= 0:
        return warm
    progress = min(1.0, step / total)
    return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

class SourcePrior(pl.LightningModule):
    """Maximum-likelihood training of any prior with ``log_prob(x, sigma) -> (batch, time)``.

    Trains on isolated crops (batch, time) of ONE source. Each example gets a noise level σ
    from ``noise`` and is replaced by x + σ·ε; the prior is conditioned on σ, so it learns
    the density of the source *at that noise level* and can score noisy estimates later.
    Logged: ``train/nll`` and ``val/nll`` in nats per sample (negative log-density of the
    continuous waveform), ``*/bits`` the same in bits; validation is at σ = 0.

    Args:
        model: the prior network (injected, e.g. ``priors.wavenet.WaveNet``).
        source: the source's name (recorded in checkpoints).
        sample_rate: Hz (recorded in checkpoints).
        sigma_min, sigma_max, p_clean: the σ distribution (see :class:`priors.noise.NoiseSchedule`).
        lr, weight_decay, warmup_steps, max_lr_steps: Adam with linear warm-up and cosine decay.
        media_seconds: after each validation, a sample this long (σ = 0) is drawn and logged
            as audio and spectrogram to W&B (0 turns it off; nothing happens without W&B).
        init_weights: optional prior checkpoint (``.pt`` or ``.ckpt``) to fine-tune from: its
            weights are copied into ``model``, which must have the same class and arguments.
        spectrum_match_weight: > 0 adds, with this weight, a spectrum-matching term to the NLL
            (models with ``draw_features`` and ``features``: the frame flow). Each step draws
            ``spectrum_match_samples`` crops at ``spectrum_match_temperature`` (σ = 0) through
            the differentiable inverse pass and penalises the squared log-ratios of their
            long-term average power per mel band, and of their total power, to the training batch's
            (:meth:`spectrum_match`, logged as ``train/spectrum_match``): maximum likelihood
            alone leaves the frame flows' dreams 2-3 dB too quiet (docs/results/chorales_frame_flow.md).
    """

    def __init__(self, model: nn.Module, source: str, sample_rate: int = 14_700,
                 sigma_min: float = 0.01, sigma_max: float = 0.5, p_clean: float = 0.25, lr: float = 1e-3, weight_decay: float = 0.0,
                 warmup_steps: int = 200, max_lr_steps: int = 0, grad_clip_norm: float | None = None,
                 media_seconds: float = 0.25, init_weights: str | None = None, spectrum_match_weight: float = 0.0,
                 spectrum_match_samples: int = 8, spectrum_match_temperature: float = 0.7):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        if spectrum_match_weight > 0 and not (hasattr(model, "draw_features") and hasattr(model, "features")):
            raise ValueError(f"spectrum_match_weight needs a model with draw_features and features "
                             f"(a frame flow), not {type(model).__name__}")
        if init_weights:
            copy_prior_weights(init_weights, model)
        self.noise = NoiseSchedule(sigma_min, sigma_max, p_clean)

    def nll(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Mean negative log-density (nats per sample) of noisy crops x at levels σ (batch,)."""
        return -self.model.log_prob(x, sigma).mean()

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        sigma = self.noise.sample(batch.shape[0], batch.device)
        noisy = batch + sigma.unsqueeze(-1) * torch.randn_like(batch)
        loss = self.nll(noisy, sigma)
        self.log("train/nll", loss, prog_bar=True)
        self.log("train/bits", loss / math.log(2))
        self.log("train/sigma_mean", sigma.mean())
        if self.hparams.spectrum_match_weight > 0:
            match = self.spectrum_match(batch)
            self.log("train/spectrum_match", match)
            loss = loss + self.hparams.spectrum_match_weight * match
        return loss

    def spectrum_match(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean over mel bands of (log P_dream − log P_real)², plus the same squared log-ratio
        of the total power Σ_b P_b: P the long-term average power per band
        (:meth:`priors.spectral.LogMel.long_term_power`) of crops drawn from the model (with
        gradients) and of the clean training crops ``batch`` (batch, time); floor² is added to
        each band so that silent bands compare as equal. The band term holds the spectral shape
        (each band counts alike, the quiet high ones too); the total term holds the level, which
        a few loud bands carry and the band term alone hardly constrains."""
        h, features = self.hparams, self.model.features
        with torch.no_grad():
            real = features(batch)
        n = h.spectrum_match_samples
        dream = self.model.draw_features(n, real.shape[-1], torch.zeros(n, device=batch.device),
                                         h.spectrum_match_temperature, batch.device)
        eps = features.floor ** 2
        dream_power, real_power = features.long_term_power(dream) + eps, features.long_term_power(real) + eps
        band = (dream_power.log() - real_power.log()).pow(2).mean()
        return band + (dream_power.sum().log() - real_power.sum().log()).pow(2)

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        loss = self.nll(batch, torch.zeros(batch.shape[0], device=batch.device))
        self.log("val/nll", loss, prog_bar=True, sync_dist=True)
        self.log("val/bits", loss / math.log(2), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        from .tracking import log_waveforms, wandb_logger

        if self.hparams.media_seconds <= 0 or wandb_logger(self) is None or not hasattr(self.model, "generate"):
            return
        n = int(self.hparams.media_seconds * self.hparams.sample_rate)
        multiple = getattr(self.model, "length_multiple", 1)
        n = max(multiple, n - n % multiple)
        with torch.no_grad():
            x = self.model.generate(1, n, sigma=0.0, device=self.device)
        log_waveforms(self, "val/sample", {f"{self.hparams.source} sample": x[0]}, self.hparams.sample_rate)

    def configure_optimizers(self):
        h = self.hparams
        opt = torch.optim.Adam(self.model.parameters(), lr=h.lr, weight_decay=h.weight_decay)
        total = h.max_lr_steps or (self.trainer.max_steps if self.trainer and self.trainer.max_steps > 0 else 0)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, h.warmup_steps, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.hparams.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.hparams.grad_clip_norm)

    def describe(self) -> dict:
        """The self-description stored with every checkpoint (source, rate, class, args, σ range)."""
        return describe_prior(self.model, self.hparams.source, self.hparams.sample_rate, self.noise)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["priorsep"] = self.describe()
