"""2-D toy GANs: datasets with known modes, the mode-coverage metric, and one small training loop.

Mixtures of Gaussians are the standard test bench for GAN pathologies (Metz et al. 2017,
Srivastava et al. 2017): every mode's centre is known, so "did G find all the modes?" and "are
the samples any good?" become two numbers instead of an opinion.

* :func:`ring_of_gaussians` — 8 modes on a circle of radius 2, std 0.02 (the classic setting).
* :func:`grid_of_gaussians` — a 5×5 grid, spacing 2, std 0.05.
* :func:`mode_coverage` — a sample is *high quality* if it lies within 3 std of its nearest
  centre; a mode is *covered* if it received at least ``min_count`` high-quality samples
  (20 of 2,500 by default, the convention of the unrolled-GAN / VEEGAN / PacGAN papers).
* :func:`train_toy_gan` — one loop for every variant in Q4 (loss, TTUR, label smoothing,
  instance noise, WGAN-GP, hinge, spectral norm, R1, minibatch std), driven by a :class:`ToyGANConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from ..gan import losses as L
from .models import ToyDiscriminator, ToyGenerator

__all__ = ["ring_centres", "grid_centres", "ring_of_gaussians", "grid_of_gaussians", "mixture_sample",
           "mode_coverage", "ToyGANConfig", "ToyRun", "build_toy_gan", "toy_gan_step", "train_toy_gan",
           "sample_toy", "grad_norm", "TOY_LOSSES"]


# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------

def ring_centres(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """``(modes, 2)`` centres evenly spaced on a circle, the first one at angle 0."""
    angles = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
    return (radius * torch.stack([angles.cos(), angles.sin()], 1)).float()


def grid_centres(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """``(side², 2)`` centres of a square grid centred on the origin."""
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(coords, coords)


def mixture_sample(n: int, centres: torch.Tensor, std: float, seed: int | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points from an equal-weight mixture of isotropic Gaussians at ``centres``."""
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    idx = torch.randint(len(centres), (n,), generator=generator)
    return centres[idx] + std * torch.randn(n, centres.shape[1], generator=generator)


def ring_of_gaussians(n: int, modes: int = 8, radius: float = 2.0, std: float = 0.02,
                      seed: int | None = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n, 2)`` samples from ``modes`` Gaussians on a ring (centres: :func:`ring_centres`)."""
    return mixture_sample(n, ring_centres(modes, radius), std, seed, generator)


def grid_of_gaussians(n: int, side: int = 5, spacing: float = 2.0, std: float = 0.05,
                      seed: int | None = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n, 2)`` samples from ``side × side`` Gaussians on a grid (centres: :func:`grid_centres`)."""
    return mixture_sample(n, grid_centres(side, spacing), std, seed, generator)


# ---------------------------------------------------------------------------------------------
# The metric
# ---------------------------------------------------------------------------------------------

def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, std: float, k: float = 3.0,
                  min_count: int | None = None) -> dict:
    """Score samples against known mode centres.

    Returns ``{"modes": covered, "n_modes": len(centres), "high_quality": fraction of samples
    within k·std of their nearest centre, "counts": high-quality samples per mode}``. A mode is
    covered if it got at least ``min_count`` high-quality samples (default ``max(1, 0.8% of
    samples)``, i.e. 20 of 2,500; a uniform G gives each of 8 modes ~310).
    """
    samples = samples.detach().float()
    if min_count is None:
        min_count = max(1, round(0.008 * len(samples)))
    dist = torch.cdist(samples, centres.float())  # (N, modes)
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= k * std
    counts = torch.bincount(nearest[good], minlength=len(centres))
    return {"modes": int((counts >= min_count).sum()), "n_modes": len(centres),
            "high_quality": float(good.float().mean()), "counts": counts.tolist()}


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

TOY_LOSSES = ("saturating", "nonsaturating", "wgan-gp", "hinge")


