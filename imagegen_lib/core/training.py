"""The pieces every training loop here shares: bf16 autocast, the EMA update, the resume check, and
the parameter count every model reports.

Each trainer (GAN, VAE/DDPM, super-resolution, the MNIST classifier) uses these instead of its own
copy, so a fix to one mechanism reaches every model.
"""

from __future__ import annotations

import contextlib
from dataclasses import fields
from typing import Any, Callable

import torch

__all__ = ["bf16_autocast", "ema_update", "check_resume_settings", "count_parameters"]


def bf16_autocast(enabled: bool, device: torch.device) -> Callable[[], Any]:
    """A factory of bf16 autocast contexts on a CUDA device, or of no-op contexts anywhere else.

    bf16 (not fp16): its exponent range is float32's, so no loss scaling is needed. On the CPU
    it is off: the book's CPU runs are float32, so that a notebook's numbers are plain float32 ones.
    """
    if enabled and device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def ema_update(ema_params: list[torch.Tensor], params: list[torch.Tensor], step: int, decay: float) -> None:
    """Move the exponential moving average of the weights one step towards the current weights.

    The decay warms up as ``min(decay, (1 + step) / (10 + step))`` (as in timm and TensorFlow):
    early on a 0.999 average would still be mostly the random initialisation.
    """
    d = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(ema_params, params, 1.0 - d)


def check_resume_settings(config, saved, may_change: tuple[str, ...] = (), why: str = "") -> None:
    """Can a run with ``config`` continue the run that was saved with ``saved``?

    ``config`` is a dataclass; ``saved`` the saved run's settings, as the same dataclass or as the
    dict it was saved as. Every field but those in ``may_change`` must be equal, because they fix
    the model, the data order or the learning-rate schedule: an exact resume replays the steps an
    uninterrupted run would have taken. Raises ValueError naming each difference (``why`` is added
    to the message).
    """
    def saved_value(name):
        return saved.get(name) if isinstance(saved, dict) else getattr(saved, name)

    diff = [f.name for f in fields(config) if f.name not in may_change and saved_value(f.name) != getattr(config, f.name)]
    if not diff:
        return
    flags = ", ".join("--" + name.replace("_", "-") for name in may_change)
    rule = f"Only {flags} may change when resuming." if may_change else "All must match."
    raise ValueError("--resume with different settings than the run being resumed: "
                     + ", ".join(f"{k}={getattr(config, k)!r} (run has {saved_value(k)!r})" for k in diff)
                     + f". {rule}" + (f" {why}" if why else ""))


def count_parameters(module: torch.nn.Module) -> int:
    """How many numbers the network learns (every parameter tensor's element count, summed)."""
    return sum(p.numel() for p in module.parameters())
