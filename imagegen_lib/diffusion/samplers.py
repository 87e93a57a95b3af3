"""Samplers: from noise to an image with a trained denoiser, for the DDPM and for flow matching.

A sampler walks down a **grid of noise levels** ``(a_i, s_i)`` of the Gaussian path
``x = a·x₀ + s·ε`` (:mod:`imagegen_lib.diffusion.objectives`), from almost pure noise to the clean
level ``(1, 0)``. At each level the :class:`Denoiser` turns the network's output into the pair
``(x̂₀, ε̂)`` — whatever the network was trained to predict, with classifier-free guidance if asked,
and ``x̂₀`` clipped to the data range [−1, 1] (with ε̂ recomputed to match, as Ho et al.'s code does).

* **Ancestral** (DDPM only; Ho et al. 2020): every one of the ``T`` steps samples the posterior
  ``q(x_{t−1} | x_t, x̂₀) = N(c₀ x̂₀ + c_t x_t, β̃_t I)`` — fresh noise at every step.
* **DDIM** (Song et al. 2021): ``x' = a' x̂₀ + √(s'² − σ²) ε̂ + σ z`` on a sub-sequence of steps;
  ``η = 0`` (σ = 0) is deterministic, ``η = 1`` on all T steps *is* the ancestral sampler.
* **Euler** on the probability-flow ODE. In the coordinates where the ODE is simplest — ``y = x/a``
  against ``σ̃ = s/a`` for the DDPM (``dy/dσ̃ = ε̂``, Karras et al. 2022), ``x`` against ``t`` for
  flow matching (``dx/dt = ε̂ − x̂₀``) — one Euler step is ``x' = a' x̂₀ + s' ε̂``: **exactly DDIM
  with η = 0** (a test checks it). So DDIM is a first-order ODE solver.
* **Heun** (Karras et al. 2022): Euler, then re-evaluate at the new level and step again with the
  average slope; second order, two network calls per step (one on the last step, to the clean level).
* **DPM-Solver++(2M)** (Lu et al. 2022): an exponential integrator in ``λ = log(a/s)`` on the x̂₀
  prediction, second order by reusing the previous step's x̂₀ (one call per step).

Grids: the DDPM's integer steps, evenly spaced (``"uniform"``, DDIM's choice) or spaced evenly in
``σ̃^(1/7)`` (``"karras"``, Karras et al.'s, denser near the clean end); flow matching's ``t``, evenly
spaced from 1 to 0. :func:`network_calls` counts evaluations per image (twice per step with guidance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .guidance import guided_output
from .objectives import split_prediction
from .schedules import NoiseSchedule

__all__ = ["SAMPLERS", "FLOW_SAMPLERS", "Level", "Denoiser", "ddim_timesteps", "karras_timesteps",
           "ddpm_levels", "flow_levels", "network_calls", "sample_ancestral", "sample_ddim", "sample_euler",
           "sample_heun", "sample_dpmpp_2m", "Trajectory"]

SAMPLERS = ("ancestral", "ddim", "euler", "heun", "dpmpp2m")
FLOW_SAMPLERS = ("euler", "heun", "dpmpp2m")  # ancestral and stochastic DDIM need the DDPM's discrete chain
Trajectory = list[tuple[float, torch.Tensor]]  # (noise level, x) pairs, from noise to image


@dataclass(frozen=True)
class Level:
    """One noise level of a grid: ``x = a·x₀ + s·ε``; ``model_time`` is what the network is told (None: clean)."""

    a: float
    s: float
    model_time: float | None
    index: int | None = None  # the DDPM's step index (None for flow matching and the clean level)


CLEAN = Level(1.0, 0.0, None)


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` evenly spaced indices of 0..T−1, descending, ending at 0 (DDIM's sub-sequence τ)."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be between 1 and T={T}, got {steps}")
    return sorted({round(i * (T - 1) / max(steps - 1, 1)) for i in range(steps)}, reverse=True)


def karras_timesteps(schedule: NoiseSchedule, steps: int, rho: float = 7.0) -> list[int]:
    """``steps`` indices whose ``σ̃ = s/a`` are evenly spaced in ``σ̃^(1/ρ)`` (Karras et al. 2022), descending.

    The nearest integer step to each target; duplicates (near the clean end of a short schedule)
    are dropped, so fewer than ``steps`` may come back when ``steps`` approaches T.
    """
    if not 1 <= steps <= schedule.T:
        raise ValueError(f"steps must be between 1 and T={schedule.T}, got {steps}")
    ab = schedule.alpha_bar.double().cpu()
    sigma = ((1 - ab) / ab).sqrt()  # increasing in t; inf at t = T with a zero terminal SNR
    top = schedule.T - 1 if torch.isfinite(sigma[-1]) else schedule.T - 2
    lo, hi = float(sigma[0]) ** (1 / rho), float(sigma[top]) ** (1 / rho)
    targets = [(hi + i / max(steps - 1, 1) * (lo - hi)) ** rho for i in range(steps)]
    picked = [int(torch.argmin((sigma[:top + 1] - v).abs())) for v in targets]
    if top != schedule.T - 1:
        picked[0] = schedule.T - 1  # start from pure noise
    return sorted(set(picked), reverse=True)


def ddpm_levels(schedule: NoiseSchedule, timesteps: list[int]) -> list[Level]:
    """The grid of a DDPM at the given (descending) step indices, ending at the clean level."""
    ab = schedule.alpha_bar.double().cpu()
    levels = [Level(float(ab[t].sqrt()), float((1 - ab[t]).sqrt()), float(t), int(t)) for t in timesteps]
    return levels + [CLEAN]


def flow_levels(steps: int) -> list[Level]:
    """Flow matching's grid: ``t = 1, 1 − 1/steps, …, 1/steps`` then 0 (the network sees ``1000·t``)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    ts = [1 - i / steps for i in range(steps)]
    return [Level(1 - t, t, 1000 * t) for t in ts] + [CLEAN]