@dataclass
class ToyGANConfig:
    """Every knob Q4 turns. Defaults: a plain non-saturating GAN with Adam(β1=0.5)."""
    loss: str = "nonsaturating"  # 'saturating' | 'nonsaturating' | 'wgan-gp' | 'hinge'
    steps: int = 2000
    batch_size: int = 256
    z_dim: int = 2
    hidden: int = 128
    depth: int = 3
    lr_g: float = 1e-4
    lr_d: float = 1e-4  # TTUR (Heusel et al. 2017): lr_d > lr_g
    betas: tuple[float, float] = (0.5, 0.999)  # WGAN-GP and SN-GAN/SAGAN train with (0, 0.9)
    d_steps: int = 1  # discriminator (critic) updates per generator update: WGAN-GP's n_critic = 5
    gp_weight: float = 10.0  # WGAN-GP's λ
    r1_gamma: float = 0.0  # R1 (Mescheder et al. 2018): γ/2 E||∇D(x_real)||² added to D's loss
    label_smoothing: float = 0.0  # one-sided: real target 1 - label_smoothing (BCE losses only)
    instance_noise: float = 0.0  # std of the noise added to D's inputs, annealed linearly to 0
    spectral_norm: bool = False
    minibatch_std: bool = False
    d_head_start: int = 0  # D-only updates (against the initial G) before the game starts
    optimizer: str = "adam"  # or 'sgd' (plain SGD: no per-parameter rescaling of tiny gradients)
    seed: int = 0
    log_every: int = 50

    def __post_init__(self):
        if self.loss not in TOY_LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {TOY_LOSSES}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose 'adam' or 'sgd'")
        if self.label_smoothing and self.loss not in ("saturating", "nonsaturating"):
            raise ValueError("label_smoothing applies to the BCE losses only")
        if self.d_steps < 1:
            raise ValueError(f"d_steps must be >= 1 (discriminator updates per generator update), got {self.d_steps}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = tuple(self.betas)  # a list (from JSON) would make equal configs compare unequal
        if self.r1_gamma < 0:
            raise ValueError(f"r1_gamma must be >= 0, got {self.r1_gamma}")


@dataclass
class ToyRun:
    G: nn.Module
    D: nn.Module
    config: ToyGANConfig
    history: list[dict] = field(default_factory=list)  # every log_every steps: means since last row


def build_toy_gan(cfg: ToyGANConfig) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(cfg.seed)
    G = ToyGenerator(cfg.z_dim, cfg.hidden, cfg.depth)
    D = ToyDiscriminator(2, cfg.hidden, cfg.depth, spectral_norm=cfg.spectral_norm,
                         minibatch_std=cfg.minibatch_std)
    return G, D


def grad_norm(module: nn.Module) -> float:
    """The L2 norm of all of a module's parameter gradients together (0 if none)."""
    sq = [p.grad.pow(2).sum() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(sq).sum().sqrt()) if sq else 0.0


def _d_loss(cfg, D, real, fake, noise_std, gen):
    real_in = L.add_instance_noise(real, noise_std, gen)
    fake_in = L.add_instance_noise(fake, noise_std, gen)
    real_s, fake_s = D(real_in), D(fake_in)
    if cfg.loss == "wgan-gp":
        loss = L.wgan_critic_loss(real_s, fake_s) + L.gradient_penalty(D, real_in, fake_in, cfg.gp_weight, gen)
    elif cfg.loss == "hinge":
        loss = L.hinge_d_loss(real_s, fake_s)
    elif cfg.label_smoothing:
        loss = L.d_loss_bce_smoothed(real_s, fake_s, 1 - cfg.label_smoothing)
    else:
        loss = L.d_loss_bce(real_s, fake_s)
    if cfg.r1_gamma:
        loss = loss + L.r1_penalty(D, real_in, cfg.r1_gamma)
    return loss, real_s, fake_s


def _g_loss(cfg, fake_s):
    if cfg.loss == "saturating":
        return L.g_loss_saturating(fake_s)
    if cfg.loss == "nonsaturating":
        return L.g_loss_nonsaturating(fake_s)
    return L.wgan_generator_loss(fake_s)  # WGAN and hinge: -E D(G(z))


def toy_gan_step(cfg: ToyGANConfig, G, D, opt_g, opt_d, real_batches, z, noise_std: float = 0.0,
                 gen: torch.Generator | None = None, train_g: bool = True) -> dict:
    """``len(real_batches)`` discriminator updates, then (if ``train_g``) one generator update.

    The same pattern as :func:`imagegen_lib.gan.step.gan_train_step`, generalised to the variants of
    :class:`ToyGANConfig`. Returns floats: losses, mean D scores, G's gradient norm.
    """
    with torch.no_grad():
        fake = G(z)  # the fakes D trains on: no graph into G needed (the same effect as detach())
    for real in real_batches:
        loss_d, real_s, fake_s = _d_loss(cfg, D, real, fake, noise_std, gen)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
    stats = {"loss_d": float(loss_d.detach()), "d_real": float(real_s.detach().mean()),
             "d_fake": float(fake_s.detach().mean())}
    if train_g:
        fake = G(z)
        loss_g = _g_loss(cfg, D(L.add_instance_noise(fake, noise_std, gen)))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        stats["g_grad_norm"] = grad_norm(G)
        opt_g.step()
        stats["loss_g"] = float(loss_g.detach())
    return stats


def train_toy_gan(cfg: ToyGANConfig, data: torch.Tensor | None = None,
                  sampler: Callable[[int, torch.Generator], torch.Tensor] | None = None,
                  callback: Callable[[int, nn.Module, nn.Module], None] | None = None,
                  callback_steps: tuple[int, ...] = ()) -> ToyRun:
    """Train a 2-D GAN. Real batches come from ``data`` (a fixed ``(N, 2)`` set, sampled with
    replacement) or from ``sampler(n, generator)`` (fresh samples; default: the 8-Gaussians ring).

    ``callback(step, G, D)`` runs at each step in ``callback_steps`` (step 0 = before training):
    the notebooks use it for snapshots. Deterministic given ``cfg.seed`` (single-threaded CPU).
    """
    G, D = build_toy_gan(cfg)
    if cfg.optimizer == "sgd":
        opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=cfg.lr_g), torch.optim.SGD(D.parameters(), lr=cfg.lr_d)
    else:
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    if data is not None:
        def draw(n):
            return data[torch.randint(len(data), (n,), generator=gen)]
    else:
        sampler = sampler or (lambda n, g: ring_of_gaussians(n, generator=g))

        def draw(n):
            return sampler(n, gen)

    run = ToyRun(G, D, cfg)
    for _ in range(cfg.d_head_start):
        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=gen)
        toy_gan_step(cfg, G, D, opt_g, opt_d, [draw(cfg.batch_size)], z, cfg.instance_noise, gen, train_g=False)
    if callback is not None and 0 in callback_steps:
        callback(0, G, D)
    running: dict[str, float] = {}
    for step in range(1, cfg.steps + 1):
        noise_std = cfg.instance_noise * (1 - (step - 1) / cfg.steps)
        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=gen)
        reals = [draw(cfg.batch_size) for _ in range(cfg.d_steps)]
        stats = toy_gan_step(cfg, G, D, opt_g, opt_d, reals, z, noise_std, gen)
        for k, v in stats.items():
            running[k] = running.get(k, 0.0) + v
        if step % cfg.log_every == 0:
            run.history.append({"step": step, **{k: v / cfg.log_every for k, v in running.items()}})
            running.clear()
        if callback is not None and step in callback_steps:
            callback(step, G, D)
    return run


@torch.no_grad()
def sample_toy(G: nn.Module, n: int = 2500, seed: int = 12345) -> torch.Tensor:
    """``n`` samples from a toy generator with fixed evaluation noise (same z for every model)."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    return G(z)


def with_overrides(cfg: ToyGANConfig, **kw) -> ToyGANConfig:
    """``dataclasses.replace`` under a shorter name (variants of a base config)."""
    return replace(cfg, **kw)
