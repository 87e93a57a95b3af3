"""Noise schedules of a discrete-time diffusion model (DDPM, Ho et al. 2020), and the forward process.

**Forward process.** Noise is added in ``T`` small Gaussian steps, ``q(x_t | x_{t-1}) =
N(√(1−β_t) x_{t-1}, β_t I)``. With ``α_t = 1 − β_t`` and ``ᾱ_t = Π_{s≤t} α_s`` it has the closed
form (:meth:`NoiseSchedule.q_sample`)

    q(x_t | x_0) = N(√ᾱ_t · x_0, (1 − ᾱ_t) I),   i.e.  x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε,  ε ~ N(0, I),

so training never simulates the chain: pick ``t``, noise ``x_0`` in one go. The samplers see the
schedule as a *Gaussian path* ``x_t = a_t x_0 + s_t ε`` with ``a_t = √ᾱ_t``, ``s_t = √(1−ᾱ_t)``
(:meth:`NoiseSchedule.path`); the signal-to-noise ratio is ``SNR_t = a_t² / s_t²``.

**Schedules** (:func:`make_betas`): *linear* β from 1e-4 to 0.02 (Ho et al.) or *cosine*
(Nichol & Dhariwal 2021: ``ᾱ_t ∝ cos²((t/T + s)/(1 + s) · π/2)``, which destroys information more
evenly over ``t``). Neither reaches pure noise: ``ᾱ_T`` is small but not 0, so ``x_T`` still holds
a trace of the image, while sampling starts from pure noise. ``zero_terminal_snr=True`` rescales
``√ᾱ`` so that ``ᾱ_T = 0`` exactly (Lin et al. 2024); then ε can no longer be recovered at ``t = T``
(``x_0 = (x_T − s_T ε)/a_T`` divides by 0), so such a model must predict v or x₀.
"""

from __future__ import annotations

import math

import torch

__all__ = ["SCHEDULES", "make_betas", "rescale_zero_terminal_snr", "NoiseSchedule"]

SCHEDULES = ("linear", "cosine")


def make_betas(kind: str = "linear", T: int = 1000, zero_terminal_snr: bool = False) -> torch.Tensor:
    """``(T,)`` float64 noise levels β_1..β_T (index 0 holds β_1)."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown noise schedule {kind!r}; choose one of {list(SCHEDULES)}")
    if T < 2:
        raise ValueError(f"T must be >= 2, got {T}")
    if kind == "linear":
        # Ho et al.'s 1e-4..0.02 for T = 1000; rescaled so fewer steps destroy the image as fully
        # (clipped below 1 for very short schedules, T < 50, where the rescaled β would reach 1).
        scale = 1000 / T
        betas = torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64).clamp(max=0.999)
    else:
        s = 0.008  # offset: keeps β_1 from being vanishingly small (Nichol & Dhariwal 2021)
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)  # clip: β near 1 at t = T is singular
    return rescale_zero_terminal_snr(betas) if zero_terminal_snr else betas


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Betas whose ``ᾱ_T`` is exactly 0, keeping ``ᾱ_1`` (Lin et al. 2024, Algorithm 1).

    ``√ᾱ_t`` is shifted so its last value is 0 and scaled so its first is unchanged; the betas
    are then read back from the ratios ``ᾱ_t / ᾱ_{t−1}`` (the last β becomes 1).
    """
    root = torch.cumprod(1 - betas.double(), dim=0).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * first / (first - last)
    alpha_bar = root ** 2
    alphas = torch.cat([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])
    return 1 - alphas


class NoiseSchedule:
    """β_t, α_t, ᾱ_t and the closed-form forward process, as float32 tensors on one device.

    Index ``t`` runs from 0 to T−1 (paper step t+1). Computed in float64, stored in float32.
    """

    def __init__(self, kind: str = "linear", T: int = 1000, device="cpu", zero_terminal_snr: bool = False):
        betas = make_betas(kind, T, zero_terminal_snr)
        alpha_bar = torch.cumprod(1 - betas, dim=0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        self.kind, self.T, self.zero_terminal_snr = kind, T, zero_terminal_snr
        self.betas = betas.float().to(device)
        self.alphas = (1 - betas).float().to(device)
        self.alpha_bar = alpha_bar.float().to(device)
        self.alpha_bar_prev = alpha_bar_prev.float().to(device)
        # Posterior q(x_{t-1} | x_t, x_0) = N(c0·x_0 + ct·x_t, β̃_t): its coefficients and variance.
        self.posterior_var = (betas * (1 - alpha_bar_prev) / (1 - alpha_bar)).float().to(device)
        self.posterior_c0 = (betas * alpha_bar_prev.sqrt() / (1 - alpha_bar)).float().to(device)
        self.posterior_ct = ((1 - alpha_bar_prev) * (1 - betas).sqrt() / (1 - alpha_bar)).float().to(device)

    def to(self, device) -> "NoiseSchedule":
        return NoiseSchedule(self.kind, self.T, device, self.zero_terminal_snr)

    @property
    def device(self) -> torch.device:
        return self.alpha_bar.device

    def path(self, t: torch.Tensor, ndim: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a_t, s_t) = (√ᾱ_t, √(1−ᾱ_t))`` for integer steps ``t``, shaped to broadcast against a batch
        of ``ndim`` dimensions: ``(N, 1, 1, 1)`` for images, ``(N, 1)`` for points."""
        ab = self.alpha_bar[t].view(-1, *([1] * (ndim - 1)))  # (N, 1, …)
        return ab.sqrt(), (1 - ab).sqrt()

    def snr(self) -> torch.Tensor:
        """``(T,)`` float64 signal-to-noise ratios ``ᾱ_t / (1 − ᾱ_t)`` (inf never: ᾱ_1 < 1)."""
        ab = self.alpha_bar.double()
        return ab / (1 - ab)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε`` for a batch: x0 ``(N, C, H, W)``, t ``(N,)``, noise like x0."""
        a, s = self.path(t, x0.dim())
        return a * x0 + s * noise

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert ``q_sample`` with the predicted noise: ``x̂_0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t``."""
        a, s = self.path(t, xt.dim())
        return (xt - s * eps) / a
