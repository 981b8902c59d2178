"""VariationalSeparator: trains q(s | m) with the priors frozen."""
from __future__ import annotations

import copy

import pytorch_lightning as pl
import torch
from torch import nn

from .elbo import elbo, gaussian_nll
from .encoder import project_to_mixture
from .losses import waveform_spectral_l1
from .metrics import si_sdr

#: losses of the pair-based objectives: Gaussian −log q (β-NLL weighted), or waveform + magnitude L1
PAIR_LOSSES = ("gaussian_nll", "l1_spectral")


class VariationalSeparator(pl.LightningModule):
    """The separator's training job. ``objective`` picks what the training batches are and
    what is minimised (see :class:`separation.data.SeparationDataModule`):

    * ``elbo`` — wake phase, unsupervised: batch = mixtures (batch, time);
      loss = −ELBO with the frozen priors (``separation.elbo.elbo``).
    * ``sleep`` — batch = (mixture, sources) dreamed from the priors; loss = −log q(s | m).
    * ``wake_sleep`` — batch = {"wake": mixtures, "sleep": dreamed pairs};
      loss = wake_weight · (−ELBO) + (−log q(s_dream | m_dream)).
    * ``remix`` — batch = real mixtures; an EMA teacher (initialised from ``init_from``)
      separates them, estimates are shuffled across the batch and re-mixed, and the encoder
      fits them (bootstrapped remixing, RemixIT): unsupervised self-training.
    * ``distil`` — batch = real mixtures; a frozen separator (``teacher``, a checkpoint of any
      encoder architecture) separates them and the encoder fits its estimates (knowledge
      distillation, e.g. into a cheaper encoder). Unsupervised when the teacher is.
    * ``supervised`` — batch = real pairs; loss = −log q(s | m): the reference upper bound.

    The priors (``priors_dir``) are loaded for ``elbo``/``wake_sleep``, put in eval mode,
    excluded from the optimiser and from gradient updates. Validation logs SI-SDR of the
    posterior mean on real held-out pairs (metrics only; the toy set's ``valid`` split). ``init_from``: start the encoder from
    a separator checkpoint or a named model (e.g. wake after sleep). ``beta_nll``: the pair losses' β-NLL
    weighting (1: the posterior mean gets the MSE gradient; 0: plain Gaussian NLL).
    ``score_rms``: the priors score gain-normalised estimates; ``posterior_std``: a fixed-variance
    posterior instead of the encoder's log_std (see ``separation.elbo.elbo``). ``teacher``: the
    separator checkpoint that ``distil`` fits. ``lr_decay``: cosine decay of the learning rate
    from ``lr`` to lr/20 over the trainer's ``max_steps``, or over ``lr_decay_steps`` when given (a
    run stopped part-way through a longer schedule; default: constant). ``pair_loss``: the
    loss of the pair-based objectives (sleep, remix, distil, supervised): ``gaussian_nll`` (−log q,
    the waveform encoder's) or ``l1_spectral`` (waveform + STFT-magnitude L1, the mask encoder's).
    """

    def __init__(self, encoder: nn.Module, objective: str = "elbo", priors_dir: str | None = "checkpoints/toy",
                 sources: list[str] | None = None, sample_rate: int = 14_700, mix_scale: float = 0.25,
                 beta: float = 1.0, prior_sigma: float = 0.0, mixture_std: float = 0.01, project: bool = True,
                 n_samples: int = 1, wake_weight: float = 1.0, lr: float = 1e-3, init_from: str | None = None,
                 teacher_ema: float = 0.99, beta_nll: float = 1.0,
                 score_rms: float | list[float] | None = None, posterior_std: float | None = None,
                 teacher: str | None = None, lr_decay: bool = False, pair_loss: str = "gaussian_nll",
                 lr_decay_steps: int | None = None):
        super().__init__()
        if pair_loss not in PAIR_LOSSES:
            raise ValueError(f"pair_loss must be one of {', '.join(PAIR_LOSSES)}, got {pair_loss!r}")
        self.save_hyperparameters(ignore=["encoder"])
        self.encoder = encoder
        self.sources = list(sources or ["sin", "square", "saw", "triangle"])
        self.prior_metas: list[dict] = []
        self._priors: list[nn.Module] = []
        if priors_dir and objective in ("elbo", "wake_sleep"):
            self.load_priors(priors_dir)
        elif priors_dir:
            self.record_priors(priors_dir)
        if init_from:  # a separator checkpoint or a named model (``priorsep models``)
            from .models import load_separator

            self.encoder.load_state_dict(load_separator(init_from).encoder.state_dict())
        # remix: a frozen EMA copy of the encoder labels real mixtures (not a sub-module: not saved)
        self._teacher: list[nn.Module] = []
        if objective == "remix":
            self._teacher = [copy.deepcopy(self.encoder).eval().requires_grad_(False)]
        # distil: a fixed separator (any architecture) labels real mixtures; not saved either
        self._distil_teacher: list[nn.Module] = []
        if objective == "distil":
            if not teacher:
                raise ValueError("objective 'distil' needs a teacher separator checkpoint (teacher=...)")
            from .checkpoints import load_separator

            self._distil_teacher = [load_separator(teacher, sources=self.sources, sample_rate=sample_rate,
                                                   priors_dir=priors_dir).requires_grad_(False)]

    # -- priors: frozen, not sub-modules (so they are neither optimised nor saved with the separator)
    def load_priors(self, priors_dir: str) -> None:
        from priors.checkpoint import load_priors
        from priors.noise import check_prior_sigma

        models, self.prior_metas = load_priors(priors_dir, sources=self.sources)
        check_prior_sigma(self.hparams.prior_sigma, self.prior_metas, "prior_sigma", priors_dir)
        for m in models:
            m.eval().requires_grad_(False)
        self._priors = models

    def record_priors(self, priors_dir: str) -> None:
        from pathlib import Path

        from priors.checkpoint import background_file, file_hash, prior_files

        if Path(priors_dir).is_dir():
            background = background_file(priors_dir)
            extra = {"background_hash": file_hash(background)} if background else {}
            self.prior_metas = [{"source": f.stem, "hash": file_hash(f), **extra} for f in prior_files(priors_dir, self.sources)]

    def on_fit_start(self) -> None:
        for m in self._priors + self._teacher + self._distil_teacher:
            m.to(self.device)

    # -- inference
    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """mix (batch, time) -> posterior mean (batch, K, time), projected onto the mixture if enabled."""
        mu, _ = self.encoder(mix)
        return project_to_mixture(mu, mix, self.hparams.mix_scale) if self.hparams.project else mu

    # -- objectives
    def wake_loss(self, mix: torch.Tensor) -> dict:
        h = self.hparams
        mu, log_std = self.encoder(mix)
        return elbo(mu, log_std, mix, self._priors, beta=h.beta, prior_sigma=h.prior_sigma,
                    mixture_std=h.mixture_std, mix_scale=h.mix_scale, project=h.project, n_samples=h.n_samples,
                    score_rms=h.score_rms, posterior_std=h.posterior_std)

    def pair_loss(self, mix: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
        """The loss of every pair-based objective: mix (batch, time), sources (batch, K, time)."""
        mu, log_std = self.encoder(mix)
        if self.hparams.pair_loss == "l1_spectral":
            return waveform_spectral_l1(mu, sources)
        return gaussian_nll(mu, log_std, sources, self.hparams.beta_nll)

    def remix_loss(self, mix: torch.Tensor) -> torch.Tensor:
        """Bootstrapped remixing on real mixtures only (RemixIT-style self-training).

        The teacher separates the batch, each source's estimates are shuffled across the
        batch and re-mixed, and the student fits the shuffled estimates from their new mixture.
        mix (batch, time). No reference source is involved."""
        h = self.hparams
        with torch.no_grad():
            mu, _ = self._teacher[0](mix)
            est = project_to_mixture(mu, mix, h.mix_scale)  # (B, K, T)
            b, k = est.shape[:2]
            perm = torch.stack([torch.randperm(b, device=mix.device) for _ in range(k)], 1)  # (B, K)
            targets = est[perm, torch.arange(k, device=mix.device)]
            remixed = h.mix_scale * targets.sum(1)
        return self.pair_loss(remixed, targets)

    def distil_loss(self, mix: torch.Tensor) -> torch.Tensor:
        """Knowledge distillation on real mixtures only: the frozen teacher's estimates
        (batch, K, time) are the targets of the encoder's posterior. mix (batch, time)."""
        with torch.no_grad():
            targets = self._distil_teacher[0](mix)
        return self.pair_loss(mix, targets)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self._teacher:
            with torch.no_grad():
                for t, s in zip(self._teacher[0].parameters(), self.encoder.parameters()):
                    t.lerp_(s, 1.0 - self.hparams.teacher_ema)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        obj = self.hparams.objective
        if obj == "elbo":
            terms = self.wake_loss(batch)
            self.log_dict({f"train/{k}": v for k, v in terms.items() if k != "loss"})
            loss = terms["loss"]
        elif obj == "wake_sleep":
            terms = self.wake_loss(batch["wake"])
            sleep = self.pair_loss(*batch["sleep"])
            self.log_dict({f"train/{k}": v for k, v in terms.items() if k != "loss"})
            self.log("train/sleep_nll", sleep)
            loss = self.hparams.wake_weight * terms["loss"] + sleep
        elif obj == "remix":
            loss = self.remix_loss(batch)
            self.log("train/remix_nll", loss)
        elif obj == "distil":
            loss = self.distil_loss(batch)
            self.log("train/distil_nll", loss)
        else:
            loss = self.pair_loss(*batch)
            self.log(f"train/{obj}_nll", loss)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        mix, sources = batch
        est = self(mix)
        sdr = si_sdr(est, sources)
        base = si_sdr(mix.unsqueeze(1).expand_as(sources), sources)
        self.log("val/si_sdr", sdr.mean(), prog_bar=True, sync_dist=True)
        self.log("val/si_sdri", (sdr - base).mean(), prog_bar=True, sync_dist=True)
        for k, name in enumerate(self.sources):
            self.log(f"val/si_sdri_{name}", (sdr - base)[:, k].mean(), sync_dist=True)
        if batch_idx == 0:
            self._media = (mix[0], est[0], sources[0])

    def on_validation_epoch_end(self) -> None:
        """Log the first validation example (mixture, estimates, references) as audio and
        spectrograms to W&B (no-op without a WandbLogger)."""
        from priors.tracking import log_waveforms

        media, self._media = getattr(self, "_media", None), None
        if media is None:
            return
        mix, est, ref = media
        signals = {"mixture": mix, **{f"{n} estimate": e for n, e in zip(self.sources, est)},
                   **{f"{n} reference": r for n, r in zip(self.sources, ref)}}
        log_waveforms(self, "val/example", signals, self.hparams.sample_rate)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.encoder.parameters(), lr=self.hparams.lr)
        total = 0
        if self.hparams.lr_decay:
            total = self.hparams.lr_decay_steps or (self.trainer.max_steps if self.trainer else 0)
            total = max(0, total)
        if not total:
            return opt
        from priors.module import warmup_cosine

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, 0, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def describe(self) -> dict:
        from .checkpoints import describe_separator

        return describe_separator(self)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["priorsep"] = self.describe()
        if self._teacher:  # the EMA teacher is not a sub-module: keep it so a resumed remix run continues it
            checkpoint["remix_teacher"] = self._teacher[0].state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self._teacher and "remix_teacher" in checkpoint:
            self._teacher[0].load_state_dict(checkpoint["remix_teacher"])