def network_calls(sampler: str, steps: int, guidance: float = 1.0) -> int:
    """Network evaluations per image: ``steps`` (``T`` for ancestral), ``2·steps − 1`` for Heun; ×2 with guidance."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {list(SAMPLERS)}")
    calls = 2 * steps - 1 if sampler == "heun" else steps
    return calls * (2 if guidance != 1 else 1)


class Denoiser:
    """``(x, level) -> (x̂₀, ε̂)`` from a network trained to output ``prediction``.

    ``labels``: class labels of a class-conditional network (None: the null label, i.e. the
    unconditional model). ``guidance``: the classifier-free guidance scale ``w`` in
    ``out = out_uncond + w·(out_cond − out_uncond)`` — 1 is the plain conditional model, 0 the
    unconditional one (:mod:`imagegen_lib.diffusion.guidance`). ``clip``: clip x̂₀ to [−1, 1].
    ``discrete``: the network takes integer steps (the DDPM) rather than real times (flow matching).
    """

    def __init__(self, model: nn.Module, prediction: str, labels: torch.Tensor | None = None,
                 guidance: float = 1.0, clip: bool = True, autocast: Callable | None = None, discrete: bool = True):
        self.model, self.prediction, self.labels = model, prediction, labels
        self.guidance, self.clip, self.autocast, self.discrete = float(guidance), clip, autocast, discrete
        self.calls = 0

    def __call__(self, x: torch.Tensor, level: Level) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.full((x.shape[0],), level.model_time, device=x.device,
                       dtype=torch.long if self.discrete else torch.float32)
        self.calls += 1
        if self.autocast is None:
            out = guided_output(self.model, x, t, self.labels, self.guidance).float()
        else:
            with self.autocast():
                out = guided_output(self.model, x, t, self.labels, self.guidance).float()
        a, s = _scalar(level.a, x), _scalar(level.s, x)
        x0, eps = split_prediction(self.prediction, out, x, a, s)
        if self.clip:
            x0 = x0.clamp(-1, 1)
            if level.s > 0:
                eps = (x - a * x0) / s  # the ε̂ consistent with the clipped x̂₀
        return x0, eps


def _scalar(v: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float32, device=like.device)


def _keep(trajectory: Trajectory | None, every: int, i: int, level: float, x: torch.Tensor) -> None:
    if trajectory is not None and (i % every == 0):
        trajectory.append((level, x.float().cpu()))


def _noise(n: int, gen: torch.Generator, device) -> torch.Tensor:
    return torch.randn((n, 1, 28, 28), generator=gen, device=device)


@torch.no_grad()
def sample_ancestral(model: nn.Module, schedule: NoiseSchedule, n: int, gen: torch.Generator, device="cpu",
                     trajectory: Trajectory | None = None, keep_every: int = 100, autocast: Callable | None = None,
                     prediction: str = "eps", labels: torch.Tensor | None = None,
                     guidance: float = 1.0) -> torch.Tensor:
    """``n`` images in [−1, 1] by the T-step ancestral sampler (noise from ``gen``, on ``device``).

    ``trajectory`` (a list) receives ``(t, x_t)`` every ``keep_every`` steps and the final image.
    """
    denoise = Denoiser(model, prediction, labels, guidance, autocast=autocast)
    x = _noise(n, gen, device)  # x_T
    for i, level in enumerate(ddpm_levels(schedule, list(range(schedule.T - 1, -1, -1)))[:-1]):
        step = level.index
        _keep(trajectory, keep_every, i, step + 1, x)
        x0, _ = denoise(x, level)
        mean = schedule.posterior_c0[step] * x0 + schedule.posterior_ct[step] * x  # μ̃_t(x_t, x̂_0)
        if step > 0:
            x = mean + schedule.posterior_var[step].sqrt() * torch.randn(x.shape, generator=gen, device=device)
        else:
            x = mean  # the last step returns the mean: no noise is added to the final image
    if trajectory is not None:
        trajectory.append((0, x.float().cpu()))
    return x


@torch.no_grad()
def sample_ddim(model: nn.Module, schedule: NoiseSchedule, n: int, gen: torch.Generator, steps: int = 50,
                eta: float = 0.0, device="cpu", trajectory: Trajectory | None = None, keep_every: int = 1,
                autocast: Callable | None = None, prediction: str = "eps", labels: torch.Tensor | None = None,
                guidance: float = 1.0) -> torch.Tensor:
    """``n`` images in [−1, 1] by DDIM with ``steps`` network calls; ``eta=0``: deterministic given x_T."""
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    denoise = Denoiser(model, prediction, labels, guidance, autocast=autocast)
    levels = ddpm_levels(schedule, ddim_timesteps(schedule.T, steps))
    x = _noise(n, gen, device)  # x_T
    for i, (level, nxt) in enumerate(zip(levels, levels[1:])):
        _keep(trajectory, keep_every, i, level.index + 1, x)
        x0, eps = denoise(x, level)
        ab, ab_prev = level.a ** 2, nxt.a ** 2
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) ** 0.5 if ab < 1 else 0.0
        x = nxt.a * x0 + max(1 - ab_prev - sigma ** 2, 0.0) ** 0.5 * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=gen, device=device)
    if trajectory is not None:
        trajectory.append((0, x.float().cpu()))
    return x


def _euler(x0: torch.Tensor, eps: torch.Tensor, nxt: Level) -> torch.Tensor:
    """One Euler step of the probability-flow ODE to level ``nxt`` (= DDIM, η = 0)."""
    return nxt.a * x0 + nxt.s * eps


@torch.no_grad()
def sample_euler(denoise: Denoiser, levels: list[Level], x: torch.Tensor,
                 trajectory: Trajectory | None = None) -> torch.Tensor:
    """Integrate the probability-flow ODE from ``x`` at ``levels[0]`` down the grid, first order."""
    for level, nxt in zip(levels, levels[1:]):
        _keep(trajectory, 1, 0, level.s, x)
        x = _euler(*denoise(x, level), nxt)
    _keep(trajectory, 1, 0, 0.0, x)
    return x


def _slope_coordinates(denoise: Denoiser, x: torch.Tensor, level: Level, x0: torch.Tensor, eps: torch.Tensor):
    """``(y, τ, dy/dτ)``: the ODE in the coordinates where an Euler step is the DDIM step.

    DDPM: ``y = x/a``, ``τ = s/a``, slope ε̂. Flow matching: ``y = x``, ``τ = t = s``, slope ε̂ − x̂₀.
    """
    if denoise.discrete:
        return x / level.a, level.s / level.a, eps
    return x, level.s, eps - x0


@torch.no_grad()
def sample_heun(denoise: Denoiser, levels: list[Level], x: torch.Tensor,
                trajectory: Trajectory | None = None) -> torch.Tensor:
    """Heun's second-order method on the probability-flow ODE (Karras et al. 2022, Algorithm 1)."""
    for level, nxt in zip(levels, levels[1:]):
        _keep(trajectory, 1, 0, level.s, x)
        x0, eps = denoise(x, level)
        x_euler = _euler(x0, eps, nxt)
        if nxt.s == 0 or (denoise.discrete and level.a == 0):  # last step, or y = x/a undefined (ᾱ_T = 0)
            x = x_euler
            continue
        y, tau, slope = _slope_coordinates(denoise, x, level, x0, eps)
        _, tau_next, slope_next = _slope_coordinates(denoise, x_euler, nxt, *denoise(x_euler, nxt))
        y_next = y + (tau_next - tau) * (slope + slope_next) / 2
        x = y_next * nxt.a if denoise.discrete else y_next
    _keep(trajectory, 1, 0, 0.0, x)
    return x


