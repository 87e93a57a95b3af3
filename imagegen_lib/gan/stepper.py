"""How ``train_gan`` makes its updates: one interface, two ways to run it, and one place that picks.

:class:`GANStep` is all the loop asks of a step: start an epoch at a given step, make ``k``
updates, hand back the statistics summed since it last asked. :class:`EagerStep` runs the plain
PyTorch step (:func:`~imagegen_lib.gan.step.gan_train_step`, under DDP when launched by torchrun);
:class:`~imagegen_lib.gan.fast_step.FastGANStep` runs the same update as a CUDA graph. Both read
batch ``i`` of an epoch from the same permutation and draw its noise from the run's generator in
the same order, so either can continue a run the other started (``--resume`` across paths is
exact). :func:`use_fast_step` decides which one a run gets, :func:`make_step` builds it.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Protocol

import torch
from torch import nn

from ..core import distributed
from ..core.training import bf16_autocast
from .fast_step import FastGANStep, FastStepOptions
from .losses import G_LOSSES
from .step import gan_train_step, r1_step

__all__ = ["GANStep", "EagerStep", "make_step", "use_fast_step", "fast_path_reason"]


class GANStep(Protocol):
    """What ``train_gan``'s loop calls, whichever way the updates run."""

    steps_per_call: int  # the most updates the loop asks of one run() (it asks fewer before a log or checkpoint)

    def begin_epoch(self, order: torch.Tensor, offset: int = 0) -> None:
        """Start the epoch whose data order is ``order`` (a CPU permutation of the images) at its step ``offset``."""

    def run(self, k: int, noise_gen: torch.Generator) -> None:
        """Make the epoch's next ``k`` updates (none past its end), each drawing its noise from ``noise_gen``."""

    def take_sums(self) -> dict[str, torch.Tensor]:
        """``loss_d``, ``loss_g``, ``d_real``, ``d_fake`` (and ``r1`` with R1 on) summed over the updates
        since the last call; resets."""


class EagerStep:
    """The plain step, one update at a time: the batch indexed from the resident images, the noise
    drawn on the CPU and copied over, :func:`gan_train_step` on G and D. Launched by torchrun, G and
    D train in DistributedDataParallel and each rank takes its rows of the global batch and noise.

    R1 (``r1_gamma`` > 0) is *lazy* (StyleGAN2, appendix B): on the run's steps ``0, k, 2k, …``
    (``k = r1_every``) the update is followed by a D step on the penalty weighted ``k·γ``
    (:func:`~imagegen_lib.gan.step.r1_step`). The run's step count ``step`` picks those steps, so a
    resumed run regularises the same ones."""

    steps_per_call = 1

    def __init__(self, G: nn.Module, D: nn.Module, opt_g, opt_d, images: torch.Tensor, batch_size: int,
                 z_dim: int, g_loss_fn, *, labels: torch.Tensor | None = None,
                 autocast: Callable = contextlib.nullcontext, device: torch.device | None = None,
                 r1_gamma: float = 0.0, r1_every: int = 1, step: int = 0):
        self.device = images.device if device is None else torch.device(device)  # where G and D train
        self.G, self.D = distributed.wrap(G, self.device), distributed.wrap(D, self.device)  # DDP, or G and D
        self.opt_g, self.opt_d = opt_g, opt_d
        self.images, self.labels = images, labels
        self.B, self.z_dim, self.g_loss_fn, self.autocast = batch_size, z_dim, g_loss_fn, autocast
        self.order: torch.Tensor | None = None
        self.cursor = 0  # the next step's index within the epoch
        self.r1_gamma, self.r1_every = r1_gamma, r1_every
        self.step = step  # the run's next step (counted from its start, across epochs and resumes)
        self.sums: dict[str, torch.Tensor] = {}

    def begin_epoch(self, order: torch.Tensor, offset: int = 0) -> None:
        self.order, self.cursor = order.to(self.device), offset

    def run(self, k: int, noise_gen: torch.Generator) -> None:
        B = self.B
        for _ in range(k):
            i = self.cursor
            # distributed.shard: this rank's rows of the global batch (all of them in one process)
            idx = distributed.shard(self.order[i * B:(i + 1) * B])
            real = self.images[idx]
            z = distributed.shard(torch.randn(B, self.z_dim, generator=noise_gen))
            labels = None if self.labels is None else self.labels[idx]
            stats = gan_train_step(self.G, self.D, self.opt_g, self.opt_d, real, z.to(self.device), self.g_loss_fn,
                                   self.autocast, labels=labels)
            if self.r1_gamma > 0:  # logged every step, 0 where skipped: the mean is R1's strength per step
                stats["r1"] = (r1_step(self.D, self.opt_d, real, self.r1_gamma * self.r1_every, self.autocast, labels)
                               if self.step % self.r1_every == 0 else torch.zeros((), device=self.device))
            for key, v in stats.items():
                self.sums[key] = self.sums.get(key, 0) + v
            self.cursor += 1
            self.step += 1

    def take_sums(self) -> dict[str, torch.Tensor]:
        sums, self.sums = self.sums, {}
        return sums


