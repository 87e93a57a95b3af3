"""What the network predicts, and the loss that teaches it: ε, x₀ or v for diffusion; the velocity for flow matching.

Every model here denoises a **Gaussian path** ``x = a·x₀ + s·ε`` (``a``, ``s`` depend on the noise
level): for the DDPM ``a = √ᾱ_t``, ``s = √(1−ᾱ_t)``; for flow matching (rectified flow) ``a = 1 − t``,
``s = t`` with ``t ∈ [0, 1]``. Given ``x`` and the level, one prediction fixes the other unknown, so
four targets carry the same information:

============  =======================  ==========================================================
prediction    the network outputs      recover (x₀, ε) from x and the output
============  =======================  ==========================================================
``eps``       ε (Ho et al. 2020)       x₀ = (x − s ε) / a         — ill-posed where a → 0 (pure noise)
``x0``        x₀                       ε = (x − a x₀) / s         — ill-posed where s → 0 (clean image)
``v``         v = a ε − s x₀           x₀ = a x − s v, ε = s x + a v  (needs a² + s² = 1: the DDPM)
``velocity``  u = ε − x₀ = dx/dt       x₀ = x − s u, ε = x + a u      (needs a + s = 1: flow matching)
============  =======================  ==========================================================

(Salimans & Ho 2022 introduced v; Lipman et al. 2023 and Liu et al. 2023 flow matching / rectified
flow.) The *loss* is the mean squared error on the chosen target; because the targets are linear in
each other, each choice is the x₀-loss under a weighting over noise levels: the ε-loss is the x₀-loss
times SNR = a²/s² (its weight piles up on the nearly clean steps, where SNR is huge), the v-loss the
x₀-loss times SNR + 1 (the same, but never below 1 at the noisiest steps). **Min-SNR-γ**
(Hang et al. 2023) weights the x₀-loss by ``min(SNR, γ)`` instead: the many easy, almost-clean steps
stop dominating the gradient. :func:`min_snr_weight` gives the factor that does this for each target.
"""

from __future__ import annotations

import torch
from torch import nn

from .guidance import drop_labels
from .schedules import NoiseSchedule

__all__ = ["PREDICTIONS", "prediction_target", "split_prediction", "min_snr_weight", "weighted_mse", "ddpm_loss",
           "flow_loss"]

PREDICTIONS = ("eps", "x0", "v")  # the DDPM's choices; flow matching always predicts the velocity


def _check(prediction: str) -> None:
    if prediction not in (*PREDICTIONS, "velocity"):
        raise ValueError(f"unknown prediction {prediction!r}; choose one of {list(PREDICTIONS)} "
                         "(or 'velocity', flow matching's)")


def prediction_target(prediction: str, x0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor,
                      s: torch.Tensor) -> torch.Tensor:
    """What the network should output for ``x = a x₀ + s ε`` (``a``, ``s`` broadcast against x₀)."""
    _check(prediction)
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "v":
        return a * eps - s * x0
    return eps - x0  # the velocity of the straight path x_t = (1 − t) x₀ + t ε


def split_prediction(prediction: str, output: torch.Tensor, x: torch.Tensor, a: torch.Tensor,
                     s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x̂₀, ε̂)`` from the network's ``output`` at ``x`` (the inverse of :func:`prediction_target`)."""
    _check(prediction)
    if prediction == "eps":
        return (x - s * output) / a, output
    if prediction == "x0":
        return output, (x - a * output) / s
    if prediction == "v":
        return a * x - s * output, s * x + a * output
    return x - s * output, x + a * output


def min_snr_weight(prediction: str, snr: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-example factor on the MSE of ``prediction`` that makes the x₀-equivalent weight ``min(SNR, γ)``.

    The MSE on ε, x₀ and v equals the x₀-MSE times SNR, 1 and SNR + 1; so the factors are
    ``min(SNR, γ) / SNR``, ``min(SNR, γ)`` and ``min(SNR, γ) / (SNR + 1)`` (Hang et al. 2023, γ = 5).
    """
    if prediction not in PREDICTIONS:
        raise ValueError(f"min-SNR weighting is defined for {list(PREDICTIONS)}, got {prediction!r}")
    if not gamma > 0:
        raise ValueError(f"min-SNR gamma must be > 0, got {gamma}")
    clipped = snr.clamp(max=gamma)
    if prediction == "eps":
        return clipped / snr
    if prediction == "x0":
        return clipped
    return clipped / (snr + 1)


def weighted_mse(output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over pixels, then the (weighted) mean over the batch; ``weight`` ``(N,)`` or None."""
    per_example = (output.float() - target.float()).pow(2).flatten(1).mean(1)  # (N,)
    return per_example.mean() if weight is None else (weight.float() * per_example).mean()


def _conditioning(model: nn.Module, labels: torch.Tensor | None, cond_drop: float, gen) -> torch.Tensor | None:
    if labels is None:
        return None
    return drop_labels(labels, cond_drop, model.null_label, gen) if cond_drop > 0 else labels


def ddpm_loss(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, gen: torch.Generator | None = None,
              t: torch.Tensor | None = None, noise: torch.Tensor | None = None, prediction: str = "eps",
              min_snr_gamma: float | None = None, labels: torch.Tensor | None = None,
              cond_drop: float = 0.0) -> torch.Tensor:
    """The DDPM's training loss: ``E_{t, ε} w(t)·‖target − net(a_t x₀ + s_t ε, t)‖²`` (mean over pixels).

    ``t`` uniform over the T steps, ε ~ N(0, I) (both from ``gen`` unless given). ``prediction='eps'``
    with no weighting is Ho et al.'s "simple" loss. ``min_snr_gamma``: Min-SNR-γ weighting.
    ``labels`` (class-conditional nets): dropped to the null label with probability ``cond_drop``.
    """
    n = x0.shape[0]
    if t is None:
        t = torch.randint(0, schedule.T, (n,), generator=gen, device=x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=gen, device=x0.device)
    a, s = schedule.path(t, x0.dim())
    xt = a * x0 + s * noise
    output = model(xt, t, _conditioning(model, labels, cond_drop, gen)) if labels is not None else model(xt, t)
    weight = None if not min_snr_gamma else min_snr_weight(prediction, schedule.snr()[t].to(x0.device), min_snr_gamma)
    return weighted_mse(output, prediction_target(prediction, x0, noise, a, s), weight)


def flow_loss(model: nn.Module, x0: torch.Tensor, gen: torch.Generator | None = None, t: torch.Tensor | None = None,
              noise: torch.Tensor | None = None, labels: torch.Tensor | None = None,
              cond_drop: float = 0.0) -> torch.Tensor:
    """Flow matching / rectified flow: ``E_{t, ε} ‖(ε − x₀) − net((1 − t) x₀ + t ε, 1000 t)‖²``, ``t ~ U(0, 1)``.

    The target is the velocity of the straight path from the image (t = 0) to the noise (t = 1);
    the network learns its average over all pairs through ``x_t``: the marginal velocity field.
    """
    n = x0.shape[0]
    if t is None:
        t = torch.rand((n,), generator=gen, device=x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=gen, device=x0.device)
    s = t.view(-1, *([1] * (x0.dim() - 1)))  # (N, 1, 1, 1) for images
    xt = (1 - s) * x0 + s * noise
    time = 1000 * t
    output = model(xt, time, _conditioning(model, labels, cond_drop, gen)) if labels is not None else model(xt, time)
    return weighted_mse(output, prediction_target("velocity", x0, noise, 1 - s, s))