def _lambda(level: Level) -> float:
    """``λ = log(a/s)``, half the log-SNR; −inf at pure noise, +inf at the clean level."""
    if level.s == 0:
        return float("inf")
    if level.a == 0:
        return float("-inf")
    return math.log(level.a / level.s)


@torch.no_grad()
def sample_dpmpp_2m(denoise: Denoiser, levels: list[Level], x: torch.Tensor,
                    trajectory: Trajectory | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022): ``x' = (s'/s)·x − a'·(e^{−h} − 1)·D``, ``h = λ' − λ``.

    ``D`` is x̂₀ on the first step and next to pure noise or the clean level; otherwise the
    second-order combination ``(1 + 1/2r)·x̂₀ − (1/2r)·x̂₀_prev`` with ``r = h_prev / h``.
    """
    x0_prev, h_prev = None, None
    for level, nxt in zip(levels, levels[1:]):
        _keep(trajectory, 1, 0, level.s, x)
        x0, _ = denoise(x, level)
        lam, lam_next = _lambda(level), _lambda(nxt)
        h = lam_next - lam
        first_order = x0_prev is None or nxt.s == 0 or not (abs(h) < float("inf") and abs(h_prev) < float("inf"))
        if first_order:
            d = x0
        else:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        if nxt.s == 0:
            x = d  # λ' = ∞: the step lands on the prediction itself
        else:
            x = (nxt.s / level.s) * x - nxt.a * math.expm1(-h) * d
        x0_prev, h_prev = x0, h
    _keep(trajectory, 1, 0, 0.0, x)
    return x
