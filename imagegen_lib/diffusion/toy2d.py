"""A 2-D Gaussian mixture whose score is known in closed form at every noise level: the score view, checked.

Noising a mixture ``p₀ = Σ_k π_k N(μ_k, σ_k² I)`` along the DDPM path ``x = a x₀ + s ε`` gives
another mixture, ``p_t = Σ_k π_k N(a μ_k, (a² σ_k² + s²) I)``, so the exact **score** is

    ∇log p_t(x) = Σ_k r_k(x) · (a μ_k − x) / (a² σ_k² + s²),   r_k(x) = posterior weight of component k,

and the ideal ε-prediction is ``ε*(x, t) = −s ∇log p_t(x)`` — the minimiser of the DDPM loss is
a scaled score (**Tweedie's formula**: ``E[x₀ | x] = (x + s² ∇log p_t(x)) / a``). A small MLP trained
with the book's :func:`~imagegen_lib.diffusion.objectives.ddpm_loss` on samples of ``p₀`` can be
compared with ``ε*`` point by point (:func:`eps_error_by_step`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .objectives import ddpm_loss
from .schedules import NoiseSchedule
from .unet import timestep_embedding

__all__ = ["Mixture", "ring_mixture", "exact_eps", "ToyEpsNet", "train_toy", "eps_error_by_step"]


class Mixture:
    """``Σ_k π_k N(μ_k, σ_k² I)`` in 2-D: ``means`` ``(K, 2)``, ``stds`` ``(K,)``, ``weights`` ``(K,)`` (sum 1)."""

    def __init__(self, means: torch.Tensor, stds: torch.Tensor, weights: torch.Tensor | None = None):
        self.means = means.double()
        self.stds = stds.double()
        k = means.shape[0]
        self.weights = (torch.full((k,), 1 / k, dtype=torch.float64) if weights is None else weights.double())
        if self.means.shape != (k, 2) or self.stds.shape != (k,) or self.weights.shape != (k,):
            raise ValueError("a mixture needs means (K, 2), stds (K,) and weights (K,)")
        if not torch.isclose(self.weights.sum(), torch.tensor(1.0, dtype=torch.float64)) or (self.stds <= 0).any():
            raise ValueError("mixture weights must sum to 1 and every std must be > 0")

    def sample(self, n: int, gen: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 2)`` float32 points."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        noise = torch.randn((n, 2), generator=gen, dtype=torch.float64)
        return (self.means[k] + self.stds[k, None] * noise).float()

    def score(self, x: torch.Tensor, a: float | torch.Tensor, s: float | torch.Tensor) -> torch.Tensor:
        """``∇log p_t(x)`` of the noised mixture at path level ``(a, s)``, for ``x`` ``(N, 2)`` (float64)."""
        x = x.double()
        a = torch.as_tensor(a, dtype=torch.float64).reshape(-1, 1)  # (N or 1, 1)
        s = torch.as_tensor(s, dtype=torch.float64).reshape(-1, 1)
        var = a ** 2 * self.stds[None, :] ** 2 + s ** 2  # (N, K)
        diff = x[:, None, :] - a[:, :, None] * self.means[None]  # (N, K, 2)
        log_r = (self.weights.log()[None] - diff.pow(2).sum(-1) / (2 * var) - torch.log(2 * math.pi * var))
        r = torch.softmax(log_r, dim=1)  # (N, K): which component x came from
        return (r[:, :, None] * (-diff / var[:, :, None])).sum(1)  # (N, 2)


def ring_mixture(k: int = 8, radius: float = 1.5, std: float = 0.15) -> Mixture:
    """``k`` equal Gaussians on a circle (the shape of Q4's toy problem, at a smaller scale)."""
    angles = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    means = radius * torch.stack([angles.cos(), angles.sin()], 1)
    return Mixture(means, torch.full((k,), std, dtype=torch.float64))


def exact_eps(mixture: Mixture, x: torch.Tensor, t: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """The ideal ε-prediction ``−s_t ∇log p_t(x)`` at integer steps ``t`` ``(N,)`` (float64 ``(N, 2)``)."""
    a, s = schedule.path(t, 2)
    return -s.double() * mixture.score(x, a.double(), s.double())


class ToyEpsNet(nn.Module):
    """``ε_θ(x, t)`` for 2-D points: an MLP on the point and a sinusoidal embedding of the step."""

    def __init__(self, hidden: int = 128, t_dim: int = 32):
        super().__init__()
        self.t_dim = t_dim
        self.net = nn.Sequential(nn.Linear(2 + t_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # x: (N, 2), t: (N,)
        return self.net(torch.cat([x, timestep_embedding(t, self.t_dim)], dim=1))  # (N, 2)


def train_toy(mixture: Mixture, schedule: NoiseSchedule, steps: int = 3000, batch: int = 512, lr: float = 2e-3,
              seed: int = 0) -> ToyEpsNet:
    """A :class:`ToyEpsNet` trained with the DDPM loss on fresh samples of ``mixture`` (seconds on a CPU)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ToyEpsNet()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        loss = ddpm_loss(model, schedule, mixture.sample(batch, gen), gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def eps_error_by_step(model: nn.Module, mixture: Mixture, schedule: NoiseSchedule, steps: list[int], n: int = 4000,
                      seed: int = 1) -> dict[int, dict[str, float]]:
    """At each step ``t``: the mean ``‖ε_θ − ε*‖²`` over ``x ~ p_t``, and ``E‖ε*‖²`` for scale.

    The second number is how much of ε the data can explain at all: the loss floor is ``2 − E‖ε*‖²``
    per point (the unexplainable part of ε, in 2 dimensions).
    """
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for t in steps:
        x0 = mixture.sample(n, gen)
        eps = torch.randn((n, 2), generator=gen)
        tt = torch.full((n,), t, dtype=torch.long)
        xt = schedule.q_sample(x0, tt, eps)
        ideal = exact_eps(mixture, xt, tt, schedule)
        err = (model(xt, tt).double() - ideal).pow(2).sum(1).mean()
        out[t] = {"error": float(err), "ideal_norm2": float(ideal.pow(2).sum(1).mean())}
    return out
