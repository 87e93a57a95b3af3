"""The training loop the VAE and the DDPM share; each model supplies its own update step (a :class:`Job`).

The loop has the GAN loop's bookkeeping (:mod:`imagegen_lib.gan.train`): the data set stays on the
device as one tensor (no ``DataLoader``), the data order of epoch ``e`` is a permutation seeded by
``(seed, e)``, the model's randomness (the VAE's ε, the DDPM's ``t`` and ε) comes from one
``torch.Generator`` on the device whose state is saved, and weights, EMA weights and Adam's
moments are saved — so ``resume`` replays exactly the steps an uninterrupted run would have taken
(bit-exact on CPU). Checkpoints are atomic safetensors; a ``tqdm`` bar shows the loss; a run can
stop at ``max_steps`` or after ``time_budget`` seconds and still writes its final checkpoint.

A run folder holds ``last.safetensors/.json`` (the full state and the history) and
``model.safetensors/.json`` (what ``imagegen sample``, ``eval`` and ``ship`` take: the VAE; for the
DDPM the **EMA** weights of the U-Net) and ``samples/step_*.png``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, load_optimizer, open_run_dir, optimizer_tensors, save_checkpoint
from .data_files import DATASETS
from .runtime import resolve_device
from .training import check_resume_settings

__all__ = ["Job", "GenerativeRun", "fit", "check_loop_config"]

# Settings that may differ when resuming: they change how long the run is or what it logs, not what it learns.
_RESUME_FREE = ("epochs", "log_every", "sample_every", "ckpt_every")


def check_loop_config(config) -> None:
    """Refuse a config whose data set, loop lengths or learning rate the loop cannot use."""
    if config.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {config.dataset!r}; choose one of {list(DATASETS)}")
    for name in ("epochs", "batch_size", "log_every", "sample_every", "ckpt_every"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if not config.lr > 0:
        raise ValueError(f"lr must be > 0, got {config.lr}")


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



@dataclass
class Job:
    """What the shared loop needs from a model: how to update it, draw a grid, and export it."""

    kind: str  # 'vae' | 'ddpm' (names the checkpoint kinds and the progress bar)
    model: nn.Module
    opt: torch.optim.Optimizer
    update: Callable[..., dict[str, torch.Tensor]]  # (batch, step[, labels]) -> detached stats
    grid: Callable[[], torch.Tensor]  # fixed-noise samples in [-1, 1]
    export: Callable[[Path, dict], None]
    ema: nn.Module | None = None
    postfix: Callable[[dict], dict] = lambda row: {}
    uses_labels: bool = False  # a class-conditional model: update also gets the batch's labels


def fit(config, make_job, images, out_dir=None, resume: bool = False, device="auto", progress: bool = True,
         max_steps: int | None = None, time_budget: float | None = None, extra_meta: dict | None = None,
         on_log: Callable[[dict], None] | None = None, labels: torch.Tensor | None = None) -> GenerativeRun:
    """Train ``make_job(config, device, gen)`` on ``images`` (``[-1, 1]``; loaded from ``config.dataset`` if None).

    ``labels`` ``(N,)``: the images' classes, for a job that ``uses_labels`` (loaded with the data set
    when ``images`` is None).

    Keyword arguments as :func:`imagegen_lib.diffusion.train.train_ddpm`.
    """
    from . import data, viz  # local import keeps `import imagegen_lib.core.loop` light

    device = resolve_device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"time_budget must be > 0 seconds, got {time_budget}")
    extra_meta = dict(extra_meta or {})
    if images is None:
        images, labels = data.load_images(config.dataset, "train", (-1, 1), limit=config.limit)
    images = images.to(device)
    n = images.shape[0]
    if n < config.batch_size:
        raise ValueError(f"only {n} training images for batch_size {config.batch_size}; lower --batch-size")
    steps_per_epoch = n // config.batch_size
    total_steps = steps_per_epoch * config.epochs

    torch.manual_seed(config.seed)
    gen = torch.Generator(device).manual_seed(config.seed + 1)
    job = make_job(config, device, gen)
    if job.uses_labels:
        if labels is None or labels.shape != (n,):
            raise ValueError(f"a class-conditional {job.kind} needs one label per training image: pass labels "
                             f"of shape ({n},), got {None if labels is None else tuple(labels.shape)}")
        labels = labels.to(device=device, dtype=torch.long)
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
                rows = order[i * config.batch_size:(i + 1) * config.batch_size]
                mid_step = True
                stats = job.update(images[rows], step, labels[rows]) if job.uses_labels else job.update(images[rows], step)
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


def _save_run(out: Path, job: Job, gen: torch.Generator, config, step, steps_per_epoch, history, seconds,
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


def _restore(out: Path, job: Job, gen: torch.Generator, config):
    tensors, meta = load_checkpoint(out / "last", expect_kind=f"{job.kind}-train-state")
    saved = type(config).from_dict(meta["config"])
    check_resume_settings(config, saved, may_change=_RESUME_FREE)
    job.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if job.ema is not None:
        job.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    load_optimizer(job.opt, tensors, "opt", meta["opt"])
    gen.set_state(tensors["noise_rng"])
    return int(meta["step"]), float(meta["seconds"]), list(meta["history"])
