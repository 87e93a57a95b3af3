"""Denoising diffusion (DDPM, Ho et al. 2020) for 28×28 images: schedule, U-Net, loss, samplers.

**Forward process.** Noise is added in ``T`` small Gaussian steps, ``q(x_t | x_{t-1}) =
N(√(1−β_t) x_{t-1}, β_t I)``. With ``α_t = 1 − β_t`` and ``ᾱ_t = Π_{s≤t} α_s`` it has the closed
form (:meth:`NoiseSchedule.q_sample`)

    q(x_t | x_0) = N(√ᾱ_t · x_0, (1 − ᾱ_t) I),   i.e.  x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε,  ε ~ N(0, I),

so training never has to simulate the chain: pick ``t`` uniformly, noise ``x_0`` in one go, and
teach a network ``ε_θ(x_t, t)`` to recover the noise, ``L = E‖ε − ε_θ(x_t, t)‖²``
(:func:`ddpm_loss`, Ho et al.'s "simple" loss).

**Schedules** (:func:`make_betas`): *linear* β from 1e-4 to 0.02 (Ho et al.) or *cosine*
(Nichol & Dhariwal 2021: ``ᾱ_t ∝ cos²((t/T + s)/(1 + s) · π/2)``, which destroys information
more evenly over ``t``).

**Samplers.** *Ancestral* (:func:`sample_ancestral`): from ``x_T ~ N(0, I)`` walk back with
``p(x_{t−1} | x_t) = N(μ̃_t(x_t, x̂_0), β̃_t I)``, the true posterior ``q(x_{t−1} | x_t, x_0)``
with the network's estimate ``x̂_0 = (x_t − √(1−ᾱ_t) ε_θ) / √ᾱ_t`` plugged in (clipped to
[−1, 1], as in Ho et al.'s code) and the posterior variance ``β̃_t = β_t (1−ᾱ_{t−1})/(1−ᾱ_t)``;
``T`` network calls per image. *DDIM* (Song et al. 2021, :func:`sample_ddim`): the same trained
network, on a sub-sequence of ``S ≪ T`` steps,

    x_{t'} = √ᾱ_{t'} x̂_0 + √(1 − ᾱ_{t'} − σ²) ε̂ + σ z,   σ = η √((1−ᾱ_{t'})/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_{t'}),

deterministic for ``η = 0``. For ``S = T`` and ``η = 1`` it *is* the ancestral sampler (same
formula, rearranged; a test checks it to float precision).

**Network** (:class:`UNet`): 28 → 14 → 7 and back, one residual block per level with the time
step added to every block through a sinusoidal embedding and an MLP, self-attention at 7×7,
skip connections by concatenation, GroupNorm + SiLU. Its last convolution starts at zero, so an
untrained model predicts ``ε̂ = 0``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SCHEDULES", "make_betas", "NoiseSchedule", "timestep_embedding", "ResBlock", "SelfAttention",
           "UNet", "ddpm_loss", "sample_ancestral", "sample_ddim", "ddim_timesteps"]

SCHEDULES = ("linear", "cosine")


# ---------------------------------------------------------------------------------------------
# The forward process
# ---------------------------------------------------------------------------------------------

def make_betas(kind: str = "linear", T: int = 1000) -> torch.Tensor:
    """``(T,)`` float64 noise levels β_1..β_T (index 0 holds β_1)."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown noise schedule {kind!r}; choose one of {list(SCHEDULES)}")
    if T < 2:
        raise ValueError(f"T must be >= 2, got {T}")
    if kind == "linear":
        # Ho et al.'s 1e-4..0.02 for T = 1000; rescaled so fewer steps destroy the image as fully.
        scale = 1000 / T
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)
    s = 0.008  # offset: keeps β_1 from being vanishingly small (Nichol & Dhariwal 2021)
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)  # clip: β near 1 at t = T is singular


