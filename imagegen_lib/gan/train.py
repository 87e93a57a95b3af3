"""The GAN training loop shared by the MLP GAN, the DCGAN and the conditional GAN (and the CLI, the notebooks).

The heart is :func:`~imagegen_lib.gan.step.gan_train_step` — one discriminator update, then one
generator update (its own module, so that the fast GPU step can check itself against it). The
rest is bookkeeping done right: seeding, a ``tqdm`` bar with D/G losses and D(x), D(G(z)),
samples from a fixed noise batch, atomic checkpoints and an exact ``resume``.

Why resume is exact: the data order of epoch ``e`` is a permutation seeded by ``(seed, e)``, so
it can be recomputed; the noise comes from a dedicated ``torch.Generator`` whose state is saved;
weights, batch-norm statistics and Adam's moments are saved. Restarting from step ``k`` therefore
replays exactly the step ``k + 1`` an uninterrupted run would have taken (bit-exact on CPU).

The loop calls one interface for its updates, :class:`~.stepper.GANStep`: on a CUDA GPU by default
the fast step of :mod:`.fast_step` (the whole update as one CUDA graph: several times the images/s),
elsewhere, with ``fast=False`` / ``--eager``, or under ``torchrun`` (DistributedDataParallel) the
plain one. Both make the same updates from the same numbers (:mod:`.stepper`).

Two stabilisers are options: ``ema`` keeps an exponential moving average of G's weights (exported
beside G as ``generator_ema``; it runs on either path), ``r1`` adds a D step on the R1 penalty every
``r1_every`` steps (plain step only: a CUDA run asked for it trains with the plain step and says so).
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..core import distributed
from ..core.checkpoint import (CheckpointError, load_checkpoint, load_optimizer, optimizer_tensors,
                               save_checkpoint)
from ..core.data import check_tanh_images
from ..core.runtime import resolve_device
from ..core.training import check_resume_settings, ema_update
from .conditional import balanced_labels, build_cgan, check_labels
from .fast_step import adam_options
from .losses import G_LOSSES
from .models import GAN_ARCHS, build_gan
from .stepper import fast_path_reason, make_step, use_fast_step

__all__ = ["GANConfig", "TrainResult", "train_gan", "save_generator", "load_generator", "sample_images", "ARCHS",
           "is_conditional"]

ARCHS = (*GAN_ARCHS, "cgan")  # 'cgan': the class-conditional DCGAN of conditional.py (G(z, y), D(x, y))


def is_conditional(arch_or_G) -> bool:
    """Whether a GAN (by name, or a generator) takes class labels."""
    return arch_or_G == "cgan" if isinstance(arch_or_G, str) else hasattr(arch_or_G, "num_classes")


def _build(arch: str, z_dim: int, width: int):
    return build_cgan(z_dim=z_dim, width=width) if arch == "cgan" else build_gan(arch, z_dim=z_dim, width=width)


@dataclass
class GANConfig:
    arch: str = "dcgan"  # 'dcgan' | 'mlpgan' | 'cgan'
    dataset: str = "mnist"  # 'mnist' | 'fashion-mnist'
    z_dim: int = 100
    width: int = 64  # DCGAN channel width (ignored by the MLP GAN)
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-4
    beta1: float = 0.5  # DCGAN's advice: the default 0.9 makes GAN training oscillate more
    beta2: float = 0.999
    g_loss: str = "nonsaturating"  # or 'saturating' (the original minimax form; see Q2)
    seed: int = 0
    limit: int | None = None  # train on the first N images only (tests, quick demos)
    log_every: int = 50  # steps between loss readings (each reading syncs the GPU)
    sample_every: int = 500  # steps between fixed-noise sample grids
    ckpt_every: int = 1000  # steps between checkpoints (plus one at every epoch end)
    bf16: bool | None = None  # bf16 autocast on CUDA; None: on where the fast GPU path runs, else off
    ema: float = 0.0  # decay of the EMA of G's weights, exported as generator_ema (0: none; DCGAN-typical 0.999)
    r1: float = 0.0  # R1 penalty weight γ: γ/2 · E||∇_x D(x_real)||² on D (0: none)
    r1_every: int = 16  # lazy R1 (StyleGAN2): a D step on the penalty weighted by this, every r1_every steps

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown GAN architecture {self.arch!r}; choose one of {sorted(ARCHS)}")
        if self.g_loss not in G_LOSSES:
            raise ValueError(f"unknown generator loss {self.g_loss!r}; choose one of {sorted(G_LOSSES)}")
        for name in ("epochs", "batch_size", "z_dim", "width", "log_every", "sample_every", "ckpt_every",
                     "r1_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema (a decay) must be in [0, 1), got {self.ema}; 0 turns the EMA off")
        if not self.r1 >= 0:
            raise ValueError(f"r1 (the penalty weight gamma) must be >= 0, got {self.r1}; 0 turns R1 off")

    @classmethod
    def from_dict(cls, d: dict) -> "GANConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainResult:
    G: nn.Module
    D: nn.Module
    config: GANConfig
    history: list[dict] = field(default_factory=list)  # one row per log_every steps
    samples: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (step, fixed-noise images)
    steps: int = 0
    seconds: float = 0.0
    G_ema: nn.Module | None = None  # the EMA of G's weights (config.ema > 0), with G's batch-norm statistics


# ---------------------------------------------------------------------------------------------
# Checkpoint plumbing
# ---------------------------------------------------------------------------------------------

def _prefixed(state_dict: dict, prefix: str) -> dict:
    return {f"{prefix}.{k}": v for k, v in state_dict.items()}


def _unprefixed(tensors: dict, prefix: str) -> dict:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def save_generator(G: nn.Module, config: GANConfig, stem, extra_meta: dict | None = None) -> Path:
    """Export the generator alone (what ``imagegen sample`` and the book load)."""
    meta = {"kind": "gan-generator", "arch": config.arch, "dataset": config.dataset,
            "z_dim": config.z_dim, "width": config.width, "value_range": [-1, 1],
            "config": asdict(config), **(extra_meta or {})}
    return save_checkpoint(stem, G.state_dict(), meta)


def load_generator(stem, device="cpu") -> tuple[nn.Module, dict]:
    """Load a generator exported by :func:`save_generator`; returns ``(G in eval mode, meta)``."""
    tensors, meta = load_checkpoint(stem, expect_kind="gan-generator")
    if meta.get("arch") not in ARCHS:
        raise CheckpointError(f"{stem}: unknown architecture {meta.get('arch')!r} in its JSON.")
    G, _ = _build(meta["arch"], z_dim=meta["z_dim"], width=meta.get("width", 64))
    try:
        G.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(f"{stem}: weights don't fit a {meta['arch']} generator: {e}") from None
    return G.to(device).eval(), meta


@torch.no_grad()
def sample_images(G: nn.Module, n: int, seed: int = 0, device="cpu", batch_size: int = 1000,
                  labels=None) -> torch.Tensor:
    """``n`` images in [-1, 1] from ``G`` in eval mode, reproducible from ``seed`` (CPU noise).

    A conditional G draws class ``labels[i]`` for image ``i``; by default ``0, 1, …, 9, 0, …``
    (every class equally often). The noise is the same whether G is conditional or not.
    """
    if is_conditional(G):
        labels = balanced_labels(n, G.num_classes) if labels is None else check_labels(labels, G.num_classes, n)
    elif labels is not None:
        raise ValueError("this generator is unconditional: class labels apply to a conditional GAN (cgan) only")
    gen = torch.Generator().manual_seed(seed)
    was_training = G.training
    G.eval()
    out = []
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), G.z_dim, generator=gen)
        cond = () if labels is None else (labels[start:start + len(z)].to(device),)
        out.append(G(z.to(device), *cond).float().cpu())
    G.train(was_training)
    return torch.cat(out)


def _new_ema(G: nn.Module) -> nn.Module:
    """A frozen copy of G that will hold the moving average of its weights."""
    return copy.deepcopy(G).requires_grad_(False)


@torch.no_grad()
def _ema_generator(G_ema: nn.Module, G: nn.Module) -> nn.Module:
    """The EMA generator, ready to sample or save: averaged weights, and G's batch-norm statistics.

    Why copied, not averaged (StyleGAN2 copies them too): the running statistics are already a
    running average (momentum 0.1) of G's activations; averaging them again at 0.999 would make
    them trail G by ~1000 steps more. Neither choice is the statistics of the averaged weights'
    own activations — those would need a pass over fresh noise ("standing statistics", BigGAN).
    Copied when read, because a copy every step would end in the same numbers.
    """
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)
    return G_ema


def _save_run(out: Path, G, D, opt_g, opt_d, noise_gen, config, step, history, seconds, extra_meta, G_ema=None):
    tensors = {**_prefixed(G.state_dict(), "G"), **_prefixed(D.state_dict(), "D")}
    if G_ema is not None:
        tensors.update(_prefixed(G_ema.state_dict(), "G_ema"))
    tg, mg = optimizer_tensors(opt_g, "opt_g")
    td, md = optimizer_tensors(opt_d, "opt_d")
    tensors.update(tg)
    tensors.update(td)
    tensors["noise_rng"] = noise_gen.get_state()
    meta = {"kind": "gan-train-state", "config": asdict(config), "step": step, "seconds": seconds,
            "opt_g": mg, "opt_d": md, "history": history, **extra_meta}
    save_checkpoint(out / "last", tensors, meta)
    export = {"step": step, "train_seconds": seconds, **extra_meta}
    save_generator(G, config, out / "generator", {**export, "weights": "raw"})
    if G_ema is not None:
        save_generator(G_ema, config, out / "generator_ema", {**export, "weights": "ema", "ema_decay": config.ema})


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

def train_gan(
    config: GANConfig,
    images: torch.Tensor | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
    max_steps: int | None = None,
    extra_meta: dict[str, Any] | None = None,
    on_log: Callable[[dict], None] | None = None,
    labels: torch.Tensor | None = None,
    fast: bool | None = None,
) -> TrainResult:
    """Train ``config.arch`` on ``images`` (``(N,1,28,28)`` in [-1, 1]; loaded from ``config.dataset`` if None).

    The conditional GAN (``arch='cgan'``) also needs the images' class ``labels`` (loaded with them).

    ``out_dir`` (optional) receives ``last.safetensors/json`` (full state, for ``resume``),
    ``generator.safetensors/json`` (the exportable generator), with ``config.ema`` > 0 also
    ``generator_ema.safetensors/json`` (the EMA of its weights), and ``samples/step_*.png`` (raw G).
    ``max_steps`` stops early (the run can be resumed to its full length later).
    ``fast`` (default: on for one CUDA process) runs the updates as CUDA graphs (:mod:`.fast_step`;
    :func:`~.stepper.use_fast_step`); the same numbers go in and the same updates come out, so runs
    and checkpoints are interchangeable.
    """
    from ..core import data, viz  # local import keeps `import imagegen_lib.gan.train` light

    device = resolve_device(device)
    ddp = distributed.is_distributed()  # launched by torchrun: see imagegen_lib/core/distributed.py
    if fast is None and config.r1 > 0 and fast_path_reason(device, ddp) is None and distributed.is_main():
        # the fast step would have been the default: say why this run doesn't get it
        print(f"--r1: training with the plain (eager) step: {fast_path_reason(device, ddp, r1=True)}",
              file=sys.stderr)
    # before the optimizers: the fast step needs them capturable
    fast = use_fast_step(fast, device, ddp, r1=config.r1 > 0)
    distributed.check_global_batch(config.batch_size)
    if config.bf16 is None:  # resolved here, so the run's saved settings say what it did
        config = replace(config, bf16=bool(fast and device.type == "cuda"))
    extra_meta = dict(extra_meta or {})
    conditional = is_conditional(config.arch)
    if images is None:
        images, loaded_labels = data.load_images(config.dataset, "train", (-1, 1), limit=config.limit)
        labels = loaded_labels if conditional else None
    check_tanh_images(images)
    if conditional:
        if labels is None:
            raise ValueError("the conditional GAN trains on (image, class) pairs: pass labels= with the images")
        labels = check_labels(labels, n=len(images)).to(device)
    images = images.to(device)
    n = images.shape[0]
    if n < config.batch_size:
        raise ValueError(f"only {n} training images for batch_size {config.batch_size}; lower --batch-size")
    steps_per_epoch = n // config.batch_size  # drop the ragged last batch: BN hates tiny batches
    total_steps = steps_per_epoch * config.epochs

    torch.manual_seed(config.seed)
    G, D = _build(config.arch, z_dim=config.z_dim, width=config.width)
    G, D = G.to(device), D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr, betas=(config.beta1, config.beta2),
                             **adam_options(device, fast))
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr, betas=(config.beta1, config.beta2),
                             **adam_options(device, fast))
    noise_gen = torch.Generator().manual_seed(config.seed + 1)
    # The fixed grid: 64 images in rows of 8; the conditional GAN draws 10 rows of 0..9 instead.
    n_fixed, grid_row = (100, 10) if conditional else (64, 8)
    fixed_z = torch.randn(n_fixed, config.z_dim, generator=torch.Generator().manual_seed(config.seed + 2)).to(device)
    fixed_labels = balanced_labels(n_fixed).to(device) if conditional else None

    history: list[dict] = []
    step, seconds_before, ema_state = 0, 0.0, {}
    out = distributed.open_run_dir(out_dir, resume)
    if out is not None and resume:
        step, seconds_before, history, ema_state = _restore(out, G, D, opt_g, opt_d, noise_gen, config)
    stepper = make_step(G, D, opt_g, opt_d, images, config, device, fast=fast, labels=labels if conditional else None,
                        step=step)
    # The EMA copy is made after make_step, so that its weights have the layout the fast step gave
    # G's (channels_last on a GPU): one fused lerp a step. The state dict is the same either way.
    G_ema = _new_ema(G) if config.ema > 0 else None
    if G_ema is not None and out is not None and resume:
        _load_ema(G_ema, ema_state, out)
    g_params, ema_params = list(G.parameters()), list(G_ema.parameters()) if G_ema is not None else []

    result = TrainResult(G, D, config, history, [], step, seconds_before)
    end_step = total_steps if max_steps is None else min(total_steps, max_steps)
    t0 = time.perf_counter()
    bar = tqdm(total=end_step, initial=step, disable=not progress or not distributed.is_main(), unit="step",
               desc=f"{config.arch}", dynamic_ncols=True)
    n_running = 0  # steps summed in the stepper (fewer than log_every after a resume or at the end)
    mid_step = False  # True while noise, weights and optimizers are part-way through one update

    def checkpoint(collective: bool = True):
        if out is None:
            return
        meta = extra_meta
        if collective and ddp:  # every rank: same BN statistics, digests of the replicas
            distributed.average_buffers(G, D)
            meta = {**extra_meta, **distributed.replica_record(G, D)}
        if distributed.is_main():
            _save_run(out, G, D, opt_g, opt_d, noise_gen, config, step, history,
                      seconds_before + time.perf_counter() - t0, meta,
                      None if G_ema is None else _ema_generator(G_ema, G))
        if collective:
            distributed.barrier()  # nobody runs ahead of a half-written checkpoint

    try:
        G.train(), D.train()
        while step < end_step:
            epoch, offset = divmod(step, steps_per_epoch)
            order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
            stepper.begin_epoch(order, offset)
            i = offset
            while i < steps_per_epoch and step < end_step:
                mid_step = True
                # as many updates as the step makes in one go, but none past the next log/sample/checkpoint;
                # one at a time with an EMA, which follows every G update
                per_call = 1 if G_ema is not None else stepper.steps_per_call
                n_steps = min(per_call, _steps_to_next_event(step, config, steps_per_epoch, end_step))
                stepper.run(n_steps, noise_gen)
                if G_ema is not None:
                    ema_update(ema_params, g_params, step, config.ema)
                i += n_steps
                n_running += n_steps
                step += n_steps
                mid_step = False
                bar.update(n_steps)
                if step % config.log_every == 0 or step == end_step:
                    sums = distributed.mean_over_ranks(stepper.take_sums())  # the global batch's statistics
                    row = {k: float(v) / n_running for k, v in sums.items()}
                    row.update(step=step, epoch=step / steps_per_epoch,
                               seconds=round(seconds_before + time.perf_counter() - t0, 3))
                    history.append(row)
                    n_running = 0
                    bar.set_postfix(D=f"{row['loss_d']:.3f}", G=f"{row['loss_g']:.3f}",
                                    Dx=f"{row['d_real']:.2f}", DGz=f"{row['d_fake']:.2f}", epoch=epoch + 1)
                    if on_log is not None:
                        on_log(row)
                if (step % config.sample_every == 0 or step == end_step) and distributed.is_main():
                    grid = _sample_fixed(G, fixed_z, fixed_labels)
                    result.samples.append((step, grid))
                    if out is not None:
                        viz.save_grid(grid, out / "samples" / f"step_{step:07d}.png", nrow=grid_row)
                if step % config.ckpt_every == 0 or step % steps_per_epoch == 0:
                    checkpoint()
        checkpoint()
    except KeyboardInterrupt:
        if not mid_step:  # a half-done update would make a checkpoint that can't resume exactly;
            checkpoint(collective=False)  # then the last one on disk stands. `--resume` continues from it
        bar.close()
        raise
    bar.close()
    result.steps = step
    result.seconds = seconds_before + time.perf_counter() - t0
    result.G_ema = None if G_ema is None else _ema_generator(G_ema, G).eval()
    return result


def _steps_to_next_event(step: int, config: GANConfig, steps_per_epoch: int, end_step: int) -> int:
    """Steps until the loop next logs, samples, checkpoints or ends an epoch or the run."""
    periods = (config.log_every, config.sample_every, config.ckpt_every, steps_per_epoch)
    return min(end_step - step, *(p - step % p for p in periods))


@torch.no_grad()
def _sample_fixed(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    G.eval()
    x = G(z, *(() if labels is None else (labels,))).float().cpu()
    G.train()
    return x


def _load_ema(G_ema: nn.Module, ema_state: dict, out: Path) -> None:
    try:
        G_ema.load_state_dict(ema_state)
    except RuntimeError as e:
        raise CheckpointError(f"{out / 'last'}: its EMA generator (G_ema.*) doesn't fit this run's G: "
                              f"{str(e)[:300]}") from None


def _restore(out: Path, G, D, opt_g, opt_d, noise_gen, config: GANConfig):
    tensors, meta = load_checkpoint(out / "last", expect_kind="gan-train-state")
    saved = GANConfig.from_dict(meta["config"])
    check_resume_settings(config, saved, may_change=("epochs",))
    G.load_state_dict(_unprefixed(tensors, "G"))
    D.load_state_dict(_unprefixed(tensors, "D"))
    load_optimizer(opt_g, tensors, "opt_g", meta["opt_g"])
    load_optimizer(opt_d, tensors, "opt_d", meta["opt_d"])
    noise_gen.set_state(tensors["noise_rng"])
    ema_state = _unprefixed(tensors, "G_ema")  # the EMA generator's, when the run keeps one
    return int(meta["step"]), float(meta["seconds"]), list(meta["history"]), ema_state

