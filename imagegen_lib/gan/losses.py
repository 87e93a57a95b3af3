"""GAN losses on discriminator *logits* ``l = D(x)`` (so ``D(x) = sigmoid(l)``).

``log D = -softplus(-l)`` and ``log(1 - D) = -softplus(l)`` are the numerically stable forms:
they never take the log of a sigmoid that underflowed to 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["d_loss_bce", "g_loss_nonsaturating", "g_loss_saturating", "G_LOSSES"]


def d_loss_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator: maximise log D(x) + log(1 - D(G(z)))  ==  minimise this."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator, the variant everyone uses: maximise log D(G(z)).

    Its gradient is large exactly when D confidently rejects the fakes (early in training).
    """
    return F.softplus(-fake_logits).mean()


def g_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator, the minimax original: minimise log(1 - D(G(z))).

    Its gradient vanishes when D(G(z)) -> 0, i.e. when G most needs it (see Q2).
    """
    return -F.softplus(fake_logits).mean()


G_LOSSES = {"nonsaturating": g_loss_nonsaturating, "saturating": g_loss_saturating}


# ---------------------------------------------------------------------------------------------
# Beyond the original GAN loss (Q4): smoothed labels, instance noise, WGAN(-GP), hinge, R1.
# Names are appended to __all__ below so the original block above stays untouched.
# ---------------------------------------------------------------------------------------------

def d_loss_bce_smoothed(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                        real_label: float = 0.9) -> torch.Tensor:
    """``d_loss_bce`` with *one-sided* label smoothing: real targets ``real_label`` (< 1), fakes 0.

    The optimum becomes ``D* = real_label * p_data / (p_data + p_g)``: D can no longer grow its
    logits without bound on real data (Salimans et al. 2016). Smoothing the *fake* label too
    would move D*'s zeros into regions that only G populates, which is why it is one-sided.
    """
    return (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
            + F.softplus(fake_logits).mean())


def add_instance_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + N(0, std²)``: feed *both* real and fake batches through this before D.

    Blurring both distributions with the same Gaussian makes their supports overlap, so D cannot
    become perfect and G's gradients stay informative; anneal ``std`` to 0 over training.
    """
    if std <= 0:
        return x
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return x + std * noise


def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN critic: maximise ``E f(x) - E f(G(z))`` (an estimate of the Wasserstein-1 distance
    when ``f`` is 1-Lipschitz) == minimise this. Scores are unbounded: no sigmoid anywhere."""
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN generator: maximise the critic's score of the fakes."""
    return -fake_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``weight * E[(||∇_x f(x̂)|| - 1)²]`` at random points
    ``x̂ = ε x_real + (1 - ε) x_fake`` on the segments between real and fake samples.

    ``create_graph=True`` so the penalty itself can be back-propagated into the critic's weights.
    Pass ``fake`` detached: the penalty trains the critic only.
    """
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator,
                     dtype=real.dtype).to(real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(critic, real: torch.Tensor, gamma: float = 10.0) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``gamma/2 * E||∇_x D(x)||²`` on *real* data only — it pushes D
    towards flat on the data manifold, which is what makes the Dirac-GAN converge (Q4)."""
    x = real.detach().requires_grad_(True)
    return r1_from_scores(critic(x), x, gamma)


def r1_from_scores(scores: torch.Tensor, x: torch.Tensor, gamma: float) -> torch.Tensor:
    """:func:`r1_penalty` when the caller computes ``scores = D(x)`` from an ``x`` that requires grad
    (a conditional D takes labels too; the forward pass may run under autocast).

    ``create_graph=True``: the penalty is part of D's loss, so its gradient w.r.t. D's weights (a
    double backward) must exist. The gradient of the *summed* scores is each image's own gradient
    when D treats images independently (with batch norm in D, a batch's images also share statistics).
    """
    (grad,) = torch.autograd.grad(scores.float().sum(), x, create_graph=True)
    return 0.5 * gamma * grad.float().flatten(1).pow(2).sum(1).mean()


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge loss (used with spectral norm by Miyato et al. 2018, and by BigGAN):
    ``E relu(1 - D(x)) + E relu(1 + D(G(z)))`` — points already beyond the margin give no gradient."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def hinge_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: ``-E D(G(z))`` (same as WGAN's)."""
    return -fake_scores.mean()


__all__ += ["d_loss_bce_smoothed", "add_instance_noise", "wgan_critic_loss", "wgan_generator_loss",
            "gradient_penalty", "r1_penalty", "r1_from_scores", "hinge_d_loss", "hinge_g_loss"]
