"""Training the DDPM: its config, its update step for the shared loop (:mod:`imagegen_lib.core.loop`),
and its export.

Adam with a linear warm-up of the learning rate, gradient clipping, and an exponential moving
average of the weights (decay 0.999, warmed up as ``(1+k)/(10+k)`` so early averages aren't
dominated by the random init). Sampling with the EMA weights gives visibly cleaner digits than
the raw weights, which still jitter from step to step at the end of a run.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from ..core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..core.data import check_tanh_images
from ..core.loop import GenerativeRun, Job, check_loop_config, fit
from ..core.training import bf16_autocast, ema_update
from .model import SCHEDULES, NoiseSchedule, UNet, ddpm_loss, sample_ddim

__all__ = ["DDPMConfig", "train_ddpm", "save_ddpm", "load_ddpm"]


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
        check_loop_config(self)
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


def _ddpm_job(config: DDPMConfig, device: torch.device, gen: torch.Generator) -> Job:
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

    return Job("ddpm", model, opt, update, grid, export, ema=ema,
                postfix=lambda r: {"loss": f"{r['loss']:.4f}"})


def train_ddpm(config: DDPMConfig, images: torch.Tensor | None = None, **kwargs) -> GenerativeRun:
    """Train the DDPM on ``images`` (``(N,1,28,28)`` in [-1, 1]; loaded from ``config.dataset`` if None).

    Keyword arguments: ``out_dir`` (run folder, optional), ``resume``, ``device``, ``progress``,
    ``max_steps`` (stop early; resume later), ``time_budget`` (seconds of training in this call,
    then a final checkpoint), ``extra_meta`` (merged into the checkpoints' JSON), ``on_log``.
    """
    if images is not None:
        check_tanh_images(images)
    return fit(config, _ddpm_job, images, **kwargs)