def fast_path_reason(device: torch.device, distributed: bool, r1: bool = False) -> str | None:
    """Why the fast step can't be the default here (``None``: it can)."""
    if torch.device(device).type != "cuda":
        return "not on a CUDA device"
    return _fast_step_lacks(distributed, r1)


def _fast_step_lacks(distributed: bool, r1: bool) -> str | None:
    """What a run needs that the fast step doesn't do, on any device (``None``: nothing)."""
    if distributed:
        return "DistributedDataParallel runs the plain step (its all-reduce hooks fire during backward)"
    if r1:
        return ("R1 (--r1) needs a double backward through D every few steps, which the CUDA-graph step "
                "does not capture")
    return None


def use_fast_step(fast: bool | None, device: torch.device, distributed: bool, r1: bool = False) -> bool:
    """Does this run get :class:`FastGANStep`? ``fast`` if given (True on a CPU runs its step functions
    eagerly: the tests' way to check them), else wherever :func:`fast_path_reason` finds nothing against it.
    ``r1``: the run adds the R1 penalty (plain step only).

    Decided before the optimizers are made: the fast step needs them fused and capturable."""
    if fast is None:
        return fast_path_reason(device, distributed, r1) is None
    lacks = _fast_step_lacks(distributed, r1)
    if fast and lacks:
        raise ValueError(f"fast=True is not available here: {lacks}")
    return bool(fast)


def make_step(G: nn.Module, D: nn.Module, opt_g, opt_d, images: torch.Tensor, config, device: torch.device, *,
              fast: bool, labels: torch.Tensor | None = None, options: FastStepOptions | None = None,
              step: int = 0) -> GANStep:
    """The step a run trains with: :class:`FastGANStep` if ``fast`` (see :func:`use_fast_step`), else
    :class:`EagerStep`.

    ``config`` (a ``GANConfig``) gives the batch size, the noise size, the generator's loss, bf16 and
    R1 (``r1``, ``r1_every``; ``step``: the run's steps so far, which fix the lazy R1 steps);
    ``images`` and a conditional GAN's ``labels`` are on the training ``device`` already. ``options``:
    the fast step's levers (default: what training uses on this device). Build the step after a
    checkpoint is loaded into the models and optimizers: the fast one converts them as it is built
    (channels_last weights and Adam moments, G's first layer).
    """
    g_loss_fn = G_LOSSES[config.g_loss]
    if fast:
        if config.r1 > 0:
            raise ValueError(f"the fast step can't train this run: {_fast_step_lacks(False, True)}; use fast=False")
        return FastGANStep(G, D, opt_g, opt_d, images, config.batch_size, config.z_dim, g_loss_fn, labels=labels,
                           bf16=bool(config.bf16), options=options)
    return EagerStep(G, D, opt_g, opt_d, images, config.batch_size, config.z_dim, g_loss_fn, labels=labels,
                     autocast=bf16_autocast(bool(config.bf16), torch.device(device)), device=device,
                     r1_gamma=config.r1, r1_every=config.r1_every, step=step)