class NoiseSchedule:
    """β_t, α_t, ᾱ_t and the closed-form forward process, as float32 tensors on one device.

    Index ``t`` runs from 0 to T−1 (paper step t+1). Computed in float64, stored in float32.
    """

    def __init__(self, kind: str = "linear", T: int = 1000, device="cpu"):
        betas = make_betas(kind, T)
        alpha_bar = torch.cumprod(1 - betas, dim=0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        self.kind, self.T = kind, T
        self.betas = betas.float().to(device)
        self.alphas = (1 - betas).float().to(device)
        self.alpha_bar = alpha_bar.float().to(device)
        self.alpha_bar_prev = alpha_bar_prev.float().to(device)
        # Posterior q(x_{t-1} | x_t, x_0) = N(c0·x_0 + ct·x_t, β̃_t): its coefficients and variance.
        self.posterior_var = (betas * (1 - alpha_bar_prev) / (1 - alpha_bar)).float().to(device)
        self.posterior_c0 = (betas * alpha_bar_prev.sqrt() / (1 - alpha_bar)).float().to(device)
        self.posterior_ct = ((1 - alpha_bar_prev) * (1 - betas).sqrt() / (1 - alpha_bar)).float().to(device)

    def to(self, device) -> "NoiseSchedule":
        return NoiseSchedule(self.kind, self.T, device)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε`` for a batch: x0 ``(N, C, H, W)``, t ``(N,)``, noise like x0."""
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)  # (N, 1, 1, 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert ``q_sample`` with the predicted noise: ``x̂_0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t``."""
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()


# ---------------------------------------------------------------------------------------------
# The network: ε_θ(x_t, t)
# ---------------------------------------------------------------------------------------------

def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoids of the step: ``(N,)`` -> ``(N, dim)``, frequencies 1 .. 1/10⁴."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]  # (N, dim/2)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)  # (N, dim)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)  # 8 groups; fewer when the width doesn't allow (tests)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, + the time embedding, GroupNorm-SiLU-conv, + a skip.

    ``(N, c_in, H, W) -> (N, c_out, H, W)``.
    """

    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)  # tells the block how noisy its input is
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (N, c_out, H, W)
        h = h + self.time(F.silu(t_emb))[:, :, None, None]  # (N, c_out, H, W): a per-channel shift
        h = self.conv2(F.silu(self.norm2(h)))  # (N, c_out, H, W)
        return self.skip(x) + h  # (N, c_out, H, W)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the ``H·W`` positions (used at 7×7 = 49 tokens: cheap)."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x))  # (N, 3C, H, W)
        q, k, v = qkv.reshape(n, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        # q, k, v: (N, heads, H·W, C/heads)
        a = F.scaled_dot_product_attention(q, k, v)  # (N, heads, H·W, C/heads)
        a = a.transpose(-1, -2).reshape(n, c, h, w)  # (N, C, H, W)
        return x + self.out(a)  # (N, C, H, W)


class UNet(nn.Module):
    """ε_θ(x_t, t) for ``(N, 1, 28, 28)`` images; ``channels = (c1, c2, c3)`` at 28², 14², 7².

    Default (64, 128, 128): 2.3 M parameters, 9 MB in float32.
    """

    def __init__(self, channels: tuple[int, int, int] = (64, 128, 128), attention: bool = True):
        super().__init__()
        c1, c2, c3 = channels
        self.channels = tuple(channels)
        t_dim = 4 * c1
        self.time_mlp = nn.Sequential(nn.Linear(c1, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.conv_in = nn.Conv2d(1, c1, 3, padding=1)
        self.down1 = ResBlock(c1, c1, t_dim)
        self.pool1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.down2 = ResBlock(c1, c2, t_dim)
        self.pool2 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)
        self.down3 = ResBlock(c2, c3, t_dim)
        self.mid_attn = SelfAttention(c3) if attention else nn.Identity()
        self.mid = ResBlock(c3, c3, t_dim)
        self.up3 = ResBlock(c3 + c3, c3, t_dim)
        self.unpool2 = nn.Conv2d(c3, c3, 3, padding=1)
        self.up2 = ResBlock(c3 + c2, c2, t_dim)
        self.unpool1 = nn.Conv2d(c2, c2, 3, padding=1)
        self.up1 = ResBlock(c2 + c1, c1, t_dim)
        self.norm_out = _norm(c1)
        self.conv_out = nn.Conv2d(c1, 1, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # start as "predict no noise": a calm, stable start
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # x: (N, 1, 28, 28), t: (N,)
        emb = self.time_mlp(timestep_embedding(t, self.channels[0]))  # (N, 4·c1)
        h1 = self.down1(self.conv_in(x), emb)  # (N, c1, 28, 28)
        h2 = self.down2(self.pool1(h1), emb)  # (N, c2, 14, 14)
        h3 = self.down3(self.pool2(h2), emb)  # (N, c3, 7, 7)
        h = self.mid(self.mid_attn(h3), emb)  # (N, c3, 7, 7)
        h = self.up3(torch.cat([h, h3], dim=1), emb)  # (N, c3, 7, 7)
        h = self.unpool2(F.interpolate(h, scale_factor=2, mode="nearest"))  # (N, c3, 14, 14)
        h = self.up2(torch.cat([h, h2], dim=1), emb)  # (N, c2, 14, 14)
        h = self.unpool1(F.interpolate(h, scale_factor=2, mode="nearest"))  # (N, c2, 28, 28)
        h = self.up1(torch.cat([h, h1], dim=1), emb)  # (N, c1, 28, 28)
        return self.conv_out(F.silu(self.norm_out(h)))  # (N, 1, 28, 28): the predicted noise ε̂


# ---------------------------------------------------------------------------------------------
# Training loss and samplers
# ---------------------------------------------------------------------------------------------

def ddpm_loss(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, gen: torch.Generator | None = None,
              t: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Ho et al.'s simple loss ``E_{t, ε} ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖²`` (mean over pixels)."""
    n = x0.shape[0]
    if t is None:
        t = torch.randint(0, schedule.T, (n,), generator=gen, device=x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=gen, device=x0.device)
    xt = schedule.q_sample(x0, t, noise)
    return F.mse_loss(model(xt, t).float(), noise)


Trajectory = list[tuple[int, torch.Tensor]]  # (t, x_t) pairs, from noise to image


def _keep(trajectory: Trajectory | None, every: int, i: int, t: int, x: torch.Tensor) -> None:
    if trajectory is not None and (i % every == 0):
        trajectory.append((t, x.float().cpu()))


@torch.no_grad()
def sample_ancestral(model: nn.Module, schedule: NoiseSchedule, n: int, gen: torch.Generator, device="cpu",
                     trajectory: Trajectory | None = None, keep_every: int = 100,
                     autocast: Callable = None) -> torch.Tensor:
    """``n`` images in [−1, 1] by the T-step ancestral sampler (noise from ``gen``, on ``device``).

    ``trajectory`` (a list) receives ``(t, x_t)`` every ``keep_every`` steps and the final image.
    """
    x = torch.randn((n, 1, 28, 28), generator=gen, device=device)  # x_T
    for i, step in enumerate(reversed(range(schedule.T))):
        _keep(trajectory, keep_every, i, step + 1, x)
        t = torch.full((n,), step, device=device, dtype=torch.long)
        eps = _eps(model, x, t, autocast)
        x0 = schedule.predict_x0(x, t, eps).clamp(-1, 1)
        mean = schedule.posterior_c0[step] * x0 + schedule.posterior_ct[step] * x  # μ̃_t(x_t, x̂_0)
        if step > 0:
            x = mean + schedule.posterior_var[step].sqrt() * torch.randn(x.shape, generator=gen, device=device)
        else:
            x = mean  # the last step returns the mean: no noise is added to the final image
    if trajectory is not None:
        trajectory.append((0, x.float().cpu()))
    return x


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` evenly spaced indices of 0..T−1, descending, ending at 0 (DDIM's sub-sequence τ)."""
    if not 1 <= steps <= T:
        raise ValueError(f"DDIM steps must be between 1 and T={T}, got {steps}")
    return sorted({round(i * (T - 1) / max(steps - 1, 1)) for i in range(steps)}, reverse=True)


@torch.no_grad()
def sample_ddim(model: nn.Module, schedule: NoiseSchedule, n: int, gen: torch.Generator, steps: int = 50,
                eta: float = 0.0, device="cpu", trajectory: Trajectory | None = None, keep_every: int = 1,
                autocast: Callable = None) -> torch.Tensor:
    """``n`` images in [−1, 1] by DDIM with ``steps`` network calls; ``eta=0``: deterministic given x_T."""
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    taus = ddim_timesteps(schedule.T, steps)
    x = torch.randn((n, 1, 28, 28), generator=gen, device=device)  # x_T
    for i, step in enumerate(taus):
        _keep(trajectory, keep_every, i, step + 1, x)
        t = torch.full((n,), step, device=device, dtype=torch.long)
        eps = _eps(model, x, t, autocast)
        x0 = schedule.predict_x0(x, t, eps).clamp(-1, 1)
        ab = schedule.alpha_bar[step]
        ab_prev = schedule.alpha_bar[taus[i + 1]] if i + 1 < len(taus) else torch.ones((), device=ab.device)
        # ε̂ consistent with the clipped x̂_0, so that x_t = √ᾱ x̂_0 + √(1−ᾱ) ε̂ still holds.
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
        x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma ** 2).clamp(min=0).sqrt() * eps
        if eta > 0 and float(sigma) > 0:
            x = x + sigma * torch.randn(x.shape, generator=gen, device=device)
    if trajectory is not None:
        trajectory.append((0, x.float().cpu()))
    return x


def _eps(model: nn.Module, x: torch.Tensor, t: torch.Tensor, autocast: Callable | None) -> torch.Tensor:
    if autocast is None:
        return model(x, t).float()
    with autocast():
        return model(x, t).float()
