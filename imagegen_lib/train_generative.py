"""Training the VAE and the DDPM: one loop for both, each model supplying its own update step.

The loop has the GAN loop's bookkeeping (:mod:`.train`): the data set stays on the device as one
tensor (no ``DataLoader``), the data order of epoch ``e`` is a permutation seeded by
``(seed, e)``, the model's randomness (the VAE's ε, the DDPM's ``t`` and ε) comes from one
``torch.Generator`` on the device whose state is saved, and weights, EMA weights and Adam's
moments are saved — so ``resume`` replays exactly the steps an uninterrupted run would have taken
(bit-exact on CPU). Checkpoints are atomic safetensors; a ``tqdm`` bar shows the loss; a run can
stop at ``max_steps`` or after ``time_budget`` seconds and still writes its final checkpoint.

A run folder holds ``last.safetensors/.json`` (the full state and the history) and
``model.safetensors/.json`` (what ``imagegen sample``, ``eval`` and ``ship`` take: the VAE; for the
DDPM the **EMA** weights of the U-Net) and ``samples/step_*.png``.

- **VAE**: Adam on ``recon + β·KL`` (:func:`~imagegen_lib.models.vae.elbo_terms`).
- **DDPM**: Adam with a linear warm-up of the learning rate, gradient clipping, and an
  exponential moving average of the weights (decay 0.999, warmed up as ``(1+k)/(10+k)`` so early
  averages aren't dominated by the random init). Sampling with the EMA weights gives visibly
  cleaner digits than the raw weights, which still jitter from step to step at the end of a run.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import (CheckpointError, load_checkpoint, load_optimizer, open_run_dir, optimizer_tensors,
                         save_checkpoint)
from .data_files import DATASETS
from .models.ddpm import SCHEDULES, NoiseSchedule, UNet, check_tanh_images, ddpm_loss, sample_ddim
from .models.vae import ConvVAE, check_unit_images, elbo_terms
from .runtime import resolve_device
from .shared_training import bf16_autocast, check_resume_settings, ema_update
__all__ = ["VAEConfig", "DDPMConfig", "GenerativeRun", "train_vae", "train_ddpm", "load_vae", "load_ddpm",
           "save_vae", "save_ddpm"]

# Settings that may differ when resuming: they change how long the run is or what it logs, not what it learns.
_RESUME_FREE = ("epochs", "log_every", "sample_every", "ckpt_every")


def _check_common(config) -> None:
    if config.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {config.dataset!r}; choose one of {list(DATASETS)}")
    for name in ("epochs", "batch_size", "log_every", "sample_every", "ckpt_every"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if not config.lr > 0:
        raise ValueError(f"lr must be > 0, got {config.lr}")


@dataclass
class VAEConfig:
    dataset: str = "mnist"
    latent_dim: int = 16
    width: int = 32  # channels of the first conv (the second has 2×)
    hidden: int = 256  # the fully connected layer between the convs and the latent code
    beta: float = 1.0  # weight of the KL term (1: the ELBO; > 1: β-VAE)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    limit: int | None = None
    log_every: int = 50
    sample_every: int = 2000
    ckpt_every: int = 2000
    bf16: bool = False  # bf16 autocast on CUDA

    def __post_init__(self):
        _check_common(self)
        for name in ("latent_dim", "width", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")

    @classmethod
    def from_dict(cls, d: dict) -> "VAEConfig":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass
class DDPMConfig:
    dataset: str = "mnist"
    channels: tuple[int, int, int] = (32, 64, 128)  # U-Net widths at 28², 14², 7² (1.7 M parameters)
    attention: bool = True  # self-attention at 7×7
    schedule: str = "linear"  # 'linear' (Ho et al.) | 'cosine' (Nichol & Dhariwal)
    T: int = 1000
    epochs: int = 100
    batch_size: int = 128
    lr: float = 2e-4
    warmup: int = 500  # steps of linear learning-rate warm-up
    ema: float = 0.999  # EMA decay of the exported weights (0: export the raw weights)
    grad_clip: float = 1.0  # max gradient norm (0: off)
    seed: int = 0
    limit: int | None = None
    log_every: int = 100
    sample_every: int = 5000  # steps between sample grids (DDIM, 50 steps, EMA weights)
    ckpt_every: int = 5000
    bf16: bool = False  # bf16 autocast on CUDA

    def __post_init__(self):
        _check_common(self)
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise ValueError(f"channels must be three positive widths (28², 14², 7²), got {self.channels}")
        if self.attention and self.channels[2] % 4:
            raise ValueError(f"with attention, the 7×7 width must be divisible by 4 heads, got {self.channels[2]}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown noise schedule {self.schedule!r}; choose one of {list(SCHEDULES)}")
        if self.T < 2:
            raise ValueError(f"T must be >= 2, got {self.T}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.warmup < 0 or self.grad_clip < 0:
            raise ValueError("warmup and grad_clip must be >= 0")

    @classmethod
    def from_dict(cls, d: dict) -> "DDPMConfig":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass
class GenerativeRun:
    model: nn.Module  # the VAE, or the DDPM's U-Net (raw weights)
    config: Any
    ema: nn.Module | None = None  # the DDPM's EMA U-Net (what gets exported)
    history: list[dict] = field(default_factory=list)
    samples: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    stopped_by: str = "epochs"  # 'epochs' | 'max_steps' | 'time_budget'


# ---------------------------------------------------------------------------------------------
# Export and load
# ---------------------------------------------------------------------------------------------

def save_vae(model: ConvVAE, config: VAEConfig, stem, extra_meta: dict | None = None) -> Path:
    meta = {"kind": "vae", "arch": "vae", "dataset": config.dataset, "latent_dim": config.latent_dim,
            "width": config.width, "hidden": config.hidden, "value_range": [-1, 1],
            "likelihood": "bernoulli", "config": asdict(config), **(extra_meta or {})}
    return save_checkpoint(stem, model.state_dict(), meta)


def load_vae(stem, device="cpu") -> tuple[ConvVAE, dict]:
    """The VAE exported by :func:`save_vae`, in eval mode, and its metadata."""
    tensors, meta = load_checkpoint(stem, expect_kind="vae")
    model = ConvVAE(meta["latent_dim"], meta["width"], meta["hidden"])
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(f"{stem}: weights don't fit a VAE of the size its JSON states: {e}") from None
    return model.to(device).eval(), meta


def save_ddpm(unet: UNet, config: DDPMConfig, stem, extra_meta: dict | None = None) -> Path:
    meta = {"kind": "ddpm", "arch": "ddpm", "dataset": config.dataset, "channels": list(config.channels),
            "attention": config.attention, "schedule": config.schedule, "T": config.T,
            "weights": "ema" if config.ema > 0 else "raw", "value_range": [-1, 1],
            "config": asdict(config), **(extra_meta or {})}
    return save_checkpoint(stem, unet.state_dict(), meta)


def load_ddpm(stem, device="cpu") -> tuple[UNet, NoiseSchedule, dict]:
    """The U-Net exported by :func:`save_ddpm` (eval mode), its noise schedule, and the metadata."""
    tensors, meta = load_checkpoint(stem, expect_kind="ddpm")
    unet = UNet(tuple(meta["channels"]), meta["attention"])
    try:
        unet.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(f"{stem}: weights don't fit a U-Net of the size its JSON states: {e}") from None
    return unet.to(device).eval(), NoiseSchedule(meta["schedule"], meta["T"], device), meta


# ---------------------------------------------------------------------------------------------
# The two models' update steps
# ---------------------------------------------------------------------------------------------

@dataclass
class _Job:
    """What the shared loop needs from a model: how to update it, draw a grid, and export it."""

    kind: str  # 'vae' | 'ddpm' (names the checkpoint kinds and the progress bar)
    model: nn.Module
    opt: torch.optim.Optimizer
    update: Callable[[torch.Tensor, int], dict[str, torch.Tensor]]  # (batch, step) -> detached stats
    grid: Callable[[], torch.Tensor]  # fixed-noise samples in [-1, 1]
    export: Callable[[Path, dict], None]
    ema: nn.Module | None = None
    postfix: Callable[[dict], dict] = lambda row: {}


def _vae_job(config: VAEConfig, device: torch.device, gen: torch.Generator) -> _Job:
    model = ConvVAE(config.latent_dim, config.width, config.hidden).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    autocast = bf16_autocast(config.bf16, device)
    fixed_z = torch.randn(64, config.latent_dim, generator=torch.Generator().manual_seed(config.seed + 2)).to(device)

    def update(x, step):
        x = (x + 1) / 2  # the loop keeps [-1, 1] images; the Bernoulli likelihood wants [0, 1]
        noise = torch.randn((x.shape[0], config.latent_dim), generator=gen, device=device)
        with autocast():
            recon_logits, mu, logvar = model(x, noise)
        terms = elbo_terms(x, recon_logits, mu, logvar, config.beta, check=False)  # checked once, up front
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def grid():
        model.eval()
        x = torch.sigmoid(model.decode(fixed_z).float()) * 2 - 1
        model.train()
        return x.cpu()

    def export(stem, meta):
        save_vae(model, config, stem, meta)

    return _Job("vae", model, opt, update, grid, export,
                postfix=lambda r: {"recon": f"{r['recon']:.1f}", "KL": f"{r['kl']:.1f}"})


def _ddpm_job(config: DDPMConfig, device: torch.device, gen: torch.Generator) -> _Job:
    model = UNet(config.channels, config.attention).to(device)
    ema = copy.deepcopy(model).requires_grad_(False) if config.ema > 0 else None
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = NoiseSchedule(config.schedule, config.T, device)
    autocast = bf16_autocast(config.bf16, device)
    params = list(model.parameters())

    def update(x0, step):
        for group in opt.param_groups:  # the LR is a function of the step alone: resume stays exact
            group["lr"] = config.lr * min(1.0, (step + 1) / config.warmup) if config.warmup else config.lr
        with autocast():
            loss = ddpm_loss(model, schedule, x0, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = (torch.nn.utils.clip_grad_norm_(params, config.grad_clip) if config.grad_clip
                     else torch.zeros((), device=device))
        opt.step()
        if ema is not None:
            ema_update(list(ema.parameters()), params, step, config.ema)
        return {"loss": loss.detach(), "grad_norm": grad_norm.detach()}

    def grid():
        net = ema if ema is not None else model
        net.eval()
        fixed = torch.Generator(device).manual_seed(config.seed + 2)  # the same x_T for every grid
        x = sample_ddim(net, schedule, 64, fixed, steps=min(50, config.T), device=device,
                        autocast=None if autocast is contextlib.nullcontext else autocast)
        model.train()
        return x.float().cpu()

    def export(stem, meta):
        save_ddpm(ema if ema is not None else model, config, stem, meta)

    return _Job("ddpm", model, opt, update, grid, export, ema=ema,
                postfix=lambda r: {"loss": f"{r['loss']:.4f}"})


# ---------------------------------------------------------------------------------------------
# The shared loop
# ---------------------------------------------------------------------------------------------

def train_vae(config: VAEConfig, images: torch.Tensor | None = None, **kwargs) -> GenerativeRun:
    """Train the VAE on ``images`` (``(N,1,28,28)`` in [0, 1]; loaded from ``config.dataset`` if None).

    Keyword arguments as :func:`train_ddpm`.
    """
    if images is not None:
        check_unit_images(images)
        images = images * 2 - 1  # the shared loop holds [-1, 1]; the VAE's step maps it back
    return _fit(config, _vae_job, images, **kwargs)


def train_ddpm(config: DDPMConfig, images: torch.Tensor | None = None, **kwargs) -> GenerativeRun:
    """Train the DDPM on ``images`` (``(N,1,28,28)`` in [-1, 1]; loaded from ``config.dataset`` if None).

    Keyword arguments: ``out_dir`` (run folder, optional), ``resume``, ``device``, ``progress``,
    ``max_steps`` (stop early; resume later), ``time_budget`` (seconds of training in this call,
    then a final checkpoint), ``extra_meta`` (merged into the checkpoints' JSON), ``on_log``.
    """
    if images is not None:
        check_tanh_images(images)
    return _fit(config, _ddpm_job, images, **kwargs)


def _fit(config, make_job, images, out_dir=None, resume: bool = False, device="auto", progress: bool = True,
         max_steps: int | None = None, time_budget: float | None = None, extra_meta: dict | None = None,
         on_log: Callable[[dict], None] | None = None) -> GenerativeRun:
    from . import data, viz  # local import keeps `import imagegen_lib.train_generative` light

    device = resolve_device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"time_budget must be > 0 seconds, got {time_budget}")
    extra_meta = dict(extra_meta or {})
    if images is None:
        images, _ = data.load_images(config.dataset, "train", (-1, 1), limit=config.limit)
    images = images.to(device)
    n = images.shape[0]
    if n < config.batch_size:
        raise ValueError(f"only {n} training images for batch_size {config.batch_size}; lower --batch-size")
    steps_per_epoch = n // config.batch_size
    total_steps = steps_per_epoch * config.epochs

    torch.manual_seed(config.seed)
    gen = torch.Generator(device).manual_seed(config.seed + 1)
    job = make_job(config, device, gen)
    history: list[dict] = []
    step, seconds_before = 0, 0.0
    out = open_run_dir(out_dir, resume)
    if out is not None and resume:
        step, seconds_before, history = _restore(out, job, gen, config)

    run = GenerativeRun(job.model, config, job.ema, history, [], step, seconds_before)
    end_step = total_steps if max_steps is None else min(total_steps, max_steps)
    run.stopped_by = "epochs" if end_step == total_steps else "max_steps"
    t0 = time.perf_counter()
    bar = tqdm(total=end_step, initial=step, disable=not progress, unit="step", desc=job.kind, dynamic_ncols=True)
    running: dict[str, torch.Tensor] = {}
    n_running = 0
    mid_step = False

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - t0

    def checkpoint():
        if out is not None:
            _save_run(out, job, gen, config, step, steps_per_epoch, history, elapsed(), extra_meta)

    def log_row():
        nonlocal n_running
        row = {k: float(v) / n_running for k, v in running.items()}
        row.update(step=step, epoch=step / steps_per_epoch, seconds=round(elapsed(), 3))
        history.append(row)
        running.clear()
        n_running = 0
        bar.set_postfix(**job.postfix(row), epoch=int(step // steps_per_epoch) + 1)
        if on_log is not None:
            on_log(row)

    try:
        job.model.train()
        while step < end_step:
            epoch, offset = divmod(step, steps_per_epoch)
            order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
            order = order.to(device)
            for i in range(offset, steps_per_epoch):
                if step >= end_step:
                    break
                batch = images[order[i * config.batch_size:(i + 1) * config.batch_size]]
                mid_step = True
                stats = job.update(batch, step)
                for k, v in stats.items():
                    running[k] = running.get(k, 0) + v
                n_running += 1
                step += 1
                mid_step = False
                bar.update(1)
                out_of_time = time_budget is not None and time.perf_counter() - t0 >= time_budget
                last = step == end_step or out_of_time
                if step % config.log_every == 0 or last:
                    log_row()
                if step % config.sample_every == 0 or last:
                    grid = job.grid()
                    run.samples.append((step, grid))
                    if out is not None:
                        viz.save_grid(grid, out / "samples" / f"step_{step:07d}.png", nrow=8)
                if out_of_time:  # the checkpoint after the loop saves this step
                    run.stopped_by = "time_budget"
                    end_step = step
                    break
                if step % config.ckpt_every == 0 or step % steps_per_epoch == 0:
                    checkpoint()
        checkpoint()
    except KeyboardInterrupt:
        if not mid_step:
            checkpoint()
        bar.close()
        raise
    bar.close()
    run.steps = step
    run.seconds = elapsed()
    return run


def _save_run(out: Path, job: _Job, gen: torch.Generator, config, step, steps_per_epoch, history, seconds,
              extra_meta):
    tensors = {f"model.{k}": v for k, v in job.model.state_dict().items()}
    if job.ema is not None:
        tensors.update({f"ema.{k}": v for k, v in job.ema.state_dict().items()})
    t_opt, m_opt = optimizer_tensors(job.opt, "opt")
    tensors.update(t_opt)
    tensors["noise_rng"] = gen.get_state()
    meta = {"kind": f"{job.kind}-train-state", "config": asdict(config), "step": step, "seconds": seconds,
            "opt": m_opt, "history": history, **extra_meta}
    save_checkpoint(out / "last", tensors, meta)
    job.export(out / "model", {"step": step, "epoch": round(step / steps_per_epoch, 3),
                               "train_seconds": round(seconds, 2), **extra_meta})


def _restore(out: Path, job: _Job, gen: torch.Generator, config):
    tensors, meta = load_checkpoint(out / "last", expect_kind=f"{job.kind}-train-state")
    saved = type(config).from_dict(meta["config"])
    check_resume_settings(config, saved, may_change=_RESUME_FREE)
    job.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if job.ema is not None:
        job.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    load_optimizer(job.opt, tensors, "opt", meta["opt"])
    gen.set_state(tensors["noise_rng"])
    return int(meta["step"]), float(meta["seconds"]), list(meta["history"])
