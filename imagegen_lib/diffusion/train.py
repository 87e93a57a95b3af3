"""Training a diffusion model (DDPM) or a flow-matching model: the config, the update step for the shared
loop (:mod:`imagegen_lib.core.loop`), and the export.

Both train the same U-Net (:mod:`imagegen_lib.diffusion.unet`); they differ in the noising path and
the target (:mod:`imagegen_lib.diffusion.objectives`): ``objective='diffusion'`` noises along the
DDPM schedule and predicts ε, x₀ or v; ``objective='flow'`` noises along the straight path
``(1 − t)·x₀ + t·ε`` and predicts its velocity. ``cond_drop > 0`` makes the model class-conditional,
with labels dropped at that rate for classifier-free guidance.

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
from .objectives import PREDICTIONS, ddpm_loss, flow_loss
from .samplers import Denoiser, ddim_timesteps, ddpm_levels, flow_levels, sample_euler
from .schedules import SCHEDULES, NoiseSchedule
from .unet import UNet

__all__ = ["DDPMConfig", "OBJECTIVES", "train_ddpm", "save_ddpm", "load_ddpm", "NUM_CLASSES"]

OBJECTIVES = ("diffusion", "flow")
NUM_CLASSES = 10  # MNIST and Fashion-MNIST


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
    objective: str = "diffusion"  # 'diffusion' (the DDPM schedule) | 'flow' (flow matching, straight paths)
    prediction: str | None = None  # diffusion: 'eps' (default) | 'x0' | 'v'; flow: 'velocity'
    min_snr_gamma: float = 0.0  # Min-SNR-γ loss weighting (0: off; Hang et al. use 5)
    zero_terminal_snr: bool = False  # rescale the schedule so ᾱ_T = 0 (needs prediction x0 or v)
    cond_drop: float = 0.0  # > 0: class-conditional, labels dropped with this probability (CFG)

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES if self.cond_drop > 0 else 0

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
        self._check_objective()

    def _check_objective(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {list(OBJECTIVES)}")
        if not 0 <= self.cond_drop < 1:
            raise ValueError(f"cond_drop must be in [0, 1): the share of labels replaced by 'no label' "
                             f"(0.1 is usual), got {self.cond_drop}")
        if self.min_snr_gamma < 0:
            raise ValueError(f"min_snr_gamma must be >= 0 (0: off), got {self.min_snr_gamma}")
        if self.objective == "flow":
            if self.prediction not in (None, "velocity"):
                raise ValueError(f"a flow-matching model predicts the velocity; --prediction {self.prediction} "
                                 "applies to `imagegen train ddpm`")
            if self.zero_terminal_snr or self.min_snr_gamma:
                raise ValueError("zero terminal SNR and min-SNR weighting belong to the DDPM schedule; "
                                 "flow matching has neither")
            self.prediction = "velocity"
            return
        self.prediction = self.prediction or "eps"
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {self.prediction!r}; choose one of {list(PREDICTIONS)}")
        if self.zero_terminal_snr and self.prediction == "eps":
            raise ValueError("with a zero terminal SNR (ᾱ_T = 0) an ε-prediction cannot give x₀ at t = T "
                             "(x₀ = (x_T − s ε)/a divides by a = 0): use --prediction v (Lin et al. 2024) or x0")

    @classmethod
    def from_dict(cls, d: dict) -> "DDPMConfig":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})





def save_ddpm(unet: UNet, config: DDPMConfig, stem, extra_meta: dict | None = None) -> Path:
    kind = "flow" if config.objective == "flow" else "ddpm"
    meta = {"kind": kind, "arch": kind, "dataset": config.dataset, "channels": list(config.channels),
            "attention": config.attention, "objective": config.objective, "prediction": config.prediction,
            "num_classes": config.num_classes, **({"schedule": config.schedule, "T": config.T,
                                                   "zero_terminal_snr": config.zero_terminal_snr}
                                                  if kind == "ddpm" else {}),
            "weights": "ema" if config.ema > 0 else "raw", "value_range": [-1, 1],
            "config": asdict(config), **(extra_meta or {})}
    return save_checkpoint(stem, unet.state_dict(), meta)


def load_ddpm(stem, device="cpu") -> tuple[UNet, NoiseSchedule | None, dict]:
    """The U-Net exported by :func:`save_ddpm` (eval mode), its noise schedule (None for flow matching), and
    the metadata (``prediction``: what the network outputs; ``num_classes``: 0 unless class-conditional)."""
    tensors, meta = load_checkpoint(stem)
    if meta.get("kind") not in ("ddpm", "flow"):
        raise CheckpointError(f"{stem} holds a {meta.get('kind')!r} checkpoint, not a diffusion ('ddpm') or "
                              "flow-matching ('flow') model")
    meta.setdefault("prediction", "eps" if meta["kind"] == "ddpm" else "velocity")  # checkpoints before Q6
    meta.setdefault("num_classes", 0)
    unet = UNet(tuple(meta["channels"]), meta["attention"], meta["num_classes"])
    try:
        unet.load_state_dict({k: v.float() for k, v in tensors.items()})
    except RuntimeError as e:
        raise CheckpointError(f"{stem}: weights don't fit a U-Net of the size its JSON states: {e}") from None
    schedule = (NoiseSchedule(meta["schedule"], meta["T"], device, meta.get("zero_terminal_snr", False))
                if meta["kind"] == "ddpm" else None)
    return unet.to(device).eval(), schedule, meta


def _ddpm_job(config: DDPMConfig, device: torch.device, gen: torch.Generator) -> Job:
    model = UNet(config.channels, config.attention, config.num_classes).to(device)
    ema = copy.deepcopy(model).requires_grad_(False) if config.ema > 0 else None
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    flow = config.objective == "flow"
    schedule = None if flow else NoiseSchedule(config.schedule, config.T, device, config.zero_terminal_snr)
    autocast = bf16_autocast(config.bf16, device)
    params = list(model.parameters())

    def loss_of(x0, labels):
        if flow:
            return flow_loss(model, x0, gen, labels=labels, cond_drop=config.cond_drop)
        return ddpm_loss(model, schedule, x0, gen, prediction=config.prediction,
                         min_snr_gamma=config.min_snr_gamma or None, labels=labels, cond_drop=config.cond_drop)

    def update(x0, step, labels=None):
        for group in opt.param_groups:  # the LR is a function of the step alone: resume stays exact
            group["lr"] = config.lr * min(1.0, (step + 1) / config.warmup) if config.warmup else config.lr
        with autocast():
            loss = loss_of(x0, labels)
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
        fixed = torch.Generator(device).manual_seed(config.seed + 2)  # the same noise for every grid
        labels = (torch.arange(64, device=device) % NUM_CLASSES) if config.num_classes else None
        steps = min(50, config.T)
        denoise = Denoiser(net, config.prediction, labels, discrete=not flow,
                           autocast=None if autocast is contextlib.nullcontext else autocast)
        levels = flow_levels(steps) if flow else ddpm_levels(schedule, ddim_timesteps(config.T, steps))
        x = sample_euler(denoise, levels, torch.randn((64, 1, 28, 28), generator=fixed, device=device))
        model.train()
        return x.float().cpu()

    def export(stem, meta):
        save_ddpm(ema if ema is not None else model, config, stem, meta)

    return Job("flow" if flow else "ddpm", model, opt, update, grid, export, ema=ema,
               postfix=lambda r: {"loss": f"{r['loss']:.4f}"}, uses_labels=config.num_classes > 0)


def train_ddpm(config: DDPMConfig, images: torch.Tensor | None = None, **kwargs) -> GenerativeRun:
    """Train the DDPM or flow model on ``images`` (``(N,1,28,28)`` in [-1, 1]; loaded from ``config.dataset``
    if None, with their labels).

    Keyword arguments: ``labels`` (with ``images``, for a class-conditional model), ``out_dir`` (run
    folder, optional), ``resume``, ``device``, ``progress``,
    ``max_steps`` (stop early; resume later), ``time_budget`` (seconds of training in this call,
    then a final checkpoint), ``extra_meta`` (merged into the checkpoints' JSON), ``on_log``.
    """
    if images is not None:
        check_tanh_images(images)
    return fit(config, _ddpm_job, images, **kwargs)
